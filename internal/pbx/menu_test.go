package pbx

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
)

// fakeMedia plays nothing and hands out the keys of its script: a 'p' is
// a pause longer than any timeout; the end of the script is silence.
type fakeMedia struct {
	keys    []rune
	prompts int // menu prompts played
	said    []string
	lib     *ivr.Library
	closed  bool
}

func (f *fakeMedia) Play(ctx context.Context, prompts ...ivr.Audio) error {
	for _, p := range prompts {
		for _, n := range []string{"invalid", "busy", "unreachable", "goodbye"} {
			if a, _ := f.lib.Get(n); len(a) == len(p) {
				f.said = append(f.said, n)
			}
		}
	}
	return nil
}

func (f *fakeMedia) PlayInterruptible(ctx context.Context, prompts ...ivr.Audio) (bool, error) {
	if f.closed {
		return false, ivr.ErrClosed
	}
	f.prompts++
	return len(f.keys) > 0 && f.keys[0] != 'p', nil
}

func (f *fakeMedia) CollectDigits(ctx context.Context, max int, term rune, timeout time.Duration) (string, error) {
	var got []rune
	for {
		if len(f.keys) == 0 {
			return string(got), ivr.ErrTimeout
		}
		k := f.keys[0]
		f.keys = f.keys[1:]
		switch {
		case k == 'p':
			return string(got), ivr.ErrTimeout
		case k == 'x':
			f.closed = true
			return string(got), ivr.ErrClosed
		case term != 0 && k == term:
			return string(got), nil
		}
		got = append(got, k)
		if max > 0 && len(got) >= max {
			return string(got), nil
		}
	}
}

func (f *fakeMedia) ClearDigits() {}

func TestMenu(t *testing.T) {
	lib, err := ivr.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	menu := Menu{Number: "700", Prompt: ivr.Silence(time.Second), Options: map[string]string{"1": "alice", "2": "600", "9": "8800"},
		Timeout: time.Second, Retries: 2}
	ours := map[string]bool{"alice": true, "1001": true, "600": true}
	for _, tc := range []struct {
		name      string
		keys      string
		ext       bool
		def       string
		reach     map[string]Outcome // connect's answer per destination; default Done
		want      Result
		connected []string
		said      []string
	}{
		{name: "a key connects its option", keys: "2",
			want: Result{Outcome: "connected", Destination: "600", Status: 200, Attempts: 1}, connected: []string{"600"}},
		{name: "an application option", keys: "9",
			want: Result{Outcome: "connected", Destination: "8800", Status: 200, Attempts: 1}, connected: []string{"8800"}},
		{name: "an invalid key replays the menu", keys: "51",
			want: Result{Outcome: "connected", Destination: "alice", Status: 200, Attempts: 2}, connected: []string{"alice"}, said: []string{"invalid"}},
		{name: "silence replays the menu up to the retries, then hangs up", keys: "",
			want: Result{Outcome: "hangup", Attempts: 3}, said: []string{"goodbye"}},
		{name: "retries used up go to the default", keys: "pp7", def: "alice",
			want: Result{Outcome: "default", Destination: "alice", Status: 200, Attempts: 3}, connected: []string{"alice"}, said: []string{"invalid"}},
		{name: "a busy destination is said, and the menu plays again", keys: "21",
			reach: map[string]Outcome{"600": {Status: 486}},
			want:  Result{Outcome: "connected", Destination: "alice", Status: 200, Attempts: 2}, connected: []string{"600", "alice"}, said: []string{"busy"}},
		{name: "no answer anywhere: unreachable each time, then goodbye", keys: "222",
			reach: map[string]Outcome{"600": {Status: 480}},
			want:  Result{Outcome: "hangup", Destination: "600", Status: 480, Attempts: 3}, connected: []string{"600", "600", "600"},
			said: []string{"unreachable", "unreachable", "unreachable", "goodbye"}},
		{name: "extension dialing: a number of ours", keys: "1001#", ext: true,
			want: Result{Outcome: "connected", Destination: "1001", Status: 200, Attempts: 1}, connected: []string{"1001"}},
		{name: "extension dialing: an option key alone, then a pause", keys: "2p", ext: true,
			want: Result{Outcome: "connected", Destination: "600", Status: 200, Attempts: 1}, connected: []string{"600"}},
		{name: "extension dialing: a number not ours is invalid", keys: "4444#p", ext: true,
			want: Result{Outcome: "hangup", Attempts: 3}, said: []string{"invalid", "goodbye"}},
		{name: "without extension dialing a number is its first key", keys: "1001#",
			want: Result{Outcome: "connected", Destination: "alice", Status: 200, Attempts: 1}, connected: []string{"alice"}},
		{name: "the caller hangs up while the destination rings", keys: "1",
			reach: map[string]Outcome{"alice": {Done: true, Status: 487}},
			want:  Result{Outcome: "caller_gone", Destination: "alice", Status: 487, Attempts: 1}, connected: []string{"alice"}},
		{name: "the caller hangs up", keys: "x",
			want: Result{Outcome: "caller_gone", Attempts: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := menu
			m.ExtensionDialing, m.Default = tc.ext, tc.def
			f := &fakeMedia{keys: []rune(tc.keys), lib: lib}
			var connected []string
			connect := func(ctx context.Context, n string) Outcome {
				connected = append(connected, n)
				if o, ok := tc.reach[n]; ok {
					return o
				}
				return Outcome{Done: true, Status: 200}
			}
			r := &Runner{Prompts: lib, Dialable: func(n string) bool { return ours[n] }}
			got := r.Run(context.Background(), &m, f, connect, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if got != tc.want {
				t.Errorf("result %+v, want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(connected, tc.connected) {
				t.Errorf("connected to %v, want %v", connected, tc.connected)
			}
			if !reflect.DeepEqual(f.said, tc.said) {
				t.Errorf("said %v, want %v", f.said, tc.said)
			}
			if f.prompts != tc.want.Attempts {
				t.Errorf("menu prompt played %d times, want %d", f.prompts, tc.want.Attempts)
			}
		})
	}
}
