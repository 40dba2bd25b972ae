package test

// End-to-end tests of the conference bridge: three baresip phones meet in
// a room and each hears the other two; a sipp caller enters a room's PIN
// wrong, then right; a carrier's call to a DID reaches a room, and a full
// room refuses a caller with 486.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// confServerArgs keep the server's media in this test's port range.
var confServerArgs = []string{"--rtp-ports", "35500-35999"}

// TestConferenceBaresip: alice, bob and carol (baresip, each playing its
// own tone) dial room 7000, added while the server runs; alice and bob
// talk G.711, carol G.722 (16 kHz; the room mixes at 16 kHz). Once all
// three are in, the gauge says 3; each recording holds the other two
// tones and not its own (the mixer gives each the sum of the others); the
// server logs each join and leave.
func TestConferenceBaresip(t *testing.T) {
	const talk = 5 * time.Second
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig, Args: confServerArgs})
	type phone struct {
		name, pw, ext, rtp string
		tone               float64
		wide               bool // G.722 first
		codec              string
		b                  *harness.Baresip
	}
	// Tones far from each other and from the join/leave notes (660, 880
	// Hz), each a whole number of periods in a 100 ms window.
	phones := []*phone{
		{name: "alice", pw: "alice-secret-1", ext: "1001", rtp: "36000-36099", tone: 500, codec: "PCMU"},
		{name: "bob", pw: "bob-secret-2", ext: "1002", rtp: "36100-36199", tone: 1000, codec: "PCMU"},
		{name: "carol", pw: "carol-secret-3", ext: "1003", rtp: "36200-36299", tone: 1500, wide: true, codec: "G722"},
	}
	for _, p := range phones {
		harness.AddUser(t, srv.DataDir, p.name, p.pw, p.ext)
	}
	cli(t, srv, "conf", "add", "7000", "--name", "team")
	if _, err := srv.WaitLog(5*time.Second, `conference rooms loaded`, `rooms=1`); err != nil {
		t.Fatalf("the running server did not pick the room up: %v", err)
	}
	dir := t.TempDir()
	for _, p := range phones {
		path := filepath.Join(dir, fmt.Sprintf("%s-%.0fhz.wav", p.name, p.tone))
		rate := 8000
		if p.wide {
			rate = 16000
		}
		if err := os.WriteFile(path, harness.ToneWAV(p.tone, rate, talk+15*time.Second, toneLevel), 0o644); err != nil {
			t.Fatal(err)
		}
		p.b = harness.StartBaresip(t, harness.BaresipOptions{User: p.name, Password: p.pw,
			Server: srv.SIPAddr(), RTPPorts: p.rtp, AudioSource: path, WidebandFirst: p.wide})
	}
	for _, p := range phones {
		if err := p.b.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range phones {
		if err := p.b.Dial("sip:7000@" + srv.Domain); err != nil {
			t.Fatal(err)
		}
		if _, err := p.b.WaitOutput(10*time.Second, `Call established: sip:7000@`); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if _, err := srv.WaitLog(5*time.Second, `conference join`, `room=7000`, `caller=`+p.name, fmt.Sprintf(`participants=%d`, i+1), `codec=`+p.codec); err != nil {
			t.Fatalf("join of %s: %v", p.name, err)
		}
	}
	if n := srv.Metric(t, "kaopu_conference_participants"); n != 3 {
		t.Errorf("kaopu_conference_participants = %v with three in the room, want 3", n)
	}
	time.Sleep(talk)
	for _, p := range phones {
		if err := p.b.Hangup(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.b.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range phones {
		if _, err := srv.WaitLog(5*time.Second, `conference leave`, `room=7000`, `caller=`+p.name); err != nil {
			t.Fatalf("leave of %s: %v", p.name, err)
		}
	}
	if n := srv.Metric(t, "kaopu_conference_participants"); n != 0 {
		t.Errorf("kaopu_conference_participants = %v after everyone left, want 0", n)
	}
	for _, p := range phones {
		p.b.Stop()
	}
	for _, p := range phones {
		var others []float64
		for _, q := range phones {
			if q != p {
				others = append(others, q.tone)
			}
		}
		t.Run(p.name+" hears the others", func(t *testing.T) {
			checkConferenceHeard(t, p.b, p.tone, others, talk)
		})
	}
}

// checkConferenceHeard: b's recording has, over at least most of the time
// all three were talking, 100 ms windows where both others' tones are at
// no less than half the level played and its own tone below a tenth of
// the weaker of them; and its own tone is never the loudest.
func checkConferenceHeard(t *testing.T, b *harness.Baresip, own float64, others []float64, talk time.Duration) {
	t.Helper()
	files := b.Recordings()
	if len(files) != 1 {
		t.Fatalf("recordings %q, want one", files)
	}
	a, err := harness.ReadWAV(files[0])
	if err != nil {
		t.Fatal(err)
	}
	windows := a.Windows(100 * time.Millisecond)
	both, ownLoud := 0, 0
	var report []string
	for j, w := range windows {
		o0, o1, me := w.Tone(others[0]), w.Tone(others[1]), w.Tone(own)
		if o0 >= toneLevel/2 && o1 >= toneLevel/2 && me < min(o0, o1)/10 {
			both++
		}
		if me > toneLevel/10 && me > max(o0, o1)/10 {
			ownLoud++
			if len(report) < 10 {
				report = append(report, fmt.Sprintf("%.1fs: own %.0f Hz at %.0f; %.0f Hz at %.0f, %.0f Hz at %.0f",
					float64(j)/10, own, me, others[0], o0, others[1], o1))
			}
		}
	}
	need := int(talk/(100*time.Millisecond)) * 8 / 10
	if both < need {
		t.Errorf("%s (%v): both other tones (%.0f, %.0f Hz) clear of the own (%.0f Hz) in %d windows, want at least %d",
			files[0], a.Duration(), others[0], others[1], own, both, need)
	}
	if ownLoud > 0 {
		t.Errorf("%s: its own %.0f Hz tone came back in %d windows:\n%s", files[0], own, ownLoud, strings.Join(report, "\n"))
	}
	t.Logf("%s: %v; %d/%d windows with both others clear", filepath.Base(files[0]), a.Duration(), both, len(windows))
}

// confScenario writes a copy of a conference scenario with its
// placeholders replaced (old, new pairs).
func confScenario(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(harness.Scenario(t, name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.NewReplacer(repl...).Replace(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConferencePIN: alice (sipp) calls room 7100, which has a PIN; she
// keys a wrong PIN, is told so and asked again, keys the right one and is
// in the room until she hangs up. One refusal and one join are logged,
// and the gauge counts her while she is in.
func TestConferencePIN(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig, Args: confServerArgs})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	cli(t, srv, "conf", "add", "7100", "--pin", "4321", "--name", "board")
	if _, err := srv.WaitLog(5*time.Second, `conference rooms loaded`, `rooms=1`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var repl []string
	// The "enter PIN" prompt takes about 3 s; "not valid" and the prompt
	// again about 5 s: each pause lets them play out.
	for i, k := range []struct {
		keys  string
		pause time.Duration
	}{{"1111#", 6 * time.Second}, {"4321#", 4 * time.Second}} {
		pcap := filepath.Join(dir, fmt.Sprintf("keys%d.pcap", i+1))
		d, err := harness.DTMFPcap(pcap, k.keys, 101, uint32(100000*(i+1)), uint16(1000*(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		repl = append(repl, fmt.Sprintf("@PCAP%d@", i+1), pcap, fmt.Sprintf("@PAUSE%d@", i+1), fmt.Sprint((d + k.pause).Milliseconds()))
	}
	repl = append(repl, "@PAUSE3@", "3000")
	scenario := confScenario(t, "uac_conf_pin.xml", repl...)
	done := make(chan *harness.SippResult, 1)
	go func() {
		done <- harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "7100", "-mp", fmt.Sprint(harness.FreePort(t, "udp")),
			"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", srv.Domain, "-timeout", "40s")
	}()
	if _, err := srv.WaitLog(15*time.Second, `conference PIN refused`, `room=7100`, `attempt=1`); err != nil {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, err := srv.WaitLog(15*time.Second, `conference join`, `room=7100`, `caller=alice`, `participants=1`); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	if n := srv.Metric(t, "kaopu_conference_participants"); n != 1 {
		t.Errorf("kaopu_conference_participants = %v while alice is in, want 1", n)
	}
	r := <-done
	if r.ExitCode != 0 {
		t.Fatalf("sipp: exit %d, want 0 (answered, in the room, hung up)\n%s", r.ExitCode, r.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `conference leave`, `room=7100`, `caller=alice`, `participants=0`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(srv.Log(), "attempt=2") {
		t.Error("the right PIN was refused too")
	}
	if regexp.MustCompile(`[^0-9A-Za-z]4321[^0-9A-Za-z]`).MatchString(srv.Log()) {
		t.Error("the PIN appears in the server's log")
	}
}

// TestConferenceDID: a carrier's call to a DID whose target is room 7200
// (at most one participant) joins the room; a second call to the DID while
// the first is in gets 486 Busy Here before any answer.
func TestConferenceDID(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: trunkConfig, Args: confServerArgs})
	cli(t, srv, "trunk", "add", "carrier", "--address", "127.0.0.4:5060", "--qualify", "0")
	cli(t, srv, "conf", "add", "7200", "--max", "1")
	cli(t, srv, "did", "add", "+442071230099", "--to", "7200", "--trunk", "carrier", "--config", srv.ConfigFile)
	time.Sleep(1500 * time.Millisecond) // the server reloads trunks, DIDs and rooms within a second
	scenario := confScenario(t, "uac_conf_did.xml", "@PAUSE@", "5000")
	done := make(chan *harness.SippResult, 1)
	go func() {
		done <- harness.Sipp(t, srv.SIPAddr(), "-sf", scenario, "-s", "+442071230099", "-i", "127.0.0.4",
			"-mp", fmt.Sprint(harness.FreePort(t, "udp")), "-key", "caller", "+4915112345", "-timeout", "20s")
	}()
	if _, err := srv.WaitLog(10*time.Second, `conference join`, `room=7200`, `from=\+4915112345`, `participants=1`); err != nil {
		t.Fatalf("the carrier's caller did not join: %v", err)
	}
	if n := srv.Metric(t, "kaopu_conference_participants"); n != 1 {
		t.Errorf("kaopu_conference_participants = %v, want 1", n)
	}
	busy := harness.Sipp(t, srv.SIPAddr(), "-sf", expectingCarrier(t, 486), "-s", "+442071230099", "-i", "127.0.0.4",
		"-mp", fmt.Sprint(harness.FreePort(t, "udp")), "-timeout", "10s")
	if busy.ExitCode != 0 {
		t.Errorf("second caller to the full room: exit %d, want 0 (486)\n%s", busy.ExitCode, busy.Errors)
	}
	r := <-done
	if r.ExitCode != 0 {
		t.Fatalf("carrier: exit %d, want 0 (answered, in the room, hung up)\n%s", r.ExitCode, r.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `conference leave`, `room=7200`, `participants=0`); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitLog(5*time.Second, `application call refused`, `status=486`); err != nil {
		t.Fatal(err)
	}
}
