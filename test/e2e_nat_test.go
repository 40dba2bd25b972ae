//go:build linux

package test

// End-to-end test through a real NAT: alice is baresip in a network
// namespace behind a router namespace doing iptables MASQUERADE, bob is
// baresip on the host; kaopu listens on the host end of the router's WAN
// link.

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

// TestCallThroughNAT: alice registers from behind the MASQUERADE router and
// the server binds her to the router's WAN address, not her private one;
// alice calls bob, then bob calls alice (reached only through the router's
// connection tracking); both calls are answered, each side's recording of
// each call is the other side's tone, and the CDR of each call has packets
// in and out on both legs.
func TestCallThroughNAT(t *testing.T) {
	const callLength = 3 * time.Second
	nat := harness.StartNAT(t)
	// kaopu listens (SIP, and so its RTP pool) on the host end of the WAN
	// link: the last --sip wins over the harness's loopback one.
	sipAddr := fmt.Sprintf("%s:%d", nat.HostIP, harness.FreePort(t, "both"))
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig, Args: []string{"--sip", sipAddr}})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")

	dir := t.TempDir()
	wav := func(name string, freq float64) string {
		path := filepath.Join(dir, name)
		// aufile hangs up when its file ends: the file outlasts a call (it
		// is opened afresh for every call).
		if err := os.WriteFile(path, harness.ToneWAV(freq, 8000, callLength+3*time.Second, toneLevel), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-2",
		Server: sipAddr, AnswerMode: "auto", AudioSource: wav("bob-1000hz.wav", bobTone)})
	alice := nat.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1",
		Server: sipAddr, AnswerMode: "auto", AudioSource: wav("alice-440hz.wav", aliceTone)})
	for _, b := range []*harness.Baresip{bob, alice.Baresip} {
		if err := b.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("binding is the router's address", func(t *testing.T) {

		line, err := srv.WaitLog(5*time.Second, `msg="binding added"`, `aor=\S*alice`)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(line, "source="+nat.WANIP+":") {
			t.Errorf("alice's binding %q: want source=%s:PORT (the router's WAN address; alice is %s behind it)",
				line, nat.WANIP, nat.PhoneIP)
		}
		if strings.Contains(line, "source="+nat.PhoneIP) {
			t.Errorf("alice's binding has her private address as source: no NAT happened? %q", line)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	calls := []struct {
		name           string
		caller, callee string
		dial           func(string) error
		hangup         func() error
		from, to       *harness.Baresip
	}{
		{"alice calls bob", "alice", "bob", alice.Dial, alice.Hangup, alice.Baresip, bob},
		{"bob calls alice", "bob", "alice", bob.Dial, bob.Hangup, bob, alice.Baresip},
	}
	for i, c := range calls {
		if err := c.dial("sip:" + c.callee + "@" + srv.Domain); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Count the established/terminated lines: the second call's are
		// the second ones.
		if err := waitCount(c.from, 10*time.Second, `Call established: sip:`+c.callee+`@`, i+1); err != nil {
			t.Fatalf("%s: %s: %v", c.name, c.caller, err)
		}
		if err := waitCount(c.to, 2*time.Second, `Call established: sip:`+c.caller+`@`, i+1); err != nil {
			t.Fatalf("%s: %s: %v", c.name, c.callee, err)
		}
		// alice's media comes from the server's relay on the host side,
		// through the router.
		if err := waitCount(alice.Baresip, 2*time.Second,
			`incoming rtp for 'audio' established, receiving from `+regexp.QuoteMeta(nat.HostIP)+`:`, i+1); err != nil {
			t.Errorf("%s: alice: %v", c.name, err)
		}
		time.Sleep(callLength)
		if err := c.hangup(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, b := range []*harness.Baresip{alice.Baresip, bob} {
			if err := waitCount(b, 5*time.Second, `Call with sip:\S+ terminated`, i+1); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="call ended"`,
			fmt.Sprintf(`from=%s to=%s status=200 reason="caller hung up"`, c.caller, c.callee)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Run(c.name+"/call record", func(t *testing.T) {
			r := lastCDR(t, srv)
			if r.Disposition != "ANSWERED" || r.Caller != c.caller || r.Callee != c.callee {
				t.Errorf("CDR %+v, want ANSWERED %s -> %s", r, c.caller, c.callee)
			}
			legs := map[string]cdrLeg{}
			for _, l := range r.Legs {
				legs[l.Leg] = l
			}
			// ~3 s of 20 ms packets: ~150 each way on each leg.
			for _, name := range []string{"caller", "callee"} {
				if l, ok := legs[name]; !ok || l.PacketsIn <= 75 || l.PacketsOut <= 75 {
					t.Errorf("%s leg %+v, want more than 75 packets in and out (legs %+v)", name, l, r.Legs)
				}
			}
		})
	}

	// The server sent alice's RTP to where it came from (the router's
	// mapping), not to the private address in her SDP: once per call.
	latched := regexp.MustCompile(`msg="rtp latched" .*source=` + regexp.QuoteMeta(nat.WANIP) +
		`:\d+ sdp=` + regexp.QuoteMeta(nat.PhoneIP) + `:`)
	if n := len(latched.FindAllString(srv.Log(), -1)); n != len(calls) {
		t.Errorf("%d log lines match %q, want %d (alice's leg of each call latched to the router's address)",
			n, latched, len(calls))
	}

	// sndfile completes its files when a call ends; stopping the phones
	// also makes sure nothing is still writing.
	alice.Stop()
	bob.Stop()
	for i, c := range calls {
		t.Run(c.name+"/alice hears bob", func(t *testing.T) {
			checkHeardFile(t, alice.Baresip, i, 2, bobTone, aliceTone, callLength)
		})
		t.Run(c.name+"/bob hears alice", func(t *testing.T) {
			checkHeardFile(t, bob, i, 2, aliceTone, bobTone, callLength)
		})
	}
}

// waitCount waits up to timeout until b has printed at least n lines
// matching pattern.
func waitCount(b *harness.Baresip, timeout time.Duration, pattern string, n int) error {
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(timeout)
	for {
		got := len(re.FindAllString(b.Output(), -1))
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("baresip printed %d lines matching %q within %v, want %d", got, pattern, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkHeardFile checks the i-th of b's recordings (b must have exactly
// calls of them), as checkHeard does for its one.
func checkHeardFile(t *testing.T, b *harness.Baresip, i, calls int, want, notWant float64, call time.Duration) {
	t.Helper()
	files := b.Recordings()
	if len(files) != calls {
		t.Fatalf("recordings of what was heard %q, want %d (one per call)", files, calls)
	}
	a, err := harness.ReadWAV(files[i])
	if err != nil {
		t.Fatal(err)
	}
	if least := call * 3 / 4; a.Duration() < least {
		t.Fatalf("%s holds %v of audio, want at least %v of a %v call", files[i], a.Duration(), least, call)
	}
	windows := a.Windows(100 * time.Millisecond)
	good := 0
	var report []string
	for j, w := range windows {
		in, out := w.Tone(want), w.Tone(notWant)
		if in >= toneLevel/2 && out < in/10 {
			good++
		} else if len(report) < 10 {
			report = append(report, fmt.Sprintf("%.1fs: %.0f Hz at %.0f, %.0f Hz at %.0f",
				float64(j)/10, want, in, notWant, out))
		}
	}
	if good < len(windows)*9/10 {
		t.Errorf("%s (%v): the %.0f Hz tone clear of %.0f Hz in only %d of %d 100 ms windows; first misses:\n%s",
			files[i], a.Duration(), want, notWant, good, len(windows), strings.Join(report, "\n"))
	}
	t.Logf("%s: %v; %.0f Hz at %.0f, %.0f Hz at %.0f; %d/%d windows clear",
		filepath.Base(files[i]), a.Duration(), want, a.Tone(want), notWant, a.Tone(notWant), good, len(windows))
}
