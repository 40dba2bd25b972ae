package call

import (
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(Limits{Concurrent: 2, PerMinute: 3}, func() time.Time { return now })
	admit := func(user string) string {
		if why, ok := l.admit(user, store.Policy{}, false); !ok {
			return why
		}
		return "ok"
	}
	if a, b, c := admit("alice"), admit("alice"), admit("alice"); a != "ok" || b != "ok" || c != "concurrent" {
		t.Fatalf("three calls at once: %s %s %s, want ok ok concurrent", a, b, c)
	}
	if admit("bob") != "ok" {
		t.Fatal("bob limited by alice's calls")
	}
	l.done("alice")
	if got := admit("alice"); got != "ok" {
		t.Fatalf("after one ended: %s, want ok (3rd start this minute)", got)
	}
	l.done("alice")
	if got := admit("alice"); got != "rate" {
		t.Fatalf("4th start within a minute: %s, want rate", got)
	}
	now = now.Add(61 * time.Second)
	if got := admit("alice"); got != "ok" {
		t.Fatalf("a minute later: %s, want ok", got)
	}
	// Off.
	off := newLimiter(Limits{}, time.Now)
	for range 100 {
		if _, ok := off.admit("alice", store.Policy{}, false); !ok {
			t.Fatal("limits off refused a call")
		}
	}
}

func TestLimiterPolicy(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(Limits{Concurrent: 1, PerMinute: 2}, func() time.Time { return now })
	// A user's own caps replace the server's: more lines, no rate cap.
	pbx := store.Policy{MaxConcurrent: 3, MaxPerMinute: -1}
	for i := range 3 {
		if why, ok := l.admit("pbx", pbx, false); !ok {
			t.Fatalf("call %d of a user allowed 3: %s", i+1, why)
		}
	}
	if why, ok := l.admit("pbx", pbx, false); ok || why != "concurrent" {
		t.Fatalf("4th call: %q %v, want concurrent", why, ok)
	}
	// Emergency calls pass every cap.
	if why, ok := l.admit("pbx", pbx, true); !ok {
		t.Fatalf("emergency call refused: %s", why)
	}
	if _, ok := l.admit("alice", store.Policy{}, false); !ok {
		t.Fatal("alice's first call")
	}
	if _, ok := l.admit("alice", store.Policy{}, false); ok {
		t.Fatal("alice's second call at once passed the server's cap of 1")
	}
	if _, ok := l.admit("alice", store.Policy{}, true); !ok {
		t.Fatal("alice's emergency call refused")
	}
}
