package call

// Voicemail: a call to one of our users whose mailbox is on rings the
// user's phones for Config.VoicemailAfter; when nobody answers, every
// phone refuses (busy, declined, or any other failure) or none is
// registered, the mailbox application answers the caller instead (as a
// ring group's application fallback does, takeOverApp). Only the caller's
// CANCEL or BYE ends the call without a message. The record names the
// user as callee, answered by the application, flagged FlagVoicemail.

import (
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/store"
)

// voicemail returns the mailbox application of a user whose mailbox is
// on; nil when none.
func (m *Manager) voicemail(user string) App {
	if m.cfg.Voicemail == nil || user == "" {
		return nil
	}
	app, ok := m.cfg.Voicemail(user)
	if !ok {
		return nil
	}
	return app
}

// voicemailAfter is how long a user with a mailbox rings.
func (m *Manager) voicemailAfter() time.Duration {
	d := m.cfg.VoicemailAfter
	if d <= 0 || d > m.cfg.NoAnswerTimeout {
		return m.cfg.NoAnswerTimeout
	}
	return d
}

// ringOrVoicemail rings a user's contacts (none: straight to voicemail)
// and answers the caller with the phone that answers, else with the
// user's mailbox.
func (m *Manager) ringOrVoicemail(c *Call, req *sip.Request, targets []store.Binding, mailbox App) groupOutcome {
	if len(targets) > 0 {
		r := m.fork(c, targets, legSpec{ring: m.voicemailAfter(),
			build: func(b store.Binding) (*sip.Request, error) { return m.newLegInvite(c, req, b) }})
		defer r.done()
		if r.winner != nil {
			if m.connect(c, r.winner) {
				return groupConnected
			}
			return groupFailed
		}
		if r.callerGone || c.in.Context().Err() != nil {
			m.failed(c, r)
			return groupFailed
		}
		c.Log.Info("not answered: voicemail", "no_answer", r.noAnswer, "status", r.best, "reason", r.bestReason)
	} else {
		c.Log.Info("not registered: voicemail")
	}
	return m.takeOverApp(c, mailbox, c.Callee)
}
