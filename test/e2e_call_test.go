package test

// End-to-end tests of calls through kaopu (issue "Calls: B2BUA ..."): sipp
// as the caller (with proxy authentication) and sipp as the registered
// callee, all on 127.0.0.1.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// callFixture is a server with caller alice and callee bob.
type callFixture struct {
	srv *harness.Server
}

func newCallFixture(t *testing.T, extraConfig ...string) *callFixture {
	t.Helper()
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig + strings.Join(extraConfig, "")})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	return &callFixture{srv: srv}
}

// registerCallee registers bob from a fresh port and returns that port, on
// which the callee's sipp must then listen (the binding is its source).
func (f *callFixture) registerCallee(t *testing.T) int {
	t.Helper()
	port := harness.FreePort(t, "udp")
	r := sippRegister(t, f.srv, "register.xml", "bob", "bob-secret-2", "-key", "expires", "600", "-p", fmt.Sprint(port))
	if r.ExitCode != 0 {
		t.Fatalf("callee registration failed: exit %d\n%s", r.ExitCode, r.Errors)
	}
	return port
}

// call runs one call: the callee registered with calleeArgs (a sipp UAS),
// alice calling target with the caller scenario (and callerArgs); both
// must succeed.
func (f *callFixture) call(t *testing.T, calleeArgs []string, scenario, target string, callerArgs ...string) (r, u *harness.SippResult) {
	t.Helper()
	port := f.registerCallee(t)
	wait := callee(t, port, calleeArgs...)
	r = f.caller(t, scenario, target, callerArgs...)
	if r.ExitCode != 0 {
		t.Fatalf("caller (%s): exit %d, want 0\n%s", filepath.Base(scenario), r.ExitCode, r.Errors)
	}
	u = wait()
	if u.ExitCode != 0 {
		t.Fatalf("callee (%v): exit %d, want 0\n%s", calleeArgs, u.ExitCode, u.Errors)
	}
	return r, u
}

// callee runs a sipp UAS on port in the background; wait returns its result.
func callee(t *testing.T, port int, args ...string) (wait func() *harness.SippResult) {
	t.Helper()
	done := make(chan *harness.SippResult, 1)
	go func() {
		done <- harness.Sipp(t, append([]string{"-p", fmt.Sprint(port), "-timeout", "20s"}, args...)...)
	}()
	time.Sleep(300 * time.Millisecond) // sipp binds its port before it reads
	return func() *harness.SippResult {
		select {
		case r := <-done:
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("callee sipp did not finish")
			return nil
		}
	}
}

// caller places a call to target as alice with the given scenario file.
func (f *callFixture) caller(t *testing.T, scenario, target string, extra ...string) *harness.SippResult {
	t.Helper()
	args := append([]string{f.srv.SIPAddr(), "-sf", scenario, "-s", target,
		"-au", "alice", "-ap", "alice-secret-1", "-key", "caller", "alice", "-auth_uri", f.srv.Domain,
		"-timeout", "20s"}, extra...)
	return harness.Sipp(t, args...)
}

