package call

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(Limits{Concurrent: 2, PerMinute: 3}, func() time.Time { return now })
	admit := func(user string) string {
		if why, ok := l.admit(user); !ok {
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
		if _, ok := off.admit("alice"); !ok {
			t.Fatal("limits off refused a call")
		}
	}
}
