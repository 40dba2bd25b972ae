//go:build opus

package ua

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDirectCallOpus: with the opus tag, two agents that both prefer Opus
// agree on opus/48000/2, the tones cross both ways at 48 kHz through
// libopus, and DTMF goes as telephone-events at Opus's clock.
func TestDirectCallOpus(t *testing.T) {
	dir := t.TempDir()
	aev, bev := newEvents(), newEvents()
	alice := startAgent(t, "alice", Config{SRTP: SRTPOff, Codecs: []string{"opus", "PCMU"}}, aev)
	bob := startAgent(t, "bob", Config{SRTP: SRTPOff}, bev) // every codec, opus last
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	aRec, bRec := filepath.Join(dir, "alice.wav"), filepath.Join(dir, "bob.wav")
	call, err := alice.Dial(ctx, "sip:bob@"+bob.LocalAddr().String(),
		CallOptions{Source: &WAVSource{Path: toneFile(t, dir, 440, 8000, 4*time.Second)}, Sink: &WAVSink{Path: aRec}})
	if err != nil {
		t.Fatal(err)
	}
	in := incoming(t, bev)
	if err := in.Answer(ctx, CallOptions{Source: &WAVSource{Path: toneFile(t, dir, 1000, 16000, 4*time.Second)}, Sink: &WAVSink{Path: bRec}}); err != nil {
		t.Fatal(err)
	}
	if err := call.WaitAnswer(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Call{call, in} {
		if st := c.Stats(); st.Codec != "opus" {
			t.Fatalf("codec %q, want opus", st.Codec)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if err := call.SendDTMF(ctx, "4#"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "DTMF 4#", func() bool { return bev.digits() == "4#" })
	time.Sleep(1000 * time.Millisecond)
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not see the hangup")
	}
	for _, c := range []struct {
		path      string
		want, not float64
	}{{aRec, 1000, 440}, {bRec, 440, 1000}} {
		share, d := heard(t, c.path, c.want)
		own, _ := heard(t, c.path, c.not)
		if share < 0.7 || own > 0.05 || d < 2*time.Second {
			t.Errorf("%s: %.0f Hz in %.0f%% of %v, own %.0f Hz in %.0f%%", filepath.Base(c.path), c.want, 100*share, d, c.not, 100*own)
		}
		if rate := wavRate(t, c.path); rate != 48000 {
			t.Errorf("%s recorded at %d Hz, want Opus's 48000", filepath.Base(c.path), rate)
		}
	}
}

func wavRate(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, rate, err := ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return rate
}
