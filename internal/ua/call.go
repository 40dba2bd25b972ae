package ua

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/media/codec"
	"github.com/kaopu/kaopu/internal/media/dtmf"
	"github.com/kaopu/kaopu/internal/sdpx"
)

// State is where a call is in its life.
type State int

const (
	// StateCalling: our INVITE is out, no ringing yet.
	StateCalling State = iota
	// StateRinging: the other side rings (180/183).
	StateRinging
	// StateIncoming: an incoming call rings here, to Answer or Reject.
	StateIncoming
	// StateActive: answered, media flowing.
	StateActive
	// StateHeld: we put the call on hold.
	StateHeld
	// StateEnded: over; EndStatus says how.
	StateEnded
)

func (s State) String() string {
	switch s {
	case StateCalling:
		return "calling"
	case StateRinging:
		return "ringing"
	case StateIncoming:
		return "incoming"
	case StateActive:
		return "active"
	case StateHeld:
		return "held"
	}
	return "ended"
}

// CallOptions choose a call's audio; nil Source sends silence, nil Sink
// discards what is heard.
type CallOptions struct {
	Source AudioSource
	Sink   AudioSink
}

// Call is one call, incoming or outgoing.
type Call struct {
	agent    *Agent
	id       string
	outgoing bool
	peer     string
	log      *slog.Logger
	opts     CallOptions
	st       *stream
	done     chan struct{}

	// answerCh takes the decision for an incoming call.
	answerCh chan answerDecision
	// notify carries the final status of a transfer we asked for (REFER),
	// from the other side's NOTIFY.
	notify chan int

	mu         sync.Mutex
	state      State
	remoteHold bool
	answered   bool
	endCode    int
	endReason  string
	cs         *sipgo.DialogClientSession
	ss         *sipgo.DialogServerSession
	local      localSDP
	cancelWait context.CancelFunc
	reinviting bool
	ending     bool
}

type answerDecision struct {
	code   int
	reason string
	result chan error
}

// ID is the call's SIP Call-ID.
func (c *Call) ID() string { return c.id }

// Outgoing reports whether we placed the call.
func (c *Call) Outgoing() bool { return c.outgoing }

// Peer is the other side's address (To of ours, From of theirs).
func (c *Call) Peer() string { return c.peer }

// State is the call's current state.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// RemoteHold reports whether the other side has put us on hold.
func (c *Call) RemoteHold() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteHold
}

// Answered reports whether the call was ever answered.
func (c *Call) Answered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answered
}

// EndStatus is the SIP status and reason that ended the call (valid once
// Done is closed): 200 for an answered call hung up by either side.
func (c *Call) EndStatus() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endCode, c.endReason
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Stats are the call's live media figures.
func (c *Call) Stats() Stats {
	if c.st == nil {
		return Stats{}
	}
	return c.st.stats()
}

func (c *Call) setState(s State) {
	c.mu.Lock()
	if c.state == s || c.state == StateEnded {
		c.mu.Unlock()
		return
	}
	c.state = s
	if s == StateActive {
		c.answered = true
	}
	c.mu.Unlock()
	c.log.Info("call state", "state", s.String())
	if h := c.agent.cfg.Hooks.OnState; h != nil {
		h(c, s)
	}
}

// end finishes the call once: media stopped, recording closed, removed
// from the agent.
func (c *Call) end(code int, reason string) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.ending = true
	c.endCode, c.endReason = code, reason
	c.mu.Unlock()
	if c.st != nil {
		c.st.close()
	}
	a := c.agent
	a.mu.Lock()
	if a.calls[c.id] == c {
		delete(a.calls, c.id)
	}
	a.mu.Unlock()
	c.log.Info("call ended", "status", code, "reason", reason)
	c.setState(StateEnded)
	close(c.done)
}

func (a *Agent) newCall(id string, outgoing bool, peer string, opts CallOptions) *Call {
	c := &Call{agent: a, id: id, outgoing: outgoing, peer: peer, opts: opts, done: make(chan struct{}),
		answerCh: make(chan answerDecision, 1), notify: make(chan int, 4)}
	c.log = a.log.With("call_id", id, "peer", peer)
	return c
}

