package test

// End-to-end tests of SRTP through kaopu (issue 5): two baresips call each
// other with SDES-keyed SRTP, or one with SRTP and one without; a tshark
// capture on loopback shows that what crosses an SRTP leg does not decode
// to the call's tones while the plain leg does.

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/test/harness"
)

// The relay's ports in these tests, and baresip's own: outside the
// benchmarks' 16000-31999, so the capture filter sees only this test.
const (
	srtpRelayPorts   = "33000-33099"
	srtpBaresipPorts = "33200-33299"
	srtpCaptureRange = "udp portrange 33000-33099"
)

type srtpCallOptions struct {
	aliceEnc, bobEnc string // baresip mediaenc: "srtp-mand", "srtp" or ""
	transport        string // udp, tcp or tls for SIP
	policy           string // security.media_encryption
}

// srtpCallResult is a finished call: the phones (stopped, recordings
// complete), the server, and the relay ports of each leg.
type srtpCallResult struct {
	srv                *harness.Server
	alice, bob         *harness.Baresip
	capture            *harness.Capture
	relayA, relayB     int // leg A faces alice (the caller), leg B bob
	offerA, offerToB   *harness.Message
	answerToA, answerB *harness.Message
}

// srtpCall runs a ~4 s call from alice to bob with a capture running, and
// checks both phones heard each other's tone.
func srtpCall(t *testing.T, o srtpCallOptions) *srtpCallResult {
	t.Helper()
	const callLength = 4 * time.Second
	cfg := sippConfig + "rtp:\n  ports: " + srtpRelayPorts + "\n"
	if o.policy != "" {
		cfg += "security:\n  media_encryption: " + o.policy + "\n"
	}
	srv := harness.StartServer(t, harness.ServerOptions{Config: cfg})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	dir := t.TempDir()
	wav := func(name string, freq float64) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, harness.ToneWAV(freq, 8000, callLength+3*time.Second, toneLevel), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	sipAddr, ca := srv.SIPAddr(), ""
	if o.transport == "tls" {
		sipAddr, ca = srv.SIPSAddr(), filepath.Join(srv.DataDir, "tls", "cert.pem")
	}
	capture := harness.StartCapture(t, srtpCaptureRange)
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-2", Server: sipAddr,
		Transport: o.transport, CAFile: ca, AnswerMode: "auto", AudioSource: wav("bob-1000hz.wav", bobTone),
		MediaEnc: o.bobEnc, RTPPorts: srtpBaresipPorts})
	alice := harness.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1", Server: sipAddr,
		Transport: o.transport, CAFile: ca, AudioSource: wav("alice-440hz.wav", aliceTone),
		MediaEnc: o.aliceEnc, RTPPorts: srtpBaresipPorts})
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
	time.Sleep(callLength)
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*harness.Baresip{alice, bob} {
		if _, err := b.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
	}
	alice.Stop()
	bob.Stop()
	capture.Stop()
	r := &srtpCallResult{srv: srv, alice: alice, bob: bob, capture: capture,
		offerA: findSIP(alice, true, "INVITE", 0), offerToB: findSIP(bob, false, "INVITE", 0),
		answerB: findSIP(bob, true, "INVITE", 200), answerToA: findSIP(alice, false, "INVITE", 200)}
	for name, m := range map[string]*harness.Message{"alice's offer": r.offerA, "the offer bob got": r.offerToB,
		"bob's answer": r.answerB, "the answer alice got": r.answerToA} {
		if m == nil {
			t.Fatalf("%s: not in the phone's SIP trace", name)
		}
	}
	r.relayA = sdpAudioPort(t, "the answer alice got", r.answerToA)
	r.relayB = sdpAudioPort(t, "the offer bob got", r.offerToB)
	t.Run("alice hears bob", func(t *testing.T) { checkHeard(t, alice, bobTone, aliceTone, callLength) })
	t.Run("bob hears alice", func(t *testing.T) { checkHeard(t, bob, aliceTone, bobTone, callLength) })
	return r
}

