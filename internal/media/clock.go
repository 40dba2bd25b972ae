package media

import "time"

// Clock tells the time. The relay reads it once per packet (latch window,
// last activity, jitter); tests inject a fake one so that latch windows
// expire without sleeping.
type Clock interface {
	Now() time.Time
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
