package conference

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/store"
)

// Rooms is where the rooms are kept (the store).
type Rooms interface {
	ListConferences(ctx context.Context) ([]store.Conference, error)
	ConferencesVersion(ctx context.Context) (int64, error)
}

// Config is what New needs.
type Config struct {
	Rooms   Rooms
	Prompts *ivr.Library // enter_pin, invalid, too_many, busy, goodbye
	// OnFailure is told the source of a caller who entered a wrong PIN
	// (not for a carrier's call, whose source is zero).
	OnFailure func(netip.Addr)
	// MaxAttempts at the PIN; default 3.
	MaxAttempts int
	// DigitTimeout is the wait for each digit of the PIN; default 10 s.
	DigitTimeout time.Duration
	Log          *slog.Logger
}

// Call is what Serve gets of one call.
type Call struct {
	ID       string     // Call-ID, for the logs
	Caller   string     // who is calling, for the logs
	Dialed   string     // the room's number
	Source   netip.Addr // the caller's address; zero for a carrier's call
	Endpoint *ivr.Endpoint
	Log      *slog.Logger
}

// Service runs the conference rooms of the store.
type Service struct {
	cfg              Config
	joinTone, leaveT ivr.Audio

	rooms   atomic.Pointer[map[string]store.Conference]
	version atomic.Int64

	mu   sync.Mutex
	live map[string]*room // rooms with someone in them, or being joined

	participants atomic.Int64
}

// New makes the service; Load (or Run) reads the rooms.
func New(cfg Config) (*Service, error) {
	if cfg.Rooms == nil || cfg.Prompts == nil {
		return nil, errors.New("conference: Rooms and Prompts are required")
	}
	for _, n := range []string{"enter_pin", "invalid", "too_many", "busy", "goodbye"} {
		if _, err := cfg.Prompts.Get(n); err != nil {
			return nil, fmt.Errorf("conference: %w", err)
		}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.DigitTimeout <= 0 {
		cfg.DigitTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, live: map[string]*room{},
		joinTone: twoNotes(660, 880, mixRate), leaveT: twoNotes(880, 660, mixRate)}
	empty := map[string]store.Conference{}
	s.rooms.Store(&empty)
	return s, nil
}

// twoNotes is the join or leave signal at rate: two 120 ms notes, 40 ms
// apart, at about -16 dBFS (not to drown the conversation), each with
// 5 ms ramps so it does not click.
func twoNotes(f1, f2 float64, rate int) ivr.Audio {
	note := func(f float64) []int16 {
		n := rate * 120 / 1000
		ramp := rate * 5 / 1000
		out := make([]int16, n)
		for i := range out {
			g := min(1, float64(i)/float64(ramp), float64(n-i)/float64(ramp))
			out[i] = int16(g * 5000 * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
		}
		return out
	}
	a := append(note(f1), make([]int16, rate*40/1000)...)
	return append(a, note(f2)...)
}

// Load reads the rooms when the store's version moved.
func (s *Service) Load(ctx context.Context) error {
	v, err := s.cfg.Rooms.ConferencesVersion(ctx)
	if err != nil {
		return err
	}
	if v == s.version.Load() {
		return nil
	}
	all, err := s.cfg.Rooms.ListConferences(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]store.Conference, len(all))
	for _, c := range all {
		m[c.Number] = c
	}
	s.rooms.Store(&m)
	s.version.Store(v)
	s.cfg.Log.Info("conference rooms loaded", "rooms", len(m))
	return nil
}

// Run reloads the rooms every poll until ctx ends.
func (s *Service) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Load(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Log.Warn("reading conference rooms failed", "error", err)
			}
		}
	}
}

// Room returns the room of a number, if it is one.
func (s *Service) Room(number string) (store.Conference, bool) {
	c, ok := (*s.rooms.Load())[number]
	return c, ok
}

// Participants is how many callers are in rooms now.
func (s *Service) Participants() int { return int(s.participants.Load()) }

