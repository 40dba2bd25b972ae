package pbx

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
)

// Menu is an IVR menu ready to play (store.Menu with its prompt decoded).
type Menu struct {
	Number           string
	Prompt           ivr.Audio
	Options          map[string]string // key -> destination number
	Timeout          time.Duration     // wait for the first key after the prompt
	Retries          int
	Default          string
	ExtensionDialing bool
}

// Media is what a menu needs of the caller's media (an *ivr.Endpoint).
type Media interface {
	Play(ctx context.Context, prompts ...ivr.Audio) error
	PlayInterruptible(ctx context.Context, prompts ...ivr.Audio) (bool, error)
	CollectDigits(ctx context.Context, max int, terminator rune, timeout time.Duration) (string, error)
	ClearDigits()
}

// Outcome is how sending the caller to a destination went.
type Outcome struct {
	// Done: the call is over for the menu (connected and since ended,
	// the caller gone, or another application has run it).
	Done bool
	// Status: 200 connected; 404 no such destination, 480 no answer,
	// 486 busy, 487 the caller hung up...
	Status int
}

// Connect sends the caller to a destination number (a user, extension,
// group, or application number) and returns when that is over.
type Connect func(ctx context.Context, number string) Outcome

// Result is how a menu call ended, for the log.
type Result struct {
	// Outcome: "connected" (an option or a dialed number), "default",
	// "hangup" (retries used up, no default), "caller_gone" (also while
	// a destination rang).
	Outcome     string
	Destination string // the last destination tried
	Status      int    // its status
	Attempts    int    // prompts played
}

// Defaults of a Menu and a Runner.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultRetries    = 3
	DefaultInterDigit = 2 * time.Second
	maxDialed         = 15 // digits of a number dialed directly
)

// Runner plays menus on application calls.
type Runner struct {
	// Prompts has "invalid", "busy", "unreachable" and "goodbye"
	// (ivr.Builtin); nil plays none of them.
	Prompts *ivr.Library
	// Dialable reports whether a number the caller dialed directly
	// (extension dialing) is one of ours: a user, extension or group.
	Dialable func(number string) bool
	// InterDigit is the wait for the next digit of a number dialed
	// directly (DefaultInterDigit when 0).
	InterDigit time.Duration
}

// Run plays menu m to a caller until the caller is connected somewhere,
// hangs up, or runs out of retries. log names the menu already.
func (r *Runner) Run(ctx context.Context, m *Menu, media Media, connect Connect, log *slog.Logger) Result {
	var res Result
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	fails := 0
	for {
		res.Attempts++
		if _, err := media.PlayInterruptible(ctx, m.Prompt); err != nil {
			res.Outcome = "caller_gone"
			return res
		}
		digits, err := r.collect(ctx, m, media, timeout)
		if err != nil && !errors.Is(err, ivr.ErrTimeout) {
			res.Outcome = "caller_gone"
			return res
		}
		if dest, ok := m.choose(digits, r.Dialable); ok {
			log.Info("IVR menu: connecting", "key", digits, "destination", dest)
			res.Destination = dest
			out := connect(ctx, dest)
			res.Status = out.Status
			if out.Done {
				res.Outcome = "connected"
				if out.Status == 487 {
					res.Outcome = "caller_gone" // hung up while it rang
				}
				return res
			}
			r.say(ctx, media, reasonPrompt(out.Status))
		} else if digits != "" {
			log.Info("IVR menu: invalid choice", "key", digits)
			r.say(ctx, media, "invalid")
		} else {
			log.Info("IVR menu: no key pressed", "timeout", timeout.String())
		}
		if ctx.Err() != nil {
			res.Outcome = "caller_gone"
			return res
		}
		media.ClearDigits()
		fails++
		if fails > m.Retries {
			break
		}
	}
	if m.Default != "" {
		log.Info("IVR menu: retries used up, default destination", "destination", m.Default)
		res.Destination = m.Default
		out := connect(ctx, m.Default)
		res.Status = out.Status
		if out.Done {
			res.Outcome = "default"
			return res
		}
		r.say(ctx, media, reasonPrompt(out.Status))
	}
	r.say(ctx, media, "goodbye")
	res.Outcome = "hangup"
	return res
}

// collect reads the caller's choice: one key within timeout or, with
// extension dialing, a number: digits until # or a pause of InterDigit.
func (r *Runner) collect(ctx context.Context, m *Menu, media Media, timeout time.Duration) (string, error) {
	d, err := media.CollectDigits(ctx, 1, 0, timeout)
	if err != nil || !m.ExtensionDialing || d == "#" {
		return d, err
	}
	inter := r.InterDigit
	if inter <= 0 {
		inter = DefaultInterDigit
	}
	more, err := media.CollectDigits(ctx, maxDialed-1, '#', inter)
	if errors.Is(err, ivr.ErrTimeout) {
		err = nil
	}
	return d + more, err
}

// choose is the destination of what the caller entered: an option's, or
// with extension dialing a number of ours dialed directly.
func (m *Menu) choose(digits string, dialable func(string) bool) (string, bool) {
	if digits == "" {
		return "", false
	}
	if dest, ok := m.Options[digits]; ok {
		return dest, true
	}
	if m.ExtensionDialing && dialable != nil && dialable(digits) {
		return digits, true
	}
	return "", false
}

// reasonPrompt names the prompt that tells the caller why a destination
// was not reached.
func reasonPrompt(status int) string {
	if status == 486 || status == 600 {
		return "busy"
	}
	return "unreachable"
}

// say plays a built-in prompt (no barge-in: it is short).
func (r *Runner) say(ctx context.Context, media Media, name string) {
	if r.Prompts == nil {
		return
	}
	a, err := r.Prompts.Get(name)
	if err != nil {
		return
	}
	media.Play(ctx, a)
}
