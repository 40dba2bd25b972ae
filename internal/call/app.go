package call

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media"
)

// App is a media application that answers calls itself instead of
// ringing a user: the calling-card service, later voicemail, IVR menus and
// conferences. Serve runs for the whole call; the call layer hangs up when
// it returns (unless the caller has), and cancels ctx when the caller
// hangs up or the server shuts down.
type App interface {
	Serve(ctx context.Context, c AppCall)
}

// Admitter is an App that may refuse a call before it is answered (a
// conference room that is full): Admit returns 0, or the SIP status and
// reason phrase to answer with instead. The App is the one the number
// resolved to, so it knows which number it serves (a DID's target is not
// the Request-URI).
type Admitter interface {
	Admit() (status int, reason string)
}

// WidebandApp is an App that takes audio frames (ivr.Endpoint.Connect)
// at 16 kHz as well as 8 kHz: its endpoint also accepts G.722.
type WidebandApp interface {
	Wideband() bool
}

// Mailbox is an App that takes messages for a user (voicemail): the
// call's record names that user as the callee and carries FlagVoicemail.
type Mailbox interface {
	MailboxUser() string
}

// FlagVoicemail marks the record of a call that a mailbox answered.
const FlagVoicemail = "voicemail"

// AppCall is what an App gets of one call.
type AppCall struct {
	ID     string // the caller's Call-ID
	Caller string // the authenticated user
	// CallerName is the display name the caller's From gave; Hidden: a
	// carrier's caller asked for privacy (RFC 3323): keep it anonymous.
	CallerName string
	Hidden     bool
	Dialed     string     // the Request-URI user (the access number)
	Source     netip.Addr // where the INVITE came from; zero for a carrier's call (a DID)
	Endpoint   *ivr.Endpoint
	Log        *slog.Logger
	// Record is the call's detail record (nil: none kept): an application
	// that charges the call rates it, and names it in its ledger rows.
	Record *cdr.Call
}

// app returns the media application of a number of ours, if any.
func (m *Manager) app(number string) (App, bool) {
	if m.cfg.Apps == nil || number == "" {
		return nil, false
	}
	return m.cfg.Apps(number)
}

// answerApp answers an INVITE with a media application: a media endpoint
// from the port pool answers the offer, the 2xx goes out and, once ACKed,
// the application runs on a goroutine of its own. It returns whether the
// call is up (the caller's call slot is then released when it ends).
// src is the caller's address for ban counting, zero for a carrier's
// call (a trunk's address is never the caller's).
func (m *Manager) answerApp(app App, req *sip.Request, tx sip.ServerTransaction, caller string, src netip.Addr, rec *cdr.Call, release func()) bool {
	callID := req.CallID().Value()
	dialed := req.Recipient.User
	log := m.log.With("call_id", callID, "from", caller, "to", dialed)
	fail := func(code int, reason string) bool {
		log.Info("application call refused", "status", code, "reason", reason)
		respond(tx, req, code, reason)
		rec.End(cdr.DispositionFor(code, false, false), code, nil)
		return false
	}
	if a, ok := app.(Admitter); ok {
		if code, reason := a.Admit(); code != 0 {
			return fail(code, reason)
		}
	}
	if m.media.Pool == nil {
		return fail(503, "Service Unavailable")
	}
	if len(req.Body()) == 0 {
		// No late offer to applications: they answer with media at once.
		return fail(488, "Not Acceptable Here")
	}
	wide := false
	if w, ok := app.(WidebandApp); ok {
		wide = w.Wideband()
	}
	ep, answer, err := ivr.Answer(ivr.Config{Pool: m.media.Pool, IP: m.media.IP, Log: log, Wideband: wide}, req.Body())
	switch {
	case errors.Is(err, media.ErrNoPorts):
		return fail(503, "Service Unavailable")
	case errors.Is(err, ivr.ErrBadOffer):
		return fail(400, "Invalid SDP")
	case err != nil:
		return fail(488, "Not Acceptable Here")
	}
	in, err := dialogUA(m.in, legSide(req.Transport(), req.Recipient)).ReadInvite(req, tx)
	if err != nil {
		ep.Close()
		return fail(500, "Server Internal Error")
	}
	callerSide, err := newAppSide(answer, nil)
	if err != nil { // our own answer: cannot happen
		ep.Close()
		return fail(500, "Server Internal Error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Call{ID: callID, Caller: caller, Callee: dialed, Dialed: dialed, Start: time.Now(), Log: log,
		in: in, tx: tx, ctx: ctx, cancel: cancel, cdr: rec, release: release, app: ep, appAnswer: answer,
		appState: &appState{caller: callerSide}}
	if !src.IsValid() { // a carrier's caller
		c.callerHidden, _ = privacyRequested(req)
	}
	if mb, ok := app.(Mailbox); ok {
		c.Callee = mb.MailboxUser()
		rec.SetCallee(c.Callee)
		rec.Flag(FlagVoicemail)
	}
	m.mu.Lock()
	m.byCaller[in.ID] = c
	m.mu.Unlock()
	if m.hooks.OnStart != nil {
		m.hooks.OnStart(c)
	}
	err = in.Respond(200, "OK", answer, sdpType(answer)...)
	if err == nil && in.LoadState() < sip.DialogStateConfirmed {
		err = errors.New("no ACK for our 2xx")
	}
	if err != nil {
		log.Warn("answering caller failed", "error", err)
		status, reason := 500, "Server Internal Error"
		if in.LoadState() == sip.DialogStateEstablished {
			bye(in) // RFC 3261 §13.3.1.4
			status, reason = 408, "No ACK"
		}
		m.finish(c, status, reason)
		return false
	}
	c.Answered = time.Now()
	c.cdr.Answered(ep.Codec())
	log.Info("call answered by application", "codec", ep.Codec(), "dtmf", ep.DTMF())
	if m.hooks.OnAnswer != nil {
		m.hooks.OnAnswer(c)
	}
	// The 2xx is ACKed: the transaction need not hold on (see OnInvite).
	tx.Terminate()
	m.wg.Add(1)
	m.startApp(c, app, dialed, src)
	return true
}

// startApp runs app on an answered application call (c.app is its
// endpoint) on a goroutine of its own, which owns one count of m.wg that
// the caller has added, and watches the call's RTP (superviseApp). The
// call is hung up when the application returns.
func (m *Manager) startApp(c *Call, app App, dialed string, src netip.Addr) {
	m.superviseApp(c)
	go func() {
		defer m.wg.Done()
		name := ""
		if f := c.in.InviteRequest.From(); f != nil {
			name = f.DisplayName
		}
		app.Serve(c.ctx, AppCall{ID: c.ID, Caller: c.Caller, CallerName: name, Hidden: c.callerHidden, Dialed: dialed,
			Source: src, Endpoint: c.app, Log: c.Log, Record: c.cdr})
		c.app.Close()
		if !c.ended.Load() {
			bye(c.in)
			m.finish(c, 200, "application hung up")
		}
	}()
}