// Admit tells, before the call is answered, whether a caller may come
// into the room of number: 0, or the SIP status to refuse with (404 no
// such room, 486 the room is full).
func (s *Service) Admit(number string) (int, string) {
	c, ok := s.Room(number)
	if !ok {
		return 404, "Not Found"
	}
	if c.Max > 0 && s.inRoom(number) >= c.Max {
		return 486, "Busy Here"
	}
	return 0, ""
}

func (s *Service) inRoom(number string) int {
	s.mu.Lock()
	r := s.live[number]
	s.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.count()
}

// Serve runs one caller's visit to a room: the PIN if the room has one,
// then the conference until ctx ends (the caller hung up). It returns
// when the caller should be hung up on.
func (s *Service) Serve(ctx context.Context, c Call) {
	log := c.Log
	if log == nil {
		log = s.cfg.Log
	}
	ep := c.Endpoint
	conf, ok := s.Room(c.Dialed)
	if !ok {
		log.Info("conference call to no room", "room", c.Dialed)
		s.say(ctx, ep, "goodbye")
		return
	}
	log = log.With("room", conf.Number)
	if conf.PIN != "" && !s.checkPIN(ctx, c, conf, log) {
		return
	}
	s.mu.Lock()
	r := s.live[conf.Number]
	if r == nil {
		r = newRoom(conf.Number, mixRate)
		s.live[conf.Number] = r
	}
	// Counted and added under s.mu, so two callers cannot both take the
	// last seat.
	if conf.Max > 0 && r.count() >= conf.Max {
		s.mu.Unlock()
		log.Info("conference full", "max", conf.Max)
		s.say(ctx, ep, "busy", "goodbye")
		return
	}
	p := newParticipant(c.ID, ep.SampleRate(), mixRate)
	ep.Connect(p)
	n := r.add(p, s.joinTone)
	s.mu.Unlock()
	s.participants.Add(1)
	log.Info("conference join", "caller", c.Caller, "participants", n, "codec", ep.Codec())

	<-ctx.Done()

	ep.Connect(nil)
	s.mu.Lock()
	left := r.remove(p, s.leaveT)
	if left == 0 && s.live[conf.Number] == r {
		delete(s.live, conf.Number)
	}
	s.mu.Unlock()
	s.participants.Add(-1)
	log.Info("conference leave", "caller", c.Caller, "participants", left,
		"duration", time.Since(p.joined).Round(time.Second))
}

// checkPIN asks for the room's PIN up to MaxAttempts times; false when
// the caller did not enter it (it has been told, or hung up).
func (s *Service) checkPIN(ctx context.Context, c Call, conf store.Conference, log *slog.Logger) bool {
	ep := c.Endpoint
	prompt, _ := s.cfg.Prompts.Get("enter_pin")
	invalid, _ := s.cfg.Prompts.Get("invalid")
	for try := 1; try <= s.cfg.MaxAttempts; try++ {
		if _, err := ep.PlayInterruptible(ctx, prompt); err != nil {
			return false
		}
		pin, err := ep.CollectDigits(ctx, 0, '#', s.cfg.DigitTimeout)
		if err != nil && !errors.Is(err, ivr.ErrTimeout) {
			return false
		}
		if pin != "" && subtle.ConstantTimeCompare([]byte(pin), []byte(conf.PIN)) == 1 {
			return true
		}
		log.Info("conference PIN refused", "attempt", try)
		if c.Source.IsValid() && s.cfg.OnFailure != nil {
			s.cfg.OnFailure(c.Source)
		}
		ep.ClearDigits()
		if try < s.cfg.MaxAttempts {
			if err := ep.Play(ctx, invalid); err != nil {
				return false
			}
		}
	}
	log.Info("conference PIN attempts exhausted", "attempts", s.cfg.MaxAttempts)
	s.say(ctx, ep, "invalid", "too_many", "goodbye")
	return false
}

// say plays the named prompts; errors (the caller hung up) end it.
func (s *Service) say(ctx context.Context, ep *ivr.Endpoint, names ...string) {
	a, err := s.cfg.Prompts.Say(names...)
	if err == nil {
		ep.Play(ctx, a)
	}
}