var cryptoLine = regexp.MustCompile(`(?m)^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)`)

// keysOf returns the inline keys of m's SDP.
func keysOf(m *harness.Message) []string {
	var keys []string
	for _, sub := range cryptoLine.FindAllStringSubmatch(string(m.Body), -1) {
		keys = append(keys, sub[3])
	}
	return keys
}

func protoOf(m *harness.Message) string {
	sub := regexp.MustCompile(`(?m)^m=audio \d+ (\S+) `).FindStringSubmatch(string(m.Body))
	if sub == nil {
		return ""
	}
	return sub[1]
}

// legTone is the median, over 100 ms windows, of the amplitude at freq of
// the RTP payloads sent to (toRelay) or from a relay port, decoded as
// PCMU, and the number of packets.
func legTone(pkts []harness.RTPPacket, port int, toRelay bool, freq float64) (float64, int) {
	var samples []float64
	n := 0
	for _, p := range pkts {
		if (toRelay && p.DstPort == port) || (!toRelay && p.SrcPort == port) {
			n++
			for _, b := range p.Payload {
				samples = append(samples, float64(codec.DecodeUlaw(b)))
			}
		}
	}
	var amps []float64
	for i := 0; i+800 <= len(samples); i += 800 {
		amps = append(amps, harness.Goertzel(samples[i:i+800], 8000, freq))
	}
	if len(amps) == 0 {
		return 0, n
	}
	sort.Float64s(amps)
	return amps[len(amps)/2], n
}

// checkLeg checks the captured RTP of one leg, both ways: the tone that
// each direction carries is there on a plain leg and absent on an SRTP one.
func checkLeg(t *testing.T, pkts []harness.RTPPacket, name string, port int, inTone, outTone float64, encrypted bool) {
	t.Helper()
	for _, d := range []struct {
		toRelay bool
		freq    float64
	}{{true, inTone}, {false, outTone}} {
		amp, n := legTone(pkts, port, d.toRelay, d.freq)
		dir := map[bool]string{true: "phone->relay", false: "relay->phone"}[d.toRelay]
		t.Logf("%s leg (relay port %d) %s: %d RTP packets, %.0f Hz at %.0f", name, port, dir, n, d.freq, amp)
		if n < 100 {
			t.Errorf("%s leg %s: only %d RTP packets captured", name, dir, n)
			continue
		}
		if encrypted && amp > toneLevel/4 {
			t.Errorf("%s leg %s is SRTP, yet its payloads decode to the %.0f Hz tone (%.0f)", name, dir, d.freq, amp)
		}
		if !encrypted && amp < toneLevel/2 {
			t.Errorf("%s leg %s is plain RTP, yet its payloads do not carry the %.0f Hz tone (%.0f): the check is broken", name, dir, d.freq, amp)
		}
	}
}

// checkNoKeysLogged: none of the call's SDES keys is in the server's log.
func checkNoKeysLogged(t *testing.T, r *srtpCallResult) {
	t.Helper()
	log := r.srv.AllLogs()
	for _, m := range []*harness.Message{r.offerA, r.offerToB, r.answerB, r.answerToA} {
		for _, k := range keysOf(m) {
			if strings.Contains(log, k[:16]) {
				t.Errorf("an SDES key is in the server's log")
			}
		}
	}
}