// failingCaller writes a caller scenario that expects final status code.
func failingCaller(t *testing.T, code int) string {
	t.Helper()
	b, err := os.ReadFile(harness.Scenario(t, "uac_auth.xml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, `<recv response="200" rrs="true"/>`)
	if i < 0 {
		t.Fatal("uac_auth.xml changed: no 200 recv")
	}
	// The ACK of a non-2xx answer reuses the INVITE's branch (RFC 3261
	// §17.1.1.3): that INVITE is 5 messages before the ACK.
	s = s[:i] + fmt.Sprintf(`<recv response="%d"/>
  <send><![CDATA[
ACK sip:[service]@kaopu.test SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-5];rport
From: "Caller" <sip:[caller]@kaopu.test>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@kaopu.test>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
`, code)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("uac_expect_%d.xml", code))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCallAnsweredAndHungUp: alice calls bob by name and by extension; the
// call is challenged (407), rings (180 relayed), is answered (200), the ACK
// and the caller's BYE reach the callee, and the server logs the call.
func TestCallAnsweredAndHungUp(t *testing.T) {
	f := newCallFixture(t)
	for _, target := range []string{"bob", "1002"} {
		t.Run(target, func(t *testing.T) {
			port := f.registerCallee(t)
			wait := callee(t, port, "-sn", "uas")
			r := f.caller(t, harness.Scenario(t, "uac_auth.xml"), target)
			if r.ExitCode != 0 {
				t.Fatalf("caller: exit %d, want 0 (answered and hung up)\n%s", r.ExitCode, r.Errors)
			}
			var codes []int
			for _, m := range r.Responses() {
				codes = append(codes, m.StatusCode())
			}
			if !containsInts(codes, 407, 180, 200) {
				t.Fatalf("caller saw %v, want 407, 180 and 200", codes)
			}
			u := wait()
			if u.ExitCode != 0 {
				t.Fatalf("callee: exit %d, want 0 (INVITE, ACK and BYE received)\n%s", u.ExitCode, u.Errors)
			}
			if _, err := f.srv.WaitLog(5*time.Second, `msg="call ended".*from=alice to=bob status=200 reason="caller hung up"`); err != nil {
				t.Fatal(err)
			}
			// The scenario holds the call 1 s before its BYE.
			c := lastCDR(t, f.srv)
			if c.Disposition != "ANSWERED" || c.Cause != 200 || c.Caller != "alice" || c.Dialed != target ||
				c.Billsec < 1 || c.Billsec > 3 || c.Duration < c.Billsec || c.Codec != "PCMU" || c.CallID == "" {
				t.Fatalf("CDR %+v, want ANSWERED 200 alice dialed %s, billsec 1-3, codec PCMU", c, target)
			}
		})
	}
}

// TestCallFailures: the caller gets the callee's rejection (busy), 404 for
// a user that does not exist and 480 for one that is not registered.
func TestCallFailures(t *testing.T) {
	f := newCallFixture(t)
	harness.AddUser(t, f.srv.DataDir, "carol", "carol-secret-3", "")
	t.Run("busy", func(t *testing.T) {
		port := f.registerCallee(t)
		wait := callee(t, port, "-sf", rejectingCallee(t, 486, "Busy Here"))
		r := f.caller(t, failingCaller(t, 486), "bob")
		if r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 0 (486 relayed)\n%s", r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("callee: exit %d (no ACK for its 486?)\n%s", u.ExitCode, u.Errors)
		}
		if _, err := f.srv.WaitLog(5*time.Second, `msg="call ended".*status=486`); err != nil {
			t.Fatal(err)
		}
		if c := lastCDR(t, f.srv); c.Disposition != "BUSY" || c.Cause != 486 || c.Billsec != 0 {
			t.Fatalf("CDR %+v, want BUSY 486 with billsec 0", c)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		if r := f.caller(t, failingCaller(t, 404), "nobody"); r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 404\n%s", r.ExitCode, r.Errors)
		}
		if c := lastCDR(t, f.srv); c.Disposition != "FAILED" || c.Cause != 404 || c.Dialed != "nobody" {
			t.Fatalf("CDR %+v, want FAILED 404 for nobody", c)
		}
	})
	t.Run("not registered", func(t *testing.T) {
		if r := f.caller(t, failingCaller(t, 480), "carol"); r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 480\n%s", r.ExitCode, r.Errors)
		}
	})
}

