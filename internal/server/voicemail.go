package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/voicemail"
)

// VoicemailTarget is how a DID (kaopu did add --to), a ring group's
// fallback or a menu option names a mailbox: "voicemail:USER" leaves a
// message for USER; "voicemail:" alone is the mailbox login (mailbox
// number and PIN).
const VoicemailTarget = "voicemail:"

// voicemailService wires the voicemail application: the resolver claims
// voicemail.access (a user's own mailbox), voicemail.deposit followed by
// a user's extension or name, and "voicemail:..." targets. The call
// manager's own question, whether a user's unanswered call goes to a
// mailbox, is mailboxApp.
func (s *Server) voicemailService(cfg config.Config) (appResolver, error) {
	prompts, err := ivr.Builtin()
	if err != nil {
		return nil, fmt.Errorf("voicemail prompts: %w", err)
	}
	s.mwi = newMWI(s)
	svc, err := voicemail.New(voicemail.Config{
		Store:      s.st,
		Prompts:    prompts,
		Users:      canonical{s.dir}.CanonicalUser,
		MaxMessage: cfg.Voicemail.MaxMessage.D(),
		MaxSilence: cfg.Voicemail.MaxSilence.D(),
		OnChange:   s.mwi.changed,
		// A wrong mailbox PIN counts like a failed digest login.
		OnFailure: func(ip netip.Addr) { s.bans.Fail(ip) },
		Log:       s.log,
	})
	if err != nil {
		return nil, err
	}
	s.vm = svc
	access, deposit := cfg.Voicemail.Access, cfg.Voicemail.Deposit
	return func(dialed string) (call.App, bool) {
		switch {
		case dialed == access:
			return vmAccessApp{s: s}, true
		case dialed == VoicemailTarget:
			return vmAccessApp{s: s, login: true}, true
		case strings.HasPrefix(dialed, VoicemailTarget):
			return s.depositApp(strings.TrimPrefix(dialed, VoicemailTarget))
		case strings.HasPrefix(dialed, deposit) && len(dialed) > len(deposit):
			return s.depositApp(strings.TrimPrefix(dialed, deposit))
		}
		return nil, false
	}, nil
}

// depositApp is the mailbox of a user (a name or an extension).
func (s *Server) depositApp(login string) (call.App, bool) {
	user, ok := canonical{s.dir}.CanonicalUser(login)
	if !ok {
		return nil, false
	}
	return vmDepositApp{s: s, user: user}, true
}

// mailboxApp is the call manager's Config.Voicemail: the mailbox of a
// user whose mailbox is on.
func (s *Server) mailboxApp(user string) (call.App, bool) {
	mb, err := s.st.GetMailbox(context.Background(), user)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("voicemail: reading a mailbox", "user", user, "error", err)
		}
		return nil, false
	}
	if !mb.Enabled {
		return nil, false
	}
	return vmDepositApp{s: s, user: user}, true
}

// vmDepositApp leaves a message in a user's mailbox.
type vmDepositApp struct {
	s    *Server
	user string
}

// MailboxUser names the user in the call's record.
func (a vmDepositApp) MailboxUser() string { return a.user }

// Admit refuses a direct deposit (a DID, *98) to a mailbox that is off.
func (a vmDepositApp) Admit() (int, string) {
	if _, ok := a.s.mailboxApp(a.user); !ok {
		return 480, "Temporarily Unavailable"
	}
	return 0, ""
}

func (a vmDepositApp) Serve(ctx context.Context, c call.AppCall) {
	d := voicemail.Deposit{Mailbox: a.user, CallerNumber: c.Caller, CallerName: c.CallerName, Log: c.Log}
	if u, err := a.s.st.GetUser(ctx, a.user); err == nil {
		d.Extension = u.Ext
	}
	switch {
	case c.Hidden:
		d.CallerNumber, d.CallerName = "anonymous", ""
	case c.Source.IsValid():
		// One of our users: the number others dial to reach them is
		// their extension, when they have one.
		if u, err := a.s.st.GetUser(ctx, c.Caller); err == nil && u.Ext != "" {
			d.CallerNumber = u.Ext
			if d.CallerName == "" {
				d.CallerName = u.Name
			}
		}
	}
	if _, err := a.s.vm.Deposit(ctx, c.Endpoint, d); err != nil {
		c.Log.Warn("voicemail: deposit failed", "mailbox", a.user, "error", err)
	}
}

// vmAccessApp plays a mailbox's messages: the caller's own when it is one
// of our users calling from its phone (its digest login is the
// authentication), else the mailbox and PIN it enters (login: always).
type vmAccessApp struct {
	s     *Server
	login bool
}

func (a vmAccessApp) Serve(ctx context.Context, c call.AppCall) {
	// A carrier's caller (no source) or a caller of another domain (not
	// one of our users) logs in like a DID's.
	user, ours := canonical{a.s.dir}.CanonicalUser(c.Caller)
	if a.login || !c.Source.IsValid() || !ours {
		var ok bool
		if user, ok = a.s.vm.Login(ctx, c.Endpoint, c.Source, c.Log); !ok {
			return
		}
	}
	if err := a.s.vm.Retrieve(ctx, c.Endpoint, user, c.Log); err != nil {
		c.Log.Warn("voicemail: retrieval failed", "mailbox", user, "error", err)
	}
}
