package test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// TestPhoneLossyNetwork: a call whose media crosses a path that drops 5% of
// packets and delays them by 50 ms ± 40 ms, both ways. Each phone learns
// its "public" address from a STUN server that is really an impairing
// relay (harness.ImpairingSTUN; this machine's kernel has no tc netem), and
// announces it in SDP, so all RTP goes through the impairment. The
// recording still holds the tone throughout: the jitter buffer reorders
// and waits for late packets, and packet-loss concealment fills the lost
// ones, so the tone never drops out for two 20 ms windows in a row.
func TestPhoneLossyNetwork(t *testing.T) {
	const callLength = 6 * time.Second
	relay := harness.StartImpairingSTUN(t, harness.Impairment{Loss: 0.05, Delay: 50 * time.Millisecond, Jitter: 40 * time.Millisecond}, 4)
	dir := t.TempDir()
	bobAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t, "both"))
	rec := filepath.Join(dir, "bob-heard.wav")
	bob := harness.StartPhone(t, "bob", nil, nil, "answer", "--listen", bobAddr, "--user", "bob",
		"--stun", relay.Addr, "--record", rec, "--log-level", "info")
	if _, err := bob.WaitOutput(5*time.Second, `^listening on `); err != nil {
		t.Fatal(err)
	}
	alice := harness.StartPhone(t, "alice", nil, nil, "call", "sip:bob@"+bobAddr,
		"--listen", "127.0.0.1:0", "--user", "alice", "--stun", relay.Addr, "--log-level", "info",
		"--play", toneFile(t, dir, "alice.wav", aliceTone, callLength+5*time.Second), "--duration", callLength.String())
	if code := alice.Wait(30 * time.Second); code != 0 {
		t.Fatalf("caller exited %d, want 0", code)
	}
	if code := bob.Wait(10 * time.Second); code != 0 {
		t.Fatalf("answerer exited %d", code)
	}
	// Both phones used the relay's address, as STUN told them.
	for _, p := range []*harness.Phone{alice, bob} {
		if _, err := p.WaitOutput(0, `msg=STUN .*public=127\.0\.0\.1:`); err != nil {
			t.Error(err)
		}
	}
	line, err := bob.WaitOutput(0, `^\[ended\] .* loss=`)
	if err != nil {
		t.Fatal(err)
	}
	st := relay.Stats()
	t.Logf("bob: %s; relay forwarded %d, dropped %d", line, st.Forwarded, st.Dropped)
	if st.Dropped < 10 || st.Forwarded < 400 {
		t.Fatalf("relay forwarded %d and dropped %d packets: the media did not cross the impairment", st.Forwarded, st.Dropped)
	}
	a := checkToneFile(t, rec, aliceTone, bobTone, callLength-time.Second)
	// Gaps: skip the first second (the jitter buffer settling) and the
	// last half second (the hangup).
	w := a.Windows(20 * time.Millisecond)
	run, worst := 0, 0
	for _, x := range w[50 : len(w)-25] {
		if x.Tone(aliceTone) < toneLevel/8 {
			run++
			worst = max(worst, run)
		} else {
			run = 0
		}
	}
	if worst >= 2 {
		t.Errorf("the tone dropped out for %d consecutive 20 ms windows (%d ms): more than concealment fills", worst, 20*worst)
	}
}