// newStream makes the call's RTP socket and, with a STUN server, learns
// its public address.
func (a *Agent) newStream(ctx context.Context, c *Call) (*stream, error) {
	st, err := newStream(a.local.Addr(), c.log, func(r rune) { a.dtmfReceived(c, r) })
	if err != nil {
		return nil, err
	}
	if a.cfg.STUN != "" {
		pub, err := stunMapped(ctx, st.conn, a.cfg.STUN)
		if err != nil {
			c.log.Warn("STUN failed; announcing the local address", "error", err)
		} else {
			c.log.Info("STUN", "public", pub.String())
			st.local = pub
		}
	}
	if a.cfg.SRTP != SRTPOff {
		st.localKey = newSRTPKey()
	}
	return st, nil
}

func (a *Agent) dtmfReceived(c *Call, r rune) {
	c.log.Info("DTMF received", "digit", string(r))
	if h := a.cfg.Hooks.OnDTMF; h != nil {
		h(c, r)
	}
}

// Dial calls target: an extension or user of the server, or
// sip:user@host[:port] (directly, without the server). It returns once the
// INVITE is sent; WaitAnswer waits for the outcome.
func (a *Agent) Dial(ctx context.Context, target string, opts CallOptions) (*Call, error) {
	select {
	case <-a.closing:
		return nil, ErrClosed
	default:
	}
	req, err := a.newRequest(sip.INVITE, target)
	if err != nil {
		return nil, err
	}
	callID := sip.CallIDHeader(sip.GenerateTagN(24))
	req.AppendHeader(&callID)
	c := a.newCall(string(callID), true, req.Recipient.String(), opts)
	c.state = StateCalling
	if c.st, err = a.newStream(ctx, c); err != nil {
		return nil, err
	}
	c.local = localSDP{origin: sdpx.NewOrigin(), addr: c.st.local.Addr(), port: int(c.st.local.Port()),
		codecs: a.codecs, dtmfPT: dtmfPT, dir: sdpx.SendRecv, version: 1}
	if a.cfg.SRTP != SRTPOff {
		c.local.crypto = keyLine(1, c.st.localKey)
		c.local.secure = a.cfg.SRTP == SRTPRequire
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(c.local.bytes())
	a.mu.Lock()
	a.calls[c.id] = c
	a.mu.Unlock()
	a.mu.Lock()
	dua := *a.dialogUA
	a.mu.Unlock()
	cs, err := dua.WriteInvite(ctx, req)
	if err != nil {
		c.end(503, err.Error())
		return nil, fmt.Errorf("ua: INVITE %s: %w", target, err)
	}
	c.mu.Lock()
	c.cs = cs
	c.mu.Unlock()
	c.log.Info("calling", "target", req.Recipient.String())
	wctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.cancelWait = cancel
	c.mu.Unlock()
	go c.waitOutgoing(wctx, cs)
	return c, nil
}

func (c *Call) waitOutgoing(ctx context.Context, cs *sipgo.DialogClientSession) {
	a := c.agent
	err := cs.WaitAnswer(ctx, sipgo.AnswerOptions{
		Username: a.cfg.AuthUser, Password: a.cfg.Password,
		OnResponse: func(r *sip.Response) error {
			if r.StatusCode == 180 || r.StatusCode == 183 {
				c.setState(StateRinging)
			}
			return nil
		},
	})
	if err != nil {
		var de *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &de):
			c.end(de.Res.StatusCode, de.Res.Reason)
		case ctx.Err() != nil:
			c.end(487, "cancelled")
		default:
			c.end(408, err.Error())
		}
		return
	}
	// Answered: ACK, then media.
	ack := context.Background()
	if err := cs.Ack(ack); err != nil {
		c.log.Warn("ACK failed", "error", err)
	}
	ag, err := c.parseAndNegotiate(cs.InviteResponse.Body())
	if err == nil {
		err = c.st.start(ag, c.local.dir, c.opts.Source, c.opts.Sink)
	}
	if err != nil {
		c.log.Warn("unusable answer; hanging up", "error", err)
		bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cs.Bye(bctx)
		cancel()
		c.end(488, err.Error())
		return
	}
	c.mu.Lock()
	c.remoteHold = !ag.dir.Receives()
	c.mu.Unlock()
	c.setState(StateActive)
}

