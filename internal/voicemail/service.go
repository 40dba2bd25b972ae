package voicemail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/wav"
	"github.com/kaopu/kaopu/internal/store"
)

// Defaults of Config.
const (
	DefaultMaxMessage   = 120 * time.Second
	DefaultMaxSilence   = 10 * time.Second
	DefaultDigitTimeout = 6 * time.Second
	DefaultMaxAttempts  = 3
	// MinMessage: anything shorter is dropped (a caller who hung up at
	// the beep leaves no message).
	MinMessage = time.Second
	// beepFreq is the tone before recording: 1 kHz, a quarter second.
	beepFreq = 1000
	beepLen  = 250 * time.Millisecond
	// menuRepeats is how many times the menu plays with no key pressed
	// before the call ends.
	menuRepeats = 3
)

// Store is what the service needs of the store.
type Store interface {
	GetMailbox(ctx context.Context, user string) (store.Mailbox, error)
	AddMessage(ctx context.Context, m store.VoiceMessage) (int64, error)
	ListMessages(ctx context.Context, mailbox string) ([]store.VoiceMessage, error)
	GetMessage(ctx context.Context, id int64) (store.VoiceMessage, error)
	SetHeard(ctx context.Context, id int64, heard bool) error
	DeleteMessage(ctx context.Context, id int64) error
}

// Media is what the service needs of the caller's media (an
// *ivr.Endpoint).
type Media interface {
	Play(ctx context.Context, prompts ...ivr.Audio) error
	PlayInterruptible(ctx context.Context, prompts ...ivr.Audio) (bool, error)
	CollectDigits(ctx context.Context, max int, terminator rune, timeout time.Duration) (string, error)
	ClearDigits()
	Connect(f ivr.Frames)
}

// Config is what a Service needs.
type Config struct {
	Store   Store
	Prompts *ivr.Library
	// Users resolves the mailbox number a caller enters (an extension or
	// a user name made of digits) to a user's name.
	Users func(login string) (string, bool)
	// MaxMessage and MaxSilence end a recording (voicemail.max_message,
	// voicemail.max_silence); DigitTimeout is how long a key is waited
	// for; MaxAttempts wrong mailbox/PIN pairs end a call.
	MaxMessage, MaxSilence, DigitTimeout time.Duration
	MaxAttempts                          int
	// OnChange is told when a mailbox's counts changed (a message left,
	// heard or deleted): message-waiting subscriptions are notified.
	OnChange func(mailbox string)
	// OnFailure is told of a wrong mailbox or PIN from a source (counts
	// toward its ban like a failed digest login); zero for a carrier's
	// caller.
	OnFailure func(src netip.Addr)
	Location  *time.Location // for the time a message came; nil: local
	Log       *slog.Logger
}

// Service deposits and plays back voice messages; one serves every call.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New makes a service; the prompts it plays must be in cfg.Prompts.
func New(cfg Config) (*Service, error) {
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MaxSilence <= 0 {
		cfg.MaxSilence = DefaultMaxSilence
	}
	if cfg.DigitTimeout <= 0 {
		cfg.DigitTimeout = DefaultDigitTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	for _, p := range []string{"vm_person_at", "vm_unavailable", "vm_person_unavailable", "vm_recorded", "vm_you_have",
		"vm_new_message", "vm_new_messages", "vm_old_message", "vm_old_messages", "vm_no_messages", "vm_message_from",
		"vm_unknown_caller", "vm_received_at", "vm_menu", "vm_deleted", "vm_saved", "vm_no_more", "vm_enter_mailbox",
		"vm_login_incorrect", "enter_pin", "goodbye", "and", "0"} {
		if _, err := cfg.Prompts.Get(p); err != nil {
			return nil, fmt.Errorf("voicemail prompt %s: %w", p, err)
		}
	}
	return &Service{cfg: cfg, log: cfg.Log}, nil
}

// changed tells the subscribers of a mailbox.
func (s *Service) changed(mailbox string) {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(mailbox)
	}
}

// say is the named prompts, one after another (all exist: New checked
// the fixed ones, and number words are part of the built-in library).
func (s *Service) say(names ...string) ivr.Audio {
	a, err := s.cfg.Prompts.Say(names...)
	if err != nil {
		s.log.Warn("voicemail: prompt missing", "error", err)
	}
	return a
}

