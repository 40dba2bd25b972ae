package ua

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// toneFile writes d of a sine at freq Hz (8 kHz, amplitude 8000) to a WAV
// file in dir.
func toneFile(t *testing.T, dir string, freq float64, rate int, d time.Duration) string {
	t.Helper()
	n := int(d.Seconds() * float64(rate))
	var b bytes.Buffer
	b.Write(wavHeader(rate, uint32(2*n)))
	for i := range n {
		binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+strconv.Itoa(int(freq))+".wav")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func goertzel(x []int16, rate int, freq float64) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return 2 * math.Sqrt(math.Max(s1*s1+s2*s2-c*s1*s2, 0)) / float64(len(x))
}

// heard reads a recording and returns the share of its 100 ms windows
// after the first 300 ms that hold freq at half the played level or more.
func heard(t *testing.T, path string, freq float64) (float64, time.Duration) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	win := rate / 10
	good, total := 0, 0
	for i := 3 * win; i+win <= len(pcm); i += win {
		total++
		if goertzel(pcm[i:i+win], rate, freq) > 4000 {
			good++
		}
	}
	if total == 0 {
		return 0, 0
	}
	return float64(good) / float64(total), time.Duration(len(pcm)) * time.Second / time.Duration(rate)
}

type events struct {
	mu    sync.Mutex
	dtmf  []rune
	msgs  []string
	calls chan *Call
}

func newEvents() *events { return &events{calls: make(chan *Call, 4)} }

func (e *events) hooks() Hooks {
	return Hooks{
		OnIncoming: func(c *Call) { e.calls <- c },
		OnDTMF: func(_ *Call, r rune) {
			e.mu.Lock()
			e.dtmf = append(e.dtmf, r)
			e.mu.Unlock()
		},
		OnMessage: func(from, text string) {
			e.mu.Lock()
			e.msgs = append(e.msgs, from+" "+text)
			e.mu.Unlock()
		},
	}
}

func (e *events) digits() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return string(e.dtmf)
}

func (e *events) messages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.msgs...)
}

func startAgent(t *testing.T, user string, cfg Config, ev *events) *Agent {
	t.Helper()
	cfg.User = user
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	h := ev.hooks()
	h.OnTransfer = cfg.Hooks.OnTransfer
	cfg.Hooks = h
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", user)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func incoming(t *testing.T, ev *events) *Call {
	t.Helper()
	select {
	case c := <-ev.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no incoming call")
		return nil
	}
}

// TestDirectCall: alice calls bob by address with no server; each plays a
// tone and records; each hears the other's tone, not its own; DTMF and
// messages cross both ways; hold and resume change the state; the call
// ends on either side's hangup.
func TestDirectCall(t *testing.T) {
	for _, mode := range []struct {
		name  string
		srtp  SRTPMode
		codec string
	}{{"PCMU", SRTPOff, "PCMU"}, {"G722+SRTP", SRTPRequire, "G722"}, {"PCMA+best-effort-SRTP", SRTPOffer, "PCMA"}} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			aev, bev := newEvents(), newEvents()
			alice := startAgent(t, "alice", Config{SRTP: mode.srtp, Codecs: []string{mode.codec}}, aev)
			bob := startAgent(t, "bob", Config{SRTP: mode.srtp}, bev)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			aRec, bRec := filepath.Join(dir, "alice.wav"), filepath.Join(dir, "bob.wav")
			call, err := alice.Dial(ctx, "sip:bob@"+bob.LocalAddr().String(),
				CallOptions{Source: &WAVSource{Path: toneFile(t, dir, 440, 8000, 5*time.Second)}, Sink: &WAVSink{Path: aRec}})
			if err != nil {
				t.Fatal(err)
			}
			in := incoming(t, bev)
			if in.State() != StateIncoming || !strings.Contains(in.Peer(), "alice@") {
				t.Fatalf("incoming call in state %s from %q", in.State(), in.Peer())
			}
			if err := in.Answer(ctx, CallOptions{Source: &WAVSource{Path: toneFile(t, dir, 1000, 16000, 5*time.Second)}, Sink: &WAVSink{Path: bRec}}); err != nil {
				t.Fatal(err)
			}
			if err := call.WaitAnswer(ctx); err != nil {
				t.Fatal(err)
			}
			st := call.Stats()
			if st.Codec != mode.codec || st.SRTP != (mode.srtp != SRTPOff) {
				t.Errorf("stats %+v: want codec %s, SRTP %v", st, mode.codec, mode.srtp != SRTPOff)
			}
			time.Sleep(1500 * time.Millisecond)

			if err := call.SendDTMF(ctx, "15#"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*time.Second, "DTMF 15#", func() bool { return bev.digits() == "15#" })
			if err := in.SendDTMF(ctx, "*9"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*time.Second, "DTMF *9", func() bool { return aev.digits() == "*9" })

			if err := call.Hold(ctx); err != nil {
				t.Fatal(err)
			}
			if call.State() != StateHeld || !in.RemoteHold() {
				t.Fatalf("after hold: caller %s, callee remote hold %v", call.State(), in.RemoteHold())
			}
			if err := call.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if call.State() != StateActive || in.RemoteHold() {
				t.Fatalf("after resume: caller %s, callee remote hold %v", call.State(), in.RemoteHold())
			}
			time.Sleep(1500 * time.Millisecond)
			if err := in.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-call.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("caller did not see the hangup")
			}
			if code, _ := call.EndStatus(); code != 200 || !call.Answered() {
				t.Errorf("caller end status %d answered %v", code, call.Answered())
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
			}
		})
	}
}

