package call

import (
	"sync"
	"sync/atomic"
	"time"
)

// Fraud limits per calling user: how many calls at once, and how many
// started per minute. A stolen password then buys an attacker two lines
// and a trickle of calls, not a thousand premium-rate calls at once.

// Limits caps each caller; 0 turns a cap off.
type Limits struct {
	Concurrent int // calls in progress at once
	PerMinute  int // calls started within any 60 s
}

// Denied counts the calls refused by Limits, by reason.
type Denied struct {
	Concurrent, Rate atomic.Uint64
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

// admit takes a call for user, or says why not: "concurrent" or "rate".
// An admitted call must be released with done.
func (l *limiter) admit(user string) (reason string, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.Concurrent > 0 && l.active[user] >= l.cfg.Concurrent {
		return "concurrent", false
	}
	if l.cfg.PerMinute > 0 {
		recent := l.starts[user]
		i := 0
		for i < len(recent) && now.Sub(recent[i]) >= time.Minute {
			i++
		}
		recent = recent[i:]
		if len(recent) >= l.cfg.PerMinute {
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

// Denied returns how many calls the fraud limits refused: over the
// concurrent cap, over the per-minute cap.
func (m *Manager) Denied() (concurrent, rate uint64) {
	return m.denied.Concurrent.Load(), m.denied.Rate.Load()
}