// Counts returns a mailbox's new and old message counts.
func (s *Service) Counts(ctx context.Context, mailbox string) (Summary, error) {
	msgs, err := s.cfg.Store.ListMessages(ctx, mailbox)
	if err != nil {
		return Summary{}, err
	}
	return summarize(msgs), nil
}

func summarize(msgs []store.VoiceMessage) Summary {
	var sum Summary
	for _, m := range msgs {
		if m.Heard {
			sum.Old++
		} else {
			sum.New++
		}
	}
	return sum
}

// Deposit is one message to leave.
type Deposit struct {
	Mailbox   string // the user's name
	Extension string // said in the greeting when it is digits; "" for none
	// CallerNumber is who called ("anonymous" for a hidden caller);
	// CallerName the display name it gave.
	CallerNumber, CallerName string
	Log                      *slog.Logger
}

// Deposit greets the caller, records a message and stores it; it returns
// the message's ID, 0 when nothing worth keeping was said. It returns
// when the caller hangs up (ctx is done) or the message is over.
func (s *Service) Deposit(ctx context.Context, m Media, d Deposit) (int64, error) {
	log := d.Log
	if log == nil {
		log = s.log
	}
	greeting := s.say("vm_person_unavailable")
	if d.Extension != "" && strings.Trim(d.Extension, "0123456789") == "" {
		greeting = s.say(append(append([]string{"vm_person_at"}, ivr.DigitWords(d.Extension)...), "vm_unavailable")...)
	}
	// # skips the greeting, as on most voicemail systems.
	if _, err := m.PlayInterruptible(ctx, greeting); err != nil {
		return 0, nil // the caller left during the greeting
	}
	m.ClearDigits()
	if err := m.Play(ctx, ivr.Tone(beepFreq, beepLen)); err != nil {
		return 0, nil
	}
	rec := newRecorder(s.cfg.MaxMessage, s.cfg.MaxSilence)
	m.Connect(rec)
	why := s.record(ctx, m, rec)
	m.Connect(nil)
	msg := rec.message()
	if why == "#" {
		// The key's own tone may be in the audio too (in-band DTMF).
		msg = msg[:max(0, len(msg)-ivr.Rate/5)]
	}
	log = log.With("app", "voicemail", "mailbox", d.Mailbox)
	if msg.Duration() < MinMessage {
		log.Info("voicemail: no message left", "ended", why, "length", msg.Duration().String())
		return 0, nil
	}
	// The caller has often hung up already: store regardless of ctx.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	id, err := s.cfg.Store.AddMessage(sctx, store.VoiceMessage{Mailbox: d.Mailbox, CallerNumber: d.CallerNumber,
		CallerName: d.CallerName, Received: time.Now(), Duration: msg.Duration().Round(time.Millisecond), WAV: encodeWAV(msg)})
	if err != nil {
		return 0, fmt.Errorf("storing the message: %w", err)
	}
	log.Info("voicemail: message left", "id", id, "caller", d.CallerNumber, "ended", why,
		"length", msg.Duration().Round(100*time.Millisecond).String())
	s.changed(d.Mailbox)
	if ctx.Err() == nil {
		m.Play(ctx, s.say("vm_recorded"))
	}
	return id, nil
}

// record waits until the message is over and says why: "hangup", "#",
// "limit" (the recorder's length or silence), "timeout" (no audio came
// for the whole length).
func (s *Service) record(ctx context.Context, m Media, rec *recorder) string {
	keyCtx, stopKeys := context.WithCancel(ctx)
	hash := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			k, err := m.CollectDigits(keyCtx, 1, 0, s.cfg.MaxMessage)
			if k == "#" {
				close(hash)
				return
			}
			if err != nil && !errors.Is(err, ivr.ErrTimeout) {
				return
			}
		}
	}()
	defer func() { stopKeys(); wg.Wait() }()
	// A caller whose phone sends no RTP at all never fills the recorder.
	wall := time.NewTimer(s.cfg.MaxMessage + 2*time.Second)
	defer wall.Stop()
	select {
	case <-ctx.Done():
		return "hangup"
	case <-hash:
		return "#"
	case <-rec.done:
		return "limit"
	case <-wall.C:
		return "timeout"
	}
}

