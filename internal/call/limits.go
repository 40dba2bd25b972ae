package call

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// Fraud limits per calling user: how many calls at once, and how many
// started per minute. A stolen password then buys an attacker two lines
// and a trickle of calls, not a thousand premium-rate calls at once.

// Limits caps each caller; 0 turns a cap off.
type Limits struct {
	Concurrent int // calls in progress at once
	PerMinute  int // calls started within any 60 s
}

// Denied counts the calls refused by Limits, by reason, and those to a
// destination class the caller may not call.
type Denied struct {
	Concurrent, Rate, Class atomic.Uint64
}

type limiter struct {
	cfg Limits
	now func() time.Time

	mu     sync.Mutex
	active map[string]int
	starts map[string][]time.Time // within the last minute, oldest first
}

func newLimiter(cfg Limits, now func() time.Time) *limiter {
	return &limiter{cfg: cfg, now: now, active: map[string]int{}, starts: map[string][]time.Time{}}
}

// capOf is a user's own cap when it has one (-1: none), else the server's.
func capOf(own, server int) int {
	switch {
	case own < 0:
		return 0
	case own > 0:
		return own
	}
	return server
}

// admit takes a call for user, or says why not: "concurrent" or "rate".
// An emergency call is always admitted (and counted). An admitted call
// must be released with done.
func (l *limiter) admit(user string, p store.Policy, emergency bool) (reason string, ok bool) {
	now := l.now()
	concurrent, perMinute := capOf(p.MaxConcurrent, l.cfg.Concurrent), capOf(p.MaxPerMinute, l.cfg.PerMinute)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !emergency && concurrent > 0 && l.active[user] >= concurrent {
		return "concurrent", false
	}
	if perMinute > 0 {
		recent := l.starts[user]
		i := 0
		for i < len(recent) && now.Sub(recent[i]) >= time.Minute {
			i++
		}
		recent = recent[i:]
		if !emergency && len(recent) >= perMinute {
			l.starts[user] = recent
			return "rate", false
		}
		l.starts[user] = append(recent, now)
	}
	l.active[user]++
	return "", true
}

// done releases a call admitted for user.
func (l *limiter) done(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active[user]--; l.active[user] <= 0 {
		delete(l.active, user)
	}
	if s := l.starts[user]; len(s) > 0 && l.now().Sub(s[len(s)-1]) >= time.Minute {
		delete(l.starts, user)
	}
}

// Denied returns how many calls were refused: over the concurrent cap,
// over the per-minute cap, to a destination class not allowed.
func (m *Manager) Denied() (concurrent, rate, class uint64) {
	return m.denied.Concurrent.Load(), m.denied.Rate.Load(), m.denied.Class.Load()
}