// TestBaresipSRTPCall: both phones register over TLS; alice requires SRTP
// (RTP/SAVP), bob offers it best effort (mediaenc=srtp) and is reached
// over TLS; both legs are SRTP, each with keys of the server's own; both
// hear each other; on the wire neither leg carries a tone.
func TestBaresipSRTPCall(t *testing.T) {
	r := srtpCall(t, srtpCallOptions{aliceEnc: "srtp-mand", bobEnc: "srtp", transport: "tls"})
	for _, b := range []*harness.Baresip{r.alice, r.bob} {
		if _, err := b.WaitOutput(0, `\{0/TLS/v4\} 200 OK`); err != nil {
			t.Errorf("not registered over TLS: %v", err)
		}
	}
	if via := r.offerToB.Get("Via"); !strings.HasPrefix(via, "SIP/2.0/TLS ") {
		t.Errorf("bob got the INVITE with Via %q, want it over TLS", via)
	}
	if p := protoOf(r.offerA); p != "RTP/SAVP" {
		t.Fatalf("alice offered %s", p)
	}
	if p := protoOf(r.answerToA); p != "RTP/SAVP" || len(keysOf(r.answerToA)) != 1 {
		t.Errorf("alice got an answer in %s with %d keys", p, len(keysOf(r.answerToA)))
	}
	if len(keysOf(r.offerToB)) == 0 || len(keysOf(r.answerB)) != 1 {
		t.Errorf("bob was offered %d keys and answered with %d", len(keysOf(r.offerToB)), len(keysOf(r.answerB)))
	}
	// Per-leg keys: nothing a phone sent reaches the other phone.
	for _, k := range append(keysOf(r.offerA), keysOf(r.answerB)...) {
		if strings.Contains(string(r.offerToB.Body)+string(r.answerToA.Body), k) {
			t.Error("a phone's SDES key was passed to the other phone")
		}
	}
	pkts := r.capture.RTP(r.relayA, r.relayB)
	checkLeg(t, pkts, "alice's", r.relayA, aliceTone, bobTone, true)
	checkLeg(t, pkts, "bob's", r.relayB, bobTone, aliceTone, true)
	checkNoKeysLogged(t, r)
	c := lastCDR(t, r.srv)
	if c.Disposition != "ANSWERED" || c.Codec != "PCMU" {
		t.Errorf("CDR %+v", c)
	}
}

// TestBaresipSRTPToRTP: alice with SRTP, bob without: the server bridges
// SRTP to plain RTP. The capture proves the check: bob's plain leg carries
// both tones, alice's SRTP leg neither.
func TestBaresipSRTPToRTP(t *testing.T) {
	r := srtpCall(t, srtpCallOptions{aliceEnc: "srtp-mand", transport: "udp"})
	if p := protoOf(r.answerToA); p != "RTP/SAVP" || len(keysOf(r.answerToA)) != 1 {
		t.Errorf("alice got an answer in %s with %d keys", p, len(keysOf(r.answerToA)))
	}
	if p := protoOf(r.offerToB); p != "RTP/AVP" {
		t.Errorf("bob was offered %s, want best-effort RTP/AVP", p)
	}
	if len(keysOf(r.answerB)) != 0 {
		t.Errorf("bob (no SRTP) answered with keys")
	}
	pkts := r.capture.RTP(r.relayA, r.relayB)
	checkLeg(t, pkts, "alice's", r.relayA, aliceTone, bobTone, true)
	checkLeg(t, pkts, "bob's", r.relayB, bobTone, aliceTone, false)
	checkNoKeysLogged(t, r)
}

// TestSRTPRequiredRejectsPlain: with security.media_encryption: required,
// sipp's plain RTP offer gets 488 with a Warning, and no call is made.
func TestSRTPRequiredRejectsPlain(t *testing.T) {
	f := newCallFixture(t, "rtp:\n  ports: "+srtpRelayPorts+"\nsecurity:\n  media_encryption: required\n")
	f.registerCallee(t)
	r := f.caller(t, failingCaller(t, 488), "bob")
	if r.ExitCode != 0 {
		t.Fatalf("caller: exit %d, want 0 (488 received)\n%s", r.ExitCode, r.Errors)
	}
	var got *harness.SippMessage
	for _, m := range r.Trace() {
		if !m.Sent && strings.HasPrefix(m.StartLine, "SIP/2.0 488") {
			got = &m
		}
	}
	if got == nil || !strings.Contains(got.Get("Warning"), "SRTP") {
		t.Fatalf("488 without an SRTP Warning: %+v", got)
	}
	if _, err := f.srv.WaitLog(5*time.Second, `msg="call refused"`, `status=488`, `srtp_required=true`); err != nil {
		t.Fatal(err)
	}
}