// decode reads a stored message's audio.
func decode(b []byte) (ivr.Audio, error) {
	pcm, rate, err := wav.Read(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if rate != ivr.Rate {
		return nil, fmt.Errorf("message at %d Hz", rate)
	}
	return pcm, nil
}

// Login asks a caller from elsewhere (a DID) for a mailbox number and its
// PIN; it returns the user whose mailbox it is, false after
// Config.MaxAttempts failures or when the caller left.
func (s *Service) Login(ctx context.Context, m Media, src netip.Addr, log *slog.Logger) (string, bool) {
	if log == nil {
		log = s.log
	}
	for range s.cfg.MaxAttempts {
		m.PlayInterruptible(ctx, s.say("vm_enter_mailbox"))
		box, err := m.CollectDigits(ctx, 20, '#', s.cfg.DigitTimeout)
		if ctx.Err() != nil || errors.Is(err, ivr.ErrClosed) {
			return "", false
		}
		m.PlayInterruptible(ctx, s.say("enter_pin"))
		pin, err := m.CollectDigits(ctx, 12, '#', s.cfg.DigitTimeout)
		if ctx.Err() != nil || errors.Is(err, ivr.ErrClosed) {
			return "", false
		}
		if user, ok := s.check(ctx, box, pin); ok {
			log.Info("voicemail: login", "mailbox", user)
			return user, true
		}
		log.Warn("voicemail: wrong mailbox or PIN", "mailbox", box, "source", src)
		if s.cfg.OnFailure != nil && src.IsValid() {
			s.cfg.OnFailure(src)
		}
		m.ClearDigits()
		m.Play(ctx, s.say("vm_login_incorrect"))
	}
	m.Play(ctx, s.say("goodbye"))
	return "", false
}

// dummyHash is checked against when the mailbox does not exist, so the
// answer takes as long as for a wrong PIN.
var dummyHash, _ = hashPIN("", "0000", make([]byte, pinSaltBytes), pinIterations)

// check reports whether box and pin open a mailbox, and whose.
func (s *Service) check(ctx context.Context, box, pin string) (string, bool) {
	user, ok := "", false
	if box != "" && s.cfg.Users != nil {
		user, ok = s.cfg.Users(box)
	}
	hash := dummyHash
	if ok {
		if mb, err := s.cfg.Store.GetMailbox(ctx, user); err == nil && mb.PINHash != "" {
			hash = mb.PINHash
		} else {
			ok = false
		}
	}
	good := CheckPIN(user, pin, hash)
	return user, ok && good
}

// Retrieve plays a mailbox's messages to its user with the key menu
// (see the package comment) until the caller presses # or hangs up.
func (s *Service) Retrieve(ctx context.Context, m Media, mailbox string, log *slog.Logger) error {
	if log == nil {
		log = s.log
	}
	log = log.With("app", "voicemail", "mailbox", mailbox)
	msgs, err := s.cfg.Store.ListMessages(ctx, mailbox)
	if err != nil {
		return err
	}
	b := newBrowser(msgs)
	sum := summarize(msgs)
	log.Info("voicemail: retrieval", "new", sum.New, "old", sum.Old)
	if _, err := m.PlayInterruptible(ctx, s.intro(sum)); err != nil {
		return nil
	}
	st := step{play: true}
	if len(b.msgs) == 0 {
		st = step{exit: true}
	}
	misses := 0
	for ctx.Err() == nil {
		if st.remove != 0 {
			if err := s.cfg.Store.DeleteMessage(ctx, st.remove); err != nil && !errors.Is(err, store.ErrNotFound) {
				log.Warn("voicemail: deleting a message", "id", st.remove, "error", err)
			} else {
				log.Info("voicemail: message deleted", "id", st.remove)
				s.changed(mailbox)
			}
		}
		if len(st.say) > 0 {
			if _, err := m.PlayInterruptible(ctx, s.say(st.say...)); err != nil {
				return nil
			}
		}
		if st.exit {
			m.Play(ctx, s.say("goodbye"))
			return nil
		}
		if st.play {
			if err := s.playMessage(ctx, m, b.current(), log); err != nil {
				return nil
			}
			if cur := b.current(); !cur.Heard {
				b.msgs[b.i].Heard = true
				if err := s.cfg.Store.SetHeard(ctx, cur.ID, true); err == nil {
					s.changed(mailbox)
				}
			}
		}
		if _, err := m.PlayInterruptible(ctx, s.say("vm_menu")); err != nil {
			return nil
		}
		k, err := m.CollectDigits(ctx, 1, 0, s.cfg.DigitTimeout)
		if errors.Is(err, ivr.ErrTimeout) {
			if misses++; misses >= menuRepeats {
				st = step{exit: true}
			} else {
				st = step{}
			}
			continue
		}
		if err != nil {
			return nil
		}
		misses = 0
		st = b.key(k)
	}
	return nil
}

// intro is "You have N new messages and M old messages".
func (s *Service) intro(sum Summary) ivr.Audio {
	if sum.New == 0 && sum.Old == 0 {
		return s.say("vm_no_messages")
	}
	words := []string{"vm_you_have"}
	plural := func(n int, one, many string) []string {
		w := ivr.NumberWords(int64(n))
		if n == 1 {
			return append(w, one)
		}
		return append(w, many)
	}
	if sum.New > 0 || sum.Old == 0 {
		words = append(words, plural(sum.New, "vm_new_message", "vm_new_messages")...)
	}
	if sum.New > 0 && sum.Old > 0 {
		words = append(words, "and")
	}
	if sum.Old > 0 {
		words = append(words, plural(sum.Old, "vm_old_message", "vm_old_messages")...)
	}
	return s.say(words...)
}

// header is "Message from 1 0 2, received at 14 05".
func (s *Service) header(msg store.VoiceMessage) []string {
	words := []string{"vm_message_from"}
	if digits := ivr.DigitWords(msg.CallerNumber); len(digits) > 0 && strings.Trim(msg.CallerNumber, "+0123456789") == "" {
		words = append(words, digits...)
	} else {
		words = append(words, "vm_unknown_caller")
	}
	t := msg.Received.In(s.cfg.Location)
	words = append(words, "vm_received_at")
	words = append(words, ivr.NumberWords(int64(t.Hour()))...)
	if t.Minute() < 10 {
		words = append(words, "0")
	}
	words = append(words, ivr.NumberWords(int64(t.Minute()))...)
	return words
}

// playMessage plays a message's header and audio; a key stops it.
func (s *Service) playMessage(ctx context.Context, m Media, msg store.VoiceMessage, log *slog.Logger) error {
	full, err := s.cfg.Store.GetMessage(ctx, msg.ID)
	if err != nil {
		return err
	}
	audio, err := decode(full.WAV)
	if err != nil {
		log.Warn("voicemail: unreadable message", "id", msg.ID, "error", err)
	}
	_, err = m.PlayInterruptible(ctx, s.say(s.header(msg)...), ivr.Silence(300*time.Millisecond), audio)
	return err
}

// browser is where a caller is in a mailbox's messages: new ones first,
// then old ones, oldest first within each.
type browser struct {
	msgs []store.VoiceMessage
	i    int
}

func newBrowser(msgs []store.VoiceMessage) *browser {
	ordered := slices.Clone(msgs)
	slices.SortStableFunc(ordered, func(a, b store.VoiceMessage) int {
		switch {
		case a.Heard == b.Heard:
			return 0
		case !a.Heard:
			return -1
		}
		return 1
	})
	return &browser{msgs: ordered}
}

func (b *browser) current() store.VoiceMessage { return b.msgs[b.i] }

// step is what a key makes the menu do: delete a message from the store
// (remove), say prompts, then play the current message or end the call;
// a zero step plays the menu again.
type step struct {
	remove int64
	say    []string
	play   bool
	exit   bool
}

// key is what one key does (the package comment has the menu).
func (b *browser) key(k string) step {
	switch k {
	case "1":
		return step{play: true}
	case "2", "6":
		if b.i+1 < len(b.msgs) {
			b.i++
			return step{play: true}
		}
		return step{say: []string{"vm_no_more"}}
	case "4":
		if b.i > 0 {
			b.i--
		}
		return step{play: true}
	case "7":
		id := b.msgs[b.i].ID
		b.msgs = slices.Delete(b.msgs, b.i, b.i+1)
		switch {
		case len(b.msgs) == 0:
			b.i = 0
			return step{remove: id, say: []string{"vm_deleted", "vm_no_more"}, exit: true}
		case b.i < len(b.msgs):
			return step{remove: id, say: []string{"vm_deleted"}, play: true}
		}
		b.i = len(b.msgs) - 1
		return step{remove: id, say: []string{"vm_deleted", "vm_no_more"}}
	case "9":
		if b.i+1 < len(b.msgs) {
			b.i++
			return step{say: []string{"vm_saved"}, play: true}
		}
		return step{say: []string{"vm_saved", "vm_no_more"}}
	case "#":
		return step{exit: true}
	}
	return step{}
}