func (c *Call) parseAndNegotiate(body []byte) (agreed, error) {
	s, err := sdpx.Parse(body)
	if err != nil {
		return agreed{}, fmt.Errorf("%w: %v", ErrNotAcceptable, err)
	}
	return negotiate(s, c.agent.codecs, c.agent.cfg.SRTP)
}

// WaitAnswer waits until an outgoing call is answered (nil) or fails (a
// *StatusError, or ctx's error).
func (c *Call) WaitAnswer(ctx context.Context) error {
	for {
		switch s := c.State(); s {
		case StateActive, StateHeld:
			return nil
		case StateEnded:
			if c.Answered() {
				return nil
			}
			code, reason := c.EndStatus()
			return &StatusError{Code: code, Reason: reason}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// onInvite takes a new call or a re-INVITE.
func (a *Agent) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if c := a.call(req); c != nil {
			c.onReinvite(req, tx)
			return
		}
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	select {
	case <-a.closing:
		respond(tx, req, 503, "Service Unavailable")
		return
	default:
	}
	peer := ""
	if f := req.From(); f != nil {
		peer = f.Address.String()
	}
	c := a.newCall(req.CallID().Value(), false, peer, CallOptions{})
	offer, err := sdpx.Parse(req.Body())
	if err != nil {
		c.log.Info("refusing call", "error", err)
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	ag, err := negotiate(offer, a.codecs, a.cfg.SRTP)
	if err != nil {
		c.log.Info("refusing call", "error", err)
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	a.mu.Lock()
	dua := *a.dialogUA
	a.mu.Unlock()
	ss, err := dua.ReadInvite(req, tx)
	if err != nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c.st, err = a.newStream(ctx, c)
	cancel()
	if err != nil {
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	c.ss = ss
	c.state = StateIncoming
	c.local = localSDP{origin: sdpx.NewOrigin(), addr: c.st.local.Addr(), port: int(c.st.local.Port()),
		codecs: nil, dtmfPT: ag.dtmfPT, dtmfClock: ag.dtmfClk, version: 1, secure: offer.Audio.Secure()}
	c.local.codecs = append(c.local.codecs, ag.codec)
	c.local.ptOf = map[string]uint8{ag.codec.Name: ag.pt}
	c.local.dir = answerDirection(ag.dir, sdpx.SendRecv)
	if ag.srtp {
		c.local.crypto = keyLine(ag.tag, c.st.localKey)
	}
	a.mu.Lock()
	a.calls[c.id] = c
	a.mu.Unlock()
	if err := ss.Respond(180, "Ringing", nil); err != nil {
		c.end(500, err.Error())
		return
	}
	c.log.Info("incoming call", "from", peer)
	if h := a.cfg.Hooks.OnIncoming; h != nil {
		h(c)
	}
	timer := time.NewTimer(a.cfg.RingTimeout)
	defer timer.Stop()
	select {
	case d := <-c.answerCh:
		if d.code != 200 {
			err := ss.Respond(d.code, d.reason, nil)
			c.end(d.code, d.reason)
			d.result <- err
			return
		}
		err := c.st.start(ag, c.local.dir, c.opts.Source, c.opts.Sink)
		if err == nil {
			c.mu.Lock()
			c.remoteHold = !ag.dir.Receives()
			c.mu.Unlock()
			c.setState(StateActive)
			err = ss.RespondSDP(c.local.bytes())
		}
		if err != nil {
			c.end(500, err.Error())
		}
		d.result <- err
	case <-ss.Context().Done():
		c.end(487, "cancelled by the caller")
	case <-timer.C:
		ss.Respond(480, "Temporarily Unavailable", nil)
		c.end(480, "no answer")
	case <-a.closing:
		ss.Respond(503, "Service Unavailable", nil)
		c.end(503, "agent closed")
	}
}

// keyLine is the a=crypto value offering key with tag.
func keyLine(tag int, key []byte) string {
	return fmt.Sprintf("%d %s inline:%s", tag, srtpSuite, base64.StdEncoding.EncodeToString(key))
}

// Answer answers an incoming ringing call with opts' audio, and returns
// once our 200 OK is acknowledged (or fails).
func (c *Call) Answer(ctx context.Context, opts CallOptions) error {
	if c.outgoing {
		return fmt.Errorf("%w: cannot answer our own call", ErrCallState)
	}
	c.mu.Lock()
	if c.state != StateIncoming {
		c.mu.Unlock()
		return fmt.Errorf("%w: call is %s", ErrCallState, c.state)
	}
	c.opts = opts
	c.mu.Unlock()
	return c.decide(ctx, 200, "OK")
}

// Reject refuses an incoming ringing call with code (486 Busy Here when 0).
func (c *Call) Reject(ctx context.Context, code int, reason string) error {
	if code == 0 {
		code, reason = 486, "Busy Here"
	}
	if code < 300 || code > 699 {
		return fmt.Errorf("ua: reject with %d: want 300-699", code)
	}
	return c.decide(ctx, code, reason)
}

func (c *Call) decide(ctx context.Context, code int, reason string) error {
	d := answerDecision{code: code, reason: reason, result: make(chan error, 1)}
	select {
	case c.answerCh <- d:
	default:
		return fmt.Errorf("%w: already answered", ErrCallState)
	}
	select {
	case err := <-d.result:
		return err
	case <-c.done:
		select {
		case err := <-d.result:
			return err
		default:
		}
		if c.Answered() {
			return nil
		}
		code, reason := c.EndStatus()
		if code == d.code && code != 200 {
			// Ended by this rejection: onInvite ends the call just
			// before it hands back the result.
			return nil
		}
		return &StatusError{Code: code, Reason: reason}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hangup ends the call whatever its state: CANCEL while ours rings, 486
// to an incoming one, BYE once answered.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	state, cs, ss, cancel := c.state, c.cs, c.ss, c.cancelWait
	c.mu.Unlock()
	switch {
	case state == StateEnded:
		return nil
	case state == StateIncoming:
		return c.Reject(ctx, 486, "Busy Here")
	case state == StateCalling || state == StateRinging:
		if cancel != nil {
			cancel() // WaitAnswer sends CANCEL
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	var err error
	if cs != nil {
		err = cs.Bye(ctx)
	} else if ss != nil {
		err = ss.Bye(ctx)
	}
	c.end(200, "we hung up")
	return err
}

func (c *Call) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	cs, ss := c.cs, c.ss
	c.mu.Unlock()
	var err error
	if cs != nil {
		err = cs.ReadBye(req, tx)
	} else {
		err = ss.ReadBye(req, tx)
	}
	if err != nil {
		respond(tx, req, 200, "OK")
	}
	c.end(200, "the other side hung up")
}

func (c *Call) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	ss := c.ss
	c.mu.Unlock()
	if ss != nil {
		// The ACK of a re-INVITE's 2xx has another CSeq: ReadAck refuses
		// it, and nothing else needs to happen for it.
		ss.ReadAck(req, tx)
	}
}

// remoteTarget is where in-dialog requests go: the other side's Contact.
func (c *Call) remoteTarget() (sip.Uri, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cs != nil && c.cs.InviteResponse != nil {
		if ct := c.cs.InviteResponse.Contact(); ct != nil {
			return ct.Address, true
		}
	}
	if c.ss != nil {
		if ct := c.ss.InviteRequest.Contact(); ct != nil {
			return ct.Address, true
		}
	}
	return sip.Uri{}, false
}

// request sends an in-dialog request and returns the final response.
func (c *Call) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	c.mu.Lock()
	cs, ss := c.cs, c.ss
	c.mu.Unlock()
	if cs != nil {
		return cs.Do(ctx, req)
	}
	return ss.Do(ctx, req)
}

func (c *Call) write(req *sip.Request) error {
	c.mu.Lock()
	cs, ss := c.cs, c.ss
	c.mu.Unlock()
	if cs != nil {
		return cs.WriteRequest(req)
	}
	return ss.WriteRequest(req)
}

func (c *Call) newInDialog(method sip.RequestMethod) (*sip.Request, error) {
	target, ok := c.remoteTarget()
	if !ok {
		return nil, fmt.Errorf("%w: no dialog yet", ErrCallState)
	}
	return sip.NewRequest(method, target), nil
}

// Hold puts the call on hold (re-INVITE with a=sendonly, RFC 3264 §8.4).
func (c *Call) Hold(ctx context.Context) error { return c.reinvite(ctx, sdpx.SendOnly, StateHeld) }

// Resume takes the call off hold (re-INVITE with a=sendrecv).
func (c *Call) Resume(ctx context.Context) error { return c.reinvite(ctx, sdpx.SendRecv, StateActive) }

func (c *Call) reinvite(ctx context.Context, dir sdpx.Direction, next State) error {
	c.mu.Lock()
	if c.state != StateActive && c.state != StateHeld {
		c.mu.Unlock()
		return fmt.Errorf("%w: call is %s", ErrCallState, c.state)
	}
	if c.reinviting {
		c.mu.Unlock()
		return fmt.Errorf("%w: a re-INVITE is already in progress", ErrCallState)
	}
	c.reinviting = true
	local := c.local
	local.dir = dir
	local.version++
	if len(local.codecs) == 0 {
		local.codecs = c.agent.codecs
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
	}()
	req, err := c.newInDialog(sip.INVITE)
	if err != nil {
		return err
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(local.bytes())
	res, err := c.request(ctx, req)
	if err != nil {
		return fmt.Errorf("re-INVITE: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("re-INVITE: %w", &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	// The 2xx of a re-INVITE is acknowledged like the first one (RFC 3261
	// §13.2.2.4), with the re-INVITE's CSeq number.
	ack, _ := c.newInDialog(sip.ACK)
	cseq := *req.CSeq()
	cseq.MethodName = sip.ACK
	ack.AppendHeader(&cseq)
	if err := c.write(ack); err != nil {
		c.log.Warn("ACK of re-INVITE failed", "error", err)
	}
	ag, err := c.parseAndNegotiate(res.Body())
	if err != nil {
		return err
	}
	if err := c.st.update(ag, dir); err != nil {
		return err
	}
	c.mu.Lock()
	c.local = local
	c.remoteHold = !ag.dir.Receives()
	c.mu.Unlock()
	c.setState(next)
	return nil
}

// onReinvite answers a re-INVITE from the other side: hold, resume or a
// new address.
func (c *Call) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	offer, err := sdpx.Parse(req.Body())
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	ag, err := negotiate(offer, c.agent.codecs, c.agent.cfg.SRTP)
	if err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	c.mu.Lock()
	want := sdpx.SendRecv
	if c.state == StateHeld {
		want = sdpx.SendOnly
	}
	local := c.local
	local.dir = answerDirection(ag.dir, want)
	local.version++
	local.codecs = []codec.Info{ag.codec}
	local.ptOf = map[string]uint8{ag.codec.Name: ag.pt}
	local.dtmfPT, local.dtmfClock = ag.dtmfPT, ag.dtmfClk
	local.secure = offer.Audio.Secure()
	local.crypto = ""
	if ag.srtp {
		local.crypto = keyLine(ag.tag, c.st.localKey)
	}
	c.mu.Unlock()
	if err := c.st.update(ag, local.dir); err != nil {
		respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	res := sip.NewSDPResponseFromRequest(req, local.bytes())
	c.agent.mu.Lock()
	contact := c.agent.contact
	c.agent.mu.Unlock()
	res.AppendHeader(&contact)
	c.mu.Lock()
	c.local = local
	c.remoteHold = !ag.dir.Receives()
	held := c.remoteHold
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		c.log.Warn("answering re-INVITE", "error", err)
	}
	c.log.Info("re-INVITE", "remote_hold", held, "direction", local.dir.String())
	if h := c.agent.cfg.Hooks.OnState; h != nil {
		h(c, c.State())
	}
}

// SendDTMF sends digits (0-9 * # A-D) as RFC 4733 telephone-events, or as
// SIP INFO (application/dtmf-relay) when the other side did not agree to
// telephone-event.
func (c *Call) SendDTMF(ctx context.Context, digits string) error {
	if s := c.State(); s != StateActive && s != StateHeld {
		return fmt.Errorf("%w: call is %s", ErrCallState, s)
	}
	for _, r := range digits {
		if dtmf.Code(r) < 0 {
			return fmt.Errorf("ua: %q is not a DTMF digit (0-9 * # A-D)", r)
		}
	}
	err := c.st.sendDTMF(digits)
	if !errors.Is(err, ErrCallState) {
		return err
	}
	for _, r := range digits {
		req, err := c.newInDialog(sip.INFO)
		if err != nil {
			return err
		}
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody([]byte(fmt.Sprintf("Signal=%c\r\nDuration=100\r\n", r)))
		res, err := c.request(ctx, req)
		if err != nil {
			return fmt.Errorf("INFO: %w", err)
		}
		if !res.IsSuccess() {
			return fmt.Errorf("INFO: %w", &StatusError{Code: res.StatusCode, Reason: res.Reason})
		}
	}
	return nil
}

func (c *Call) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	r, ok := parseInfoDTMF(ct, req.Body())
	if !ok {
		if len(req.Body()) == 0 {
			respond(tx, req, 200, "OK") // a keepalive INFO
			return
		}
		respond(tx, req, 415, "Unsupported Media Type")
		return
	}
	respond(tx, req, 200, "OK")
	c.agent.dtmfReceived(c, r)
}

// Transfer asks the other side to call target instead (blind transfer:
// REFER, RFC 3515) and hangs up once it reports success (NOTIFY with a
// 2xx sipfrag); a failed transfer leaves the call as it was.
func (c *Call) Transfer(ctx context.Context, target string) error {
	if s := c.State(); s != StateActive && s != StateHeld {
		return fmt.Errorf("%w: call is %s", ErrCallState, s)
	}
	uri, _, err := c.agent.resolve(target)
	if err != nil {
		return err
	}
	req, err := c.newInDialog(sip.REFER)
	if err != nil {
		return err
	}
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+uri.String()+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+c.agent.AOR()+">"))
	res, err := c.request(ctx, req)
	if err != nil {
		return fmt.Errorf("REFER: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("REFER: %w", &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	for {
		select {
		case code := <-c.notify:
			if code < 200 {
				continue
			}
			if code >= 300 {
				return fmt.Errorf("transfer: %w", &StatusError{Code: code, Reason: "transfer target refused"})
			}
			return c.Hangup(ctx)
		case <-c.done:
			return nil // the other side hung up on its own
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// onNotify takes the progress of a transfer we asked for: the body is a
// message/sipfrag status line (RFC 3515 §2.4.5).
func (c *Call) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 200, "OK")
	ev := req.GetHeader("Event")
	if ev == nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ev.Value())), "refer") {
		return
	}
	f := strings.Fields(string(req.Body()))
	if len(f) >= 2 && strings.HasPrefix(f[0], "SIP/") {
		var code int
		fmt.Sscanf(f[1], "%d", &code)
		select {
		case c.notify <- code:
		default:
		}
	}
}

// onRefer accepts a blind transfer: 202, then a call to the Refer-To
// target with this call's audio, and NOTIFYs with its outcome. The
// transferor hangs this call up.
func (c *Call) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Refer-To")
	if h == nil {
		respond(tx, req, 400, "Missing Refer-To")
		return
	}
	var uri sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(h.Value(), &uri, &params); err != nil || uri.Host == "" {
		respond(tx, req, 400, "Bad Refer-To")
		return
	}
	uri.Headers = nil // Replaces and the like: not for a blind transfer
	respond(tx, req, 202, "Accepted")
	c.log.Info("transfer requested", "to", uri.String())
	go func() {
		c.sendNotify(100, "Trying", false)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c.mu.Lock()
		opts := c.opts
		c.mu.Unlock()
		nc, err := c.agent.Dial(ctx, uri.String(), opts)
		if err == nil {
			if h := c.agent.cfg.Hooks.OnTransfer; h != nil {
				h(c, nc)
			}
			err = nc.WaitAnswer(ctx)
		}
		var se *StatusError
		switch {
		case err == nil:
			c.sendNotify(200, "OK", true)
		case errors.As(err, &se):
			c.sendNotify(se.Code, se.Reason, true)
		default:
			c.sendNotify(503, "Service Unavailable", true)
		}
	}()
}

func (c *Call) sendNotify(code int, reason string, final bool) {
	req, err := c.newInDialog(sip.NOTIFY)
	if err != nil {
		return
	}
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", code, reason)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.request(ctx, req); err != nil {
		c.log.Debug("NOTIFY of transfer progress", "error", err)
	}
}