// rejectingCallee writes the uas_reject.xml template for code and reason.
func rejectingCallee(t *testing.T, code int, reason string) string {
	t.Helper()
	b, err := os.ReadFile(harness.Scenario(t, "uas_reject.xml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "SIP/2.0 CODE REASON", fmt.Sprintf("SIP/2.0 %d %s", code, reason), 1)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("uas_reject_%d.xml", code))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cdrRow is the part of `kaopu cdr export --format json` the tests check.
type cdrRow struct {
	CallID      string   `json:"call_id"`
	Caller      string   `json:"caller"`
	Callee      string   `json:"callee"`
	Dialed      string   `json:"dialed"`
	Disposition string   `json:"disposition"`
	Cause       int      `json:"cause"`
	Duration    int      `json:"duration"`
	Billsec     int      `json:"billsec"`
	Codec       string   `json:"codec"`
	Flags       string   `json:"flags"`
	Active      bool     `json:"active"`
	Legs        []cdrLeg `json:"legs"`
}

// cdrLeg is one leg's media counters in a call record.
type cdrLeg struct {
	Leg              string `json:"leg"`
	PacketsIn        uint64 `json:"packets_in"`
	PacketsOut       uint64 `json:"packets_out"`
	StrangersDropped uint64 `json:"strangers_dropped"`
}

// cdrs reads the call records through the CLI, as an operator would.
func cdrs(t *testing.T, srv *harness.Server) []cdrRow {
	t.Helper()
	out, code := harness.RunCLI(t, "cdr", "export", "--format", "json", "--data", srv.DataDir)
	if code != 0 {
		t.Fatalf("kaopu cdr export: exit %d\n%s", code, out)
	}
	var rows []cdrRow
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows); err != nil {
		t.Fatalf("cdr export is not JSON: %v\n%s", err, out)
	}
	return rows
}

// lastCDR waits until the newest record has ended and returns it.
func lastCDR(t *testing.T, srv *harness.Server) cdrRow {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows := cdrs(t, srv)
		if n := len(rows); n > 0 && !rows[n-1].Active {
			return rows[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ended call record within 5s: %+v", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsInts(have []int, want ...int) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestCallRecordSurvivesCrash: the server is killed (SIGKILL) during an
// answered call; after a restart the call's record is closed, flagged
// crash-recovered, and still says the call was answered.
func TestCallRecordSurvivesCrash(t *testing.T) {
	f := newCallFixture(t)
	port := f.registerCallee(t)
	waitCallee := callee(t, port, "-sn", "uas", "-timeout", "15s")
	// A caller that stays on the line for 10 s.
	b, err := os.ReadFile(harness.Scenario(t, "uac_auth.xml"))
	if err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(t.TempDir(), "uac_long.xml")
	os.WriteFile(long, []byte(strings.Replace(string(b), `<pause milliseconds="1000"/>`, `<pause milliseconds="10000"/>`, 1)), 0o644)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Fails by design: the server dies under it.
		harness.Sipp(t, f.srv.SIPAddr(), "-sf", long, "-s", "bob", "-au", "alice", "-ap", "alice-secret-1",
			"-key", "caller", "alice", "-auth_uri", f.srv.Domain, "-timeout", "15s")
	}()
	if _, err := f.srv.WaitLog(10*time.Second, `msg="call answered"`); err != nil {
		t.Fatal(err)
	}
	f.srv.Kill()
	f.srv.Restart()
	if _, err := f.srv.WaitLog(10*time.Second, `closed call records left active by a crash`); err != nil {
		t.Fatal(err)
	}
	c := lastCDR(t, f.srv)
	if !strings.Contains(c.Flags, "crash-recovered") || c.Disposition != "ANSWERED" || c.Caller != "alice" {
		t.Fatalf("CDR after crash %+v, want ANSWERED and flagged crash-recovered", c)
	}
	<-done
	waitCallee()
}

// writeULawWAV writes secs seconds of a 1 kHz tone as 8 kHz mono G.711
// µ-law WAV (format 7), the file format sipp's rtp_stream plays as PCMU.
func writeULawWAV(t *testing.T, secs int) string {
	t.Helper()
	n := 8000 * secs
	data := make([]byte, n)
	for i := range data {
		v := 8000 * math.Sin(2*math.Pi*1000*float64(i)/8000)
		data[i] = linearToULaw(int16(v))
	}
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(4 + 26 + 8 + n))
	b.WriteString("WAVEfmt ")
	le(uint32(18))
	le(uint16(7)) // WAVE_FORMAT_MULAW
	le(uint16(1))
	le(uint32(8000))
	le(uint32(8000))
	le(uint16(1))
	le(uint16(8))
	le(uint16(0))
	b.WriteString("data")
	le(uint32(n))
	b.Write(data)
	path := filepath.Join(t.TempDir(), "tone-ulaw.wav")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// linearToULaw is G.711 µ-law encoding (ITU-T G.711 §A.2).
func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	sign := byte(0)
	v := int(s)
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^(sign | byte(exp<<4) | byte(mant))
}

// TestCallMediaAnchored: the SDP each side gets names the server and a port
// of rtp.ports; the caller's RTP reaches the callee through the relay and
// the callee's echo comes back the same way (the CDR's leg counters); a
// stranger sending RTP to the relay port gets nothing and is dropped.
func TestCallMediaAnchored(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: 31000-31100\n")
	srv := f.srv
	port := f.registerCallee(t)
	waitCallee := callee(t, port, "-sn", "uas", "-rtp_echo", "-mp", fmt.Sprint(harness.FreePort(t, "udp")))
	wav := writeULawWAV(t, 2)
	b, err := os.ReadFile(harness.Scenario(t, "uac_auth.xml"))
	if err != nil {
		t.Fatal(err)
	}
	scen := strings.Replace(string(b), `<pause milliseconds="1000"/>`,
		`<nop><action><exec rtp_stream="`+wav+`,1,0"/></action></nop>
  <pause milliseconds="3000"/>`, 1)
	path := filepath.Join(t.TempDir(), "uac_media.xml")
	os.WriteFile(path, []byte(scen), 0o644)
	// A stranger (RTP bleed): once the call is up, it sends valid-looking
	// PCMU to the caller-facing relay port (the pool's first pair, 31000)
	// and listens for anything coming back.
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	strangerGot := make(chan int, 1)
	go func() {
		if _, err := srv.WaitLog(10*time.Second, `msg="call answered"`); err != nil {
			strangerGot <- -1
			return
		}
		time.Sleep(500 * time.Millisecond) // the phones latch first
		pkt := make([]byte, 172)
		pkt[0], pkt[1] = 0x80, 0 // RTP v2, PT 0 (PCMU)
		got := 0
		buf := make([]byte, 2048)
		for i := range 50 {
			pkt[3] = byte(i)
			stranger.WriteToUDP(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 31000})
			stranger.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if n, _, err := stranger.ReadFromUDP(buf); err == nil && n > 0 {
				got++
			}
		}
		strangerGot <- got
	}()
	r := f.caller(t, path, "bob", "-mp", fmt.Sprint(harness.FreePort(t, "udp")))
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d\n%s", r.ExitCode, r.Errors)
	}
	var sdp string
	for _, m := range r.Responses() {
		if m.StatusCode() == 200 && m.CSeqMethod() == "INVITE" {
			sdp = string(m.Body)
			break
		}
	}
	if !strings.Contains(sdp, "c=IN IP4 127.0.0.1") || !regexp.MustCompile(`m=audio 310\d\d RTP/AVP 0`).MatchString(sdp) {
		t.Fatalf("answer to the caller does not anchor media on the server's rtp.ports:\n%s", sdp)
	}
	waitCallee()
	c := lastCDR(t, srv)
	legs := map[string]cdrLeg{}
	for _, l := range c.Legs {
		legs[l.Leg] = l
	}
	// 2 s of 20 ms packets: 100 from the caller, echoed back by the callee.
	if legs["caller"].PacketsIn < 50 || legs["callee"].PacketsOut < 50 {
		t.Fatalf("caller's RTP did not cross the relay: legs %+v", c.Legs)
	}
	if legs["callee"].PacketsIn < 50 || legs["caller"].PacketsOut < 50 {
		t.Fatalf("callee's echo did not come back through the relay: legs %+v", c.Legs)
	}
	if got := <-strangerGot; got != 0 {
		t.Fatalf("the stranger received %d packets of the call's media (RTP bleed)", got)
	}
	if legs["caller"].StrangersDropped < 40 {
		t.Fatalf("the stranger's packets were not dropped as strangers: legs %+v", c.Legs)
	}
}

// TestCallCancelAndTimers: the caller cancels while it rings (CANCELLED),
// nobody answers within calls.no_answer_timeout (480, NO ANSWER), the
// callee hangs up (its BYE reaches the caller), and a call with no media
// either way is hung up after calls.rtp_timeout.
func TestCallCancelAndTimers(t *testing.T) {
	f := newCallFixture(t, "calls:\n  no_answer_timeout: 2s\n  rtp_timeout: 2s\n")
	srv := f.srv

	t.Run("caller cancels", func(t *testing.T) {
		port := f.registerCallee(t)
		wait := callee(t, port, "-sf", harness.Scenario(t, "uas_ring_until_cancel.xml"))
		// After the 180: CANCEL with the INVITE's branch (the INVITE is 3
		// messages back), 200 for it, 487, and the ACK (6 back).
		path := harness.Scenario(t, "uac_cancel.xml")
		if r := f.caller(t, path, "bob"); r.ExitCode != 0 {
			t.Fatalf("caller: exit %d\n%s", r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("callee was not cancelled: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if c := lastCDR(t, srv); c.Disposition != "CANCELLED" || c.Cause != 487 {
			t.Fatalf("CDR %+v, want CANCELLED 487", c)
		}
	})

	t.Run("no answer", func(t *testing.T) {
		port := f.registerCallee(t)
		wait := callee(t, port, "-sf", harness.Scenario(t, "uas_ring_until_cancel.xml"))
		start := time.Now()
		if r := f.caller(t, failingCaller(t, 480), "bob"); r.ExitCode != 0 {
			t.Fatalf("caller: exit %d, want 480 after the no-answer timeout\n%s", r.ExitCode, r.Errors)
		}
		if d := time.Since(start); d < 2*time.Second {
			t.Fatalf("480 after %v, before calls.no_answer_timeout (2s)", d)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("callee was not cancelled at the timeout: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if c := lastCDR(t, srv); c.Disposition != "NO ANSWER" || c.Cause != 480 {
			t.Fatalf("CDR %+v, want NO ANSWER 480", c)
		}
	})

	t.Run("callee hangs up", func(t *testing.T) {
		port := f.registerCallee(t)
		wait := callee(t, port, "-sf", harness.Scenario(t, "uas_hangup.xml"))
		path := harness.Scenario(t, "uac_wait_bye.xml")
		if r := f.caller(t, path, "bob"); r.ExitCode != 0 {
			t.Fatalf("caller did not get the callee's BYE: exit %d\n%s", r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("callee: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="call ended".*reason="callee hung up"`); err != nil {
			t.Fatal(err)
		}
		if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Billsec < 1 {
			t.Fatalf("CDR %+v, want ANSWERED with billsec >= 1", c)
		}
	})

	t.Run("no media", func(t *testing.T) {
		port := f.registerCallee(t)
		wait := callee(t, port, "-sn", "uas")
		path := harness.Scenario(t, "uac_silent.xml")
		if r := f.caller(t, path, "bob"); r.ExitCode != 0 {
			t.Fatalf("caller was not hung up for lack of media: exit %d\n%s", r.ExitCode, r.Errors)
		}
		if u := wait(); u.ExitCode != 0 {
			t.Fatalf("callee was not hung up: exit %d\n%s", u.ExitCode, u.Errors)
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="call ended".*reason="rtp timeout"`); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCallHold: the caller puts the call on hold with a re-INVITE
// (a=sendonly); the callee gets it with the relay's address and answers
// recvonly; the caller gets that answer with its own relay port.
func TestCallHold(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: 31000-31100\n")
	srv := f.srv
	port := f.registerCallee(t)
	wait := callee(t, port, "-sf", harness.Scenario(t, "uas_reinvite.xml"))
	path := harness.Scenario(t, "uac_hold.xml")
	if r := f.caller(t, path, "bob"); r.ExitCode != 0 {
		t.Fatalf("caller: exit %d (hold re-INVITE not answered recvonly through the relay?)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("callee: exit %d (re-INVITE not relayed sendonly with the relay's address?)\n%s", u.ExitCode, u.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `msg="in-dialog request relayed" .*method=INVITE status=200 direction=caller->callee`); err != nil {
		t.Fatal(err)
	}
}

// TestCallDirectToIP: an authenticated caller calls sip:user@IP:port of a
// phone that never registered here (a direct call); kaopu places the call
// to that address with media anchored.
func TestCallDirectToIP(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	f := &callFixture{srv: srv}
	port := harness.FreePort(t, "udp")
	wait := callee(t, port, "-sn", "uas")
	b, err := os.ReadFile(harness.Scenario(t, "uac_auth.xml"))
	if err != nil {
		t.Fatal(err)
	}
	direct := strings.ReplaceAll(string(b), "sip:[service]@kaopu.test SIP/2.0", fmt.Sprintf("sip:[service]@127.0.0.1:%d SIP/2.0", port))
	path := filepath.Join(t.TempDir(), "uac_direct.xml")
	os.WriteFile(path, []byte(direct), 0o644)
	if r := f.caller(t, path, "carol"); r.ExitCode != 0 {
		t.Fatalf("direct call: caller exit %d\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("direct call: callee exit %d\n%s", u.ExitCode, u.Errors)
	}
	if c := lastCDR(t, srv); c.Disposition != "ANSWERED" || c.Dialed != "carol" {
		t.Fatalf("CDR %+v, want an ANSWERED direct call to carol", c)
	}
}

// TestCallCallerOverTCP: a caller on TCP gets a Contact on the TCP
// listener (so its in-dialog requests come back over TCP), and its BYE
// over TCP ends the call; the callee is on UDP.
func TestCallCallerOverTCP(t *testing.T) {
	f := newCallFixture(t)
	port := f.registerCallee(t)
	wait := callee(t, port, "-sn", "uas")
	r := f.caller(t, harness.Scenario(t, "uac_auth.xml"), "bob", "-t", "t1")
	if r.ExitCode != 0 {
		t.Fatalf("caller over TCP: exit %d\n%s", r.ExitCode, r.Errors)
	}
	var contact string
	for _, m := range r.Responses() {
		if m.StatusCode() == 200 && m.CSeqMethod() == "INVITE" {
			contact = m.Get("Contact")
		}
	}
	if !strings.Contains(strings.ToLower(contact), "transport=tcp") {
		t.Fatalf("200 OK Contact %q for a TCP caller, want the TCP listener (transport=tcp)", contact)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("callee: exit %d\n%s", u.ExitCode, u.Errors)
	}
	if _, err := f.srv.WaitLog(5*time.Second, `msg="call ended".*reason="caller hung up"`); err != nil {
		t.Fatal(err)
	}
}

// TestCallHoldByCallee: the callee's re-INVITE (sendonly) reaches the
// caller inside its own dialog with the relay's address; the caller's
// recvonly answer goes back to the callee.
func TestCallHoldByCallee(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: 31000-31100\n")
	srv := f.srv
	port := f.registerCallee(t)
	wait := callee(t, port, "-sf", harness.Scenario(t, "uas_hold_caller.xml"))
	// The caller answers the re-INVITE recvonly, ACK arrives, then it hangs up.
	path := harness.Scenario(t, "uac_held.xml")
	if r := f.caller(t, path, "bob"); r.ExitCode != 0 {
		t.Fatalf("caller: exit %d (callee's hold not relayed to it?)\n%s", r.ExitCode, r.Errors)
	}
	if u := wait(); u.ExitCode != 0 {
		t.Fatalf("callee: exit %d (caller's recvonly answer not relayed back?)\n%s", u.ExitCode, u.Errors)
	}
	if _, err := srv.WaitLog(5*time.Second, `msg="in-dialog request relayed" .*method=INVITE status=200 direction=callee->caller`); err != nil {
		t.Fatal(err)
	}
}
