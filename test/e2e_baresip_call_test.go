package test

// End-to-end test of a call between two real softphones: baresip 1.0 as
// alice and as bob, each playing its own tone and recording what it hears,
// with kaopu anchoring the media in between.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// The tones the two phones play: far apart, and each a whole number of
// periods in a 100 ms analysis window at 8 kHz, so neither leaks into the
// other's Goertzel bin.
const (
	aliceTone = 440.0
	bobTone   = 1000.0
	toneLevel = 8000.0 // peak, of 32767
)

// TestBaresipCall: bob (auto-answer) and alice register with digest auth;
// alice calls bob and hangs up after ~4 s. Each side's SDP names the
// server's relay, not the other phone, and each phone receives RTP from
// that relay; alice's recording is bob's 1000 Hz tone and bob's is alice's
// 440 Hz tone (audio crossed both ways, and is not an echo); the CDR says
// ANSWERED with PCMU and more than 100 packets each way on both legs; the
// server logs the end of the call.
func TestBaresipCall(t *testing.T) {
	const callLength = 4 * time.Second
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig}) // MD5: all baresip 1.0 answers
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")

	// aufile hangs up when its file ends: the files outlast the call.
	dir := t.TempDir()
	wav := func(name string, freq float64) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, harness.ToneWAV(freq, 8000, callLength+3*time.Second, toneLevel), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-2",
		Server: srv.SIPAddr(), AnswerMode: "auto", AudioSource: wav("bob-1000hz.wav", bobTone)})
	alice := harness.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1",
		Server: srv.SIPAddr(), AudioSource: wav("alice-440hz.wav", aliceTone)})
	for _, b := range []*harness.Baresip{bob, alice} {
		if err := b.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	if err := alice.Dial("sip:bob@" + srv.Domain); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitOutput(10*time.Second, `Call established: sip:bob@`); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := bob.WaitOutput(2*time.Second, `Call established: sip:alice@`); err != nil {
		t.Fatalf("bob: %v", err)
	}
	time.Sleep(callLength) // the conversation
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*harness.Baresip{alice, bob} {
		if _, err := b.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.WaitLog(5*time.Second, `msg="call ended"`, `from=alice to=bob status=200 reason="caller hung up"`); err != nil {
		t.Fatal(err)
	}

	t.Run("media anchored", func(t *testing.T) {
		// Each phone's SDP goes to the other with the relay's port instead
		// of its own, and RTP arrives at each phone from that port.
		offer := sdpAudioPort(t, "alice's offer", findSIP(alice, true, "INVITE", 0))
		toBob := sdpAudioPort(t, "the offer bob got", findSIP(bob, false, "INVITE", 0))
		answer := sdpAudioPort(t, "bob's answer", findSIP(bob, true, "INVITE", 200))
		toAlice := sdpAudioPort(t, "the answer alice got", findSIP(alice, false, "INVITE", 200))
		if toBob == offer || toAlice == answer {
			t.Errorf("SDP not rewritten: alice offered port %d, bob got %d; bob answered %d, alice got %d",
				offer, toBob, answer, toAlice)
		}
		for _, c := range []struct {
			who  string
			b    *harness.Baresip
			port int
		}{{"alice", alice, toAlice}, {"bob", bob, toBob}} {
			want := fmt.Sprintf("receiving from 127.0.0.1:%d", c.port)
			line, err := c.b.WaitOutput(0, `incoming rtp for 'audio' established`)
			if err != nil || !strings.HasSuffix(line, want) {
				t.Errorf("%s: RTP line %q (%v), want %q (the relay port in its SDP)", c.who, line, err, want)
			}
		}
	})

	t.Run("call record", func(t *testing.T) {
		c := lastCDR(t, srv)
		legs := map[string]cdrLeg{}
		for _, l := range c.Legs {
			legs[l.Leg] = l
		}
		if c.Disposition != "ANSWERED" || c.Cause != 200 || c.Caller != "alice" || c.Callee != "bob" ||
			c.Codec != "PCMU" || c.Billsec < 3 || c.Billsec > 6 {
			t.Errorf("CDR %+v, want ANSWERED 200 alice -> bob, codec PCMU, billsec 3-6", c)
		}
		// ~4 s of 20 ms packets: ~200 each way on each leg.
		for _, name := range []string{"caller", "callee"} {
			if l, ok := legs[name]; !ok || l.PacketsIn <= 100 || l.PacketsOut <= 100 {
				t.Errorf("%s leg %+v, want more than 100 packets in and out (legs %+v)", name, l, c.Legs)
			}
		}
		for _, b := range []*harness.Baresip{alice, bob} {
			if _, err := b.WaitOutput(0, `Set audio (en|de)coder: `+c.Codec+` `); err != nil {
				t.Errorf("the CDR says %s: %v", c.Codec, err)
			}
		}
	})

	// sndfile completes its files when the call ends; stopping the phones
	// also makes sure nothing is still writing.
	alice.Stop()
	bob.Stop()
	t.Run("alice hears bob", func(t *testing.T) {
		checkHeard(t, alice, bobTone, aliceTone, callLength)
	})
	t.Run("bob hears alice", func(t *testing.T) {
		checkHeard(t, bob, aliceTone, bobTone, callLength)
	})
}

// checkHeard checks the one recording of b: at least most of the call long,
// and in at least 90% of its 100 ms windows the tone want at no less than
// half the level played while the tone notWant (b's own) stays below a
// tenth of that.
func checkHeard(t *testing.T, b *harness.Baresip, want, notWant float64, call time.Duration) {
	t.Helper()
	checkHeardFile(t, b, 0, 1, want, notWant, call)
}

// findSIP is the last INVITE (status 0) or response to INVITE with status
// that b sent (sent) or received, with a body.
func findSIP(b *harness.Baresip, sent bool, method string, status int) *harness.Message {
	ev := b.Events()
	for i := len(ev) - 1; i >= 0; i-- {
		e := ev[i]
		if e.Sent != sent || len(e.Body) == 0 || e.CSeqMethod() != method {
			continue
		}
		if (status == 0 && !e.IsResponse()) || (status != 0 && e.IsResponse() && e.StatusCode() == status) {
			return e.Message
		}
	}
	return nil
}

var mAudio = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// sdpAudioPort is the audio port of m's SDP body.
func sdpAudioPort(t *testing.T, what string, m *harness.Message) int {
	t.Helper()
	if m == nil {
		t.Fatalf("%s: no such SIP message with SDP in baresip's trace", what)
	}
	sub := mAudio.FindSubmatch(m.Body)
	if sub == nil {
		t.Fatalf("%s: no m=audio line in\n%s", what, m.Body)
	}
	port, _ := strconv.Atoi(string(sub[1]))
	return port
}