func TestMessageBothWays(t *testing.T) {
	aev, bev := newEvents(), newEvents()
	alice := startAgent(t, "alice", Config{}, aev)
	bob := startAgent(t, "bob", Config{}, bev)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alice.SendMessage(ctx, "bob@"+bob.LocalAddr().String(), "hello bob"); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendMessage(ctx, "sip:alice@"+alice.LocalAddr().String(), "hi alice"); err != nil {
		t.Fatal(err)
	}
	if m := bev.messages(); len(m) != 1 || !strings.HasSuffix(m[0], " hello bob") || !strings.Contains(m[0], "alice@") {
		t.Errorf("bob got %q", m)
	}
	if m := aev.messages(); len(m) != 1 || !strings.HasSuffix(m[0], " hi alice") {
		t.Errorf("alice got %q", m)
	}
	if err := alice.SendMessage(ctx, "1002", "no server"); err == nil {
		t.Error("a bare extension without a server was accepted")
	}
}

func TestRejectAndCancel(t *testing.T) {
	aev, bev := newEvents(), newEvents()
	alice := startAgent(t, "alice", Config{}, aev)
	bob := startAgent(t, "bob", Config{}, bev)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := "sip:bob@" + bob.LocalAddr().String()

	call, err := alice.Dial(ctx, target, CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := incoming(t, bev)
	if err := in.Reject(ctx, 486, "Busy Here"); err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if err := call.WaitAnswer(ctx); !asStatus(err, &se) || se.Code != 486 {
		t.Fatalf("rejected call: %v, want 486", err)
	}

	call, err = alice.Dial(ctx, target, CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in = incoming(t, bev)
	waitFor(t, 2*time.Second, "ringing", func() bool { return call.State() == StateRinging })
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := call.EndStatus(); code != 487 {
		t.Errorf("cancelled call ended %d, want 487", code)
	}
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not see the CANCEL")
	}
	if in.Answered() {
		t.Error("cancelled call counted as answered")
	}
}

func asStatus(err error, se **StatusError) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*StatusError)
	*se = e
	return ok
}

// TestBlindTransfer: alice calls bob, bob transfers alice to carol; alice
// ends up talking to carol and bob's call ends.
func TestBlindTransfer(t *testing.T) {
	aev, bev, cev := newEvents(), newEvents(), newEvents()
	var mu sync.Mutex
	var replaced *Call
	alice := startAgent(t, "alice", Config{Hooks: Hooks{OnTransfer: func(_, n *Call) { mu.Lock(); replaced = n; mu.Unlock() }}}, aev)
	bob := startAgent(t, "bob", Config{}, bev)
	carol := startAgent(t, "carol", Config{}, cev)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call, err := alice.Dial(ctx, "sip:bob@"+bob.LocalAddr().String(), CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bc := incoming(t, bev)
	if err := bc.Answer(ctx, CallOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := call.WaitAnswer(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		cc := incoming(t, cev)
		cc.Answer(ctx, CallOptions{})
	}()
	if err := bc.Transfer(ctx, "sip:carol@"+carol.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the transferred call did not end")
	}
	mu.Lock()
	n := replaced
	mu.Unlock()
	if n == nil || n.State() != StateActive || !strings.Contains(n.Peer(), "carol@") {
		t.Fatalf("replacement call %v", n)
	}
}

// TestMediaStart: Stats.MediaStart is zero before the media clock ticks,
// then the time of its first tick, and a recording holds one frame per
// 20 ms from then on (silence included), so that its sample n was played
// at MediaStart + n/rate.
func TestMediaStart(t *testing.T) {
	dir := t.TempDir()
	aev, bev := newEvents(), newEvents()
	alice := startAgent(t, "alice", Config{SRTP: SRTPOff, Codecs: []string{"PCMU"}}, aev)
	bob := startAgent(t, "bob", Config{SRTP: SRTPOff}, bev)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := alice.Dial(ctx, "sip:bob@"+bob.LocalAddr().String(), CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := incoming(t, bev)
	if !in.Stats().MediaStart.IsZero() {
		t.Error("MediaStart set before the call was answered")
	}
	rec := filepath.Join(dir, "bob.wav")
	before := time.Now()
	if err := in.Answer(ctx, CallOptions{Sink: &WAVSink{Path: rec}}); err != nil {
		t.Fatal(err)
	}
	if err := call.WaitAnswer(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	start := in.Stats().MediaStart
	if start.Before(before) || start.After(before.Add(500*time.Millisecond)) {
		t.Fatalf("callee MediaStart %v, answered at %v", start, before)
	}
	if cs := call.Stats().MediaStart; cs.IsZero() || cs.Before(before) {
		t.Errorf("caller MediaStart %v, answered after %v", cs, before)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	f, err := os.Open(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	got := time.Duration(len(pcm)) * time.Second / time.Duration(rate)
	if want := end.Sub(start); got > want+frameMs*time.Millisecond || got < want-100*time.Millisecond {
		t.Errorf("recording holds %v, the media clock ran %v", got, want)
	}
}
