package call

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/sipx"
	"github.com/kaopu/kaopu/internal/store"
)

// Config tunes call handling.
type Config struct {
	Domain          string
	NoAnswerTimeout time.Duration // default 30 s: then the caller gets 480
	// RTPTimeout hangs up an answered, anchored call after this long with
	// no RTP either way; 0 disables.
	RTPTimeout time.Duration
	Media      MediaConfig
	// IsSelf reports whether a Request-URI host and port name this server;
	// any other IP address is a direct call (sip:user@IP:port). Nil: only
	// Domain is ours and direct calls are off. Port 0: any of our ports.
	IsSelf func(host string, port int) bool
	// MinSE is the shortest session interval accepted (RFC 4028 Min-SE);
	// 0 means DefaultMinSE.
	MinSE time.Duration
	// Limits are the fraud caps per calling user (limits.go).
	Limits Limits
	// Classes are the destination classes that need a permission
	// (classes.go).
	Classes Classes
	// Policy returns a user's own settings (nil: everyone follows the
	// server's).
	Policy func(user string) store.Policy
	// Federation: calls from and to other SIP domains (federation.go).
	Federation Federation
	// SignallingAllowed reports whether an authenticated caller may call
	// over a transport ("UDP", "TCP", "TLS", ...); a refusal is 403 "TLS
	// required" (secure.go). Nil allows every transport.
	SignallingAllowed func(user, transport string) bool
	// Resolver locates other domains' servers (RFC 3263); nil: a
	// sipdns.Resolver of the system's name servers, UDP and TCP.
	Resolver ServerLocator
	// MediaEncryption is the global media encryption policy,
	// PolicyOptional ("" too) or PolicyRequired; see mediaPolicy.
	MediaEncryption string
	// Gateway reaches the phone network through trunks (trunk.go); nil:
	// no trunks.
	Gateway Gateway
	// OnTrunkCall is the billing hook: it runs before an outbound call
	// (not an emergency call) goes to a trunk, and may reserve the
	// caller's money for the destination (t.E164); an error refuses the
	// call with 403 and the error's text. The charge belongs in
	// Hooks.OnEnd, which sees Call.Trunk and Call.E164. Nil: no billing.
	OnTrunkCall func(c *Call, t TrunkTarget) error
	// Apps returns the media application a dialed number of ours belongs
	// to (app.go), checked before users; nil: none.
	Apps func(dialed string) (App, bool)
	// Groups returns the ring group a dialed number of ours belongs to
	// (groups.go), checked after applications and before users; nil: none.
	Groups func(number string) (store.Group, bool)
	// Voicemail returns the mailbox application of a user whose mailbox
	// is on (voicemail.go): a call to the user that is not answered
	// within VoicemailAfter, is refused by every phone, or finds none
	// registered goes there instead of failing. Nil: no voicemail.
	Voicemail func(user string) (App, bool)
	// VoicemailAfter is how long a user with a mailbox rings (at most
	// NoAnswerTimeout); 0: NoAnswerTimeout.
	VoicemailAfter time.Duration
}

// Users resolves the user part of a Request-URI (name or extension).
type Users interface {
	CanonicalUser(login string) (string, bool)
}

// Locator returns where a user is registered.
type Locator interface {
	Lookup(aor string) []store.Binding
}

// Router points a request at a binding (its real source and transport).
type Router func(req *sip.Request, b store.Binding) error

// Hooks observe a call's life (CDRs, metrics); any may be nil.
type Hooks struct {
	OnStart  func(c *Call)
	OnAnswer func(c *Call)
	OnEnd    func(c *Call, status int, reason string)
}

// Manager runs every call of this node.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	digest *auth.Digest
	users  Users
	loc    Locator
	route  Router
	in     map[string]*sipgo.DialogUA // our side toward callers, per transport
	out    map[string]*sipgo.DialogUA // our side toward callees, per transport
	hooks  Hooks
	cdrs   *cdr.Recorder // nil records nothing
	media  MediaConfig

	limits *limiter
	denied Denied

	mu       sync.Mutex
	byCaller map[string]*Call // UAS dialog ID of the caller leg
	byCallee map[string]*Call // dialog ID of the winning callee leg
	wg       sync.WaitGroup
}

// New makes a call manager. client sends requests; contacts are our
// Contact per transport ("UDP", "TCP", "TLS"); UDP's is the default.
func New(cfg Config, log *slog.Logger, d *auth.Digest, users Users, loc Locator, route Router,
	client *sipgo.Client, contacts map[string]sip.ContactHeader, cdrs *cdr.Recorder, hooks Hooks) *Manager {
	if cfg.NoAnswerTimeout <= 0 {
		cfg.NoAnswerTimeout = 30 * time.Second
	}
	if cfg.MinSE <= 0 {
		cfg.MinSE = DefaultMinSE
	}
	uas := func() map[string]*sipgo.DialogUA {
		m := map[string]*sipgo.DialogUA{}
		for tp, contact := range contacts {
			// RewriteContact: in-dialog requests go to where the peer
			// really is (RFC 3581 source), not to a Contact behind NAT.
			m[tp] = &sipgo.DialogUA{Client: client, ContactHDR: contact, RewriteContact: true}
		}
		return m
	}
	return &Manager{cfg: cfg, log: log, digest: d, users: users, loc: loc, route: route,
		in: uas(), out: uas(), hooks: hooks, cdrs: cdrs, media: cfg.Media, limits: newLimiter(cfg.Limits, time.Now),
		byCaller: map[string]*Call{}, byCallee: map[string]*Call{}}
}

// Call is one bridged call: the caller's dialog and the callee's.
type Call struct {
	ID       string // the caller's Call-ID
	Caller   string // authenticated user, or user@domain of a caller from another domain
	Callee   string // the callee's user name
	Dialed   string // the Request-URI user as dialed
	Start    time.Time
	Answered time.Time
	Log      *slog.Logger
	// Trunk is the carrier's trunk of a call to or from the phone
	// network, "" otherwise; Inbound tells which way. E164 is the called
	// number of an outbound trunk call in E.164 ("" for short codes).
	Trunk   string
	Inbound bool
	E164    string

	in  *sipgo.DialogServerSession
	tx  sip.ServerTransaction // the caller's INVITE
	out *sipgo.DialogClientSession
	cdr *cdr.Call
	// rejected is the final failure status sent to the caller (reject),
	// 0 before one.
	rejected atomic.Int32
	med      *anchor       // nil: SDP passes through untouched
	app      *ivr.Endpoint // a media application answered the call (app.go)
	// appState is the application call's SDP on each side and its relay
	// once bridged (appdialog.go); nil on other calls.
	appState *appState
	// appAnswer is the SDP answer the application's endpoint gave.
	appAnswer []byte
	direct    bool // a direct call to sip:user@IP:port
	// callerHidden: a carrier's caller asked for privacy (RFC 3323
	// "Privacy: id"): the callee sees an anonymous From; Caller (and the
	// CDR) keep the asserted number.
	callerHidden bool

	ctx    context.Context
	cancel context.CancelFunc
	ended  atomic.Bool

	release func() // gives the caller's slot back (limits.go)
	// trunkRelease gives the trunk's channel back (trunk.go).
	trunkRelease func()
	rel          *reliable              // the caller requires reliable 1xx (RFC 3262)
	ackBody      atomic.Pointer[[]byte] // SDP in the caller's ACK (late offer)
	// pendingAck receives the body of the originator's ACK for a
	// re-INVITE we answered with an offer (late offer in a re-INVITE).
	pendingAck atomic.Pointer[chan []byte]
	offering   atomic.Bool // an in-dialog offer is in progress: another gets 491

	charger Charger // a rated call's money (charge.go); nil: not rated

	sessionMu       sync.Mutex
	sessionTimer    *time.Timer // RFC 4028; nil without a session timer
	sessionInterval time.Duration
}

// Active returns the number of calls in progress.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byCaller)
}

// Close hangs up every call and waits for their goroutines.
func (m *Manager) Close() {
	m.mu.Lock()
	calls := make([]*Call, 0, len(m.byCaller))
	for _, c := range m.byCaller {
		calls = append(calls, c)
	}
	m.mu.Unlock()
	for _, c := range calls {
		c.cancel()
	}
	m.wg.Wait()
}

// displayName is the caller's display name as its phone set it, unless
// it names another of our users (a spoofed caller ID): then it is the
// caller's own user name. The address itself is always the authenticated
// user (callerURI).
func (m *Manager) displayName(c *Call, name string) string {
	if c.callerHidden {
		return "Anonymous"
	}
	n := strings.TrimSpace(name)
	for _, login := range []string{n, strings.ToLower(n)} {
		if other, ok := m.users.CanonicalUser(login); ok && other != c.Caller {
			return c.Caller
		}
	}
	return name
}

// policy returns a user's own settings.
func (m *Manager) policy(user string) store.Policy {
	if m.cfg.Policy == nil {
		return store.Policy{}
	}
	return m.cfg.Policy(user)
}

// classReason is the 403 reason phrase of a call to a class not allowed.
var classReason = map[string]string{
	store.ClassInternational: "International Calls Not Permitted",
	store.ClassPremium:       "Premium-Rate Calls Not Permitted",
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	sipx.Respond(tx, req, res)
}

// OnInvite handles an INVITE outside a dialog (a new call).
func (m *Manager) OnInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// re-INVITE (hold, resume, codec change) inside a call.
		if !m.relay(req, tx) {
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
		}
		return
	}
	if req.Contact() == nil {
		respond(tx, req, 400, "Missing Contact")
		return
	}
	// RFC 3261 §8.2.2.3: refuse extensions we do not do. We do 100rel
	// (RFC 3262) and timer (RFC 4028).
	for _, h := range req.GetHeaders("Require") {
		if v := withoutOption(withoutOption(h.Value(), "100rel"), "timer"); v != "" {
			respond(tx, req, 420, "Bad Extension", sip.NewHeader("Unsupported", v))
			return
		}
	}
	src, _ := netip.ParseAddrPort(req.Source())
	var authz string
	if h := req.GetHeader("Proxy-Authorization"); h != nil {
		authz = h.Value()
	}
	// A carrier's call to one of our numbers (trunk.go): no credentials
	// to check, the number must be ours.
	trunkIn, didNumber, didTarget, fromTrunk := m.inboundTrunk(req, src.Addr())
	if fromTrunk && didTarget == "" {
		m.log.Warn("call from a trunk to a number that is not ours", "trunk", trunkIn, "number", didNumber, "source", req.Source())
		respond(tx, req, 404, "Not Found")
		return
	}
	// A caller of another domain to one of our users: no credentials to
	// check (federation.go); everyone else authenticates.
	guest, isGuest := m.guest(req)
	if fromTrunk {
		guest, isGuest = trunkCaller(req), true
	}
	ar := auth.Result{Outcome: auth.OK, User: guest}
	if !isGuest {
		ar = m.digest.Check(auth.Request{Method: "INVITE", Authorization: authz, CSeq: req.CSeq().SeqNo, Source: src.Addr()})
	}
	if ar.Outcome != auth.OK {
		if ar.Outcome == auth.Failed {
			m.log.Warn("authentication failed", "login", ar.Login, "source", req.Source(), "reason", ar.Reason, "method", "INVITE")
		}
		var hdrs []sip.Header
		for _, c := range m.digest.Challenges(ar.Outcome == auth.Stale) {
			hdrs = append(hdrs, sip.NewHeader("Proxy-Authenticate", c))
		}
		respond(tx, req, 407, "Proxy Authentication Required", hdrs...)
		return
	}
	// Transport rules apply once the caller is authenticated (secure.go).
	if !isGuest && m.signallingRefused(ar.User, req.Transport()) {
		m.log.Warn("call refused: TLS required", "from", ar.User, "transport", req.Transport(), "source", req.Source())
		respond(tx, req, 403, auth.ReasonTLSRequired)
		return
	}
	sips := isSIPS(req.Recipient)
	if sips && !auth.SecureTransport(req.Transport()) {
		respond(tx, req, 403, "SIPS Requires TLS")
		return
	}
	if rf := checkSessionExpires(req, m.cfg.MinSE); rf != nil {
		var hdrs []sip.Header
		if rf.code == 422 {
			hdrs = append(hdrs, minSEHeader(req, m.cfg.MinSE))
		}
		respond(tx, req, rf.code, rf.reason, hdrs...)
		return
	}
	policy := m.policy(ar.User)
	if fromTrunk {
		// The carrier's callers are not our users: the trunk's channel
		// limit applies, not the per-user fraud caps.
		policy = store.Policy{MaxConcurrent: -1, MaxPerMinute: -1}
	}
	emergency := m.cfg.Classes.emergency(req.Recipient.User) && !fromTrunk
	if why, ok := m.limits.admit(ar.User, policy, emergency); !ok {
		reason := map[string]string{"concurrent": "Concurrent Call Limit", "rate": "Call Rate Limit"}[why]
		if why == "concurrent" {
			m.denied.Concurrent.Add(1)
		} else {
			m.denied.Rate.Add(1)
		}
		m.log.Warn("call denied", "from", ar.User, "to", req.Recipient.User, "limit", why)
		respond(tx, req, 403, reason)
		return
	}
	// The caller's slot is released when the call ends (finish), or on
	// any return before the call is up.
	release := sync.OnceFunc(func() { m.limits.done(ar.User) })
	up := false
	defer func() {
		if !up {
			release()
		}
	}()
	// Early: finding the callee may take a DNS lookup (federation).
	respond(tx, req, 100, "Trying")
	dialed := req.Recipient.User
	callID := req.CallID().Value()
	// The CDR row exists from here on, also for calls that go nowhere.
	cdrCallee := dialed
	if fromTrunk {
		// A carrier's call: the record names the user the DID rings.
		if u, ok := m.users.CanonicalUser(didTarget); ok {
			cdrCallee = u
		} else if _, ok := m.group(didTarget); ok {
			cdrCallee = didTarget // the member who answers is named then
		}
	}
	rec := m.cdrs.Start(context.Background(), cdr.CallInfo{CallID: callID, Caller: ar.User, Callee: cdrCallee, Dialed: dialed})
	var callee string
	var targets []store.Binding
	var b []store.Binding // remote's targets
	var remote, local bool
	var refused *refusal
	var trunkRelease func()
	var group *store.Group // a ring group's number was dialed (groups.go)
	var mailbox App        // the callee's voicemail (voicemail.go); nil: none
	// runApp answers the call with a media application (calling cards),
	// reached by one of our users dialing its number or through a DID.
	runApp := func(app App) {
		appRelease := release
		var trunkRel func()
		if fromTrunk {
			rel, ok := m.cfg.Gateway.Acquire(trunkIn, false)
			if !ok {
				m.log.Warn("call from a trunk refused: all its channels busy", "trunk", trunkIn, "number", didNumber)
				respond(tx, req, 503, "Service Unavailable")
				rec.End(cdr.DispositionFor(503, false, false), 503, nil)
				return
			}
			trunkRel = sync.OnceFunc(rel)
			appRelease = func() { release(); trunkRel() }
		}
		var appSrc netip.Addr
		if !fromTrunk {
			appSrc = src.Addr().Unmap()
		}
		if m.answerApp(app, req, tx, ar.User, appSrc, rec, appRelease) {
			up = true
		} else if trunkRel != nil {
			trunkRel()
		}
	}
	if fromTrunk {
		if app, ok := m.app(didTarget); ok {
			runApp(app)
			return
		}
		if g, ok := m.group(didTarget); ok {
			group, callee, local = &g, g.Number, true
		} else {
			callee, local = m.users.CanonicalUser(didTarget)
		}
		if !local {
			m.log.Warn("DID maps to no user", "trunk", trunkIn, "number", didNumber, "target", didTarget)
		} else if rel, ok := m.cfg.Gateway.Acquire(trunkIn, false); ok {
			trunkRelease = rel
			defer func() {
				if !up {
					trunkRelease()
				}
			}()
		} else {
			m.log.Warn("call from a trunk refused: all its channels busy", "trunk", trunkIn, "number", didNumber)
			refused = &refusal{503, "Service Unavailable"}
		}
	} else {
		b, remote, refused = m.remote(req.Recipient)
		if refused == nil && !remote {
			if app, ok := m.app(dialed); ok {
				runApp(app)
				return
			}
			if g, ok := m.group(dialed); ok {
				group, callee, local = &g, g.Number, true
			} else {
				callee, local = m.users.CanonicalUser(dialed)
			}
		}
	}
	if refused == nil && !local {
		// A number that is none of our users goes out to another server
		// (a direct call, another domain; later a trunk): one the caller
		// may not call is refused before anything is sent.
		if class := m.cfg.Classes.forbidden(dialed, policy); class != "" {
			m.denied.Class.Add(1)
			m.log.Warn("call denied", "from", ar.User, "to", dialed, "class", class)
			refused = &refusal{403, classReason[class]}
		}
	}
	// A number that is none of our users: the phone network, through
	// the trunks of the routes that match it (trunk.go).
	var plan []TrunkTarget
	// Only our authenticated users: a guest of another domain (or a
	// carrier) never reaches the phone network through us.
	if refused == nil && !local && !remote && !isGuest && m.cfg.Gateway != nil {
		plan = m.cfg.Gateway.Outbound(dialed)
	}
	if refused != nil {
		respond(tx, req, refused.code, refused.reason)
		rec.End(cdr.DispositionFor(refused.code, false, false), refused.code, nil)
		return
	}
	if len(plan) > 0 {
		// Targets are tried one trunk at a time, in ringTrunks.
		callee = dialed
	} else if remote {
		// A direct call to a host that is not registered here, or a call
		// to another domain: allowed to authenticated callers, its servers
		// tried one at a time (ringRemote).
		callee, targets = b[0].AOR, b
	} else {
		if !local {
			respond(tx, req, 404, "Not Found")
			rec.End(cdr.DispositionFor(404, false, false), 404, nil)
			return
		}
		if group == nil { // a group's members are looked up as it rings
			targets = m.loc.Lookup(callee)
		}
		if sips && len(targets) > 0 {
			if targets = secureTargets(targets); len(targets) == 0 {
				respond(tx, req, 480, "Temporarily Unavailable", sipsNotAllowed(m.cfg.Domain))
				rec.End(cdr.DispositionFor(480, false, false), 480, nil)
				return
			}
		}
	}
	if local && group == nil && len(plan) == 0 {
		mailbox = m.voicemail(callee)
	}
	if len(targets) == 0 && len(plan) == 0 && group == nil && mailbox == nil {
		respond(tx, req, 480, "Temporarily Unavailable")
		rec.End(cdr.DispositionFor(480, false, false), 480, nil)
		return
	}
	med, err := m.newAnchor(req.Body(), m.log.With("call_id", callID), ar.User, callee)
	if err != nil {
		var rf *refusal
		errors.As(err, &rf)
		var hdrs []sip.Header
		if err == errSRTPRequired {
			hdrs = append(hdrs, m.srtpWarning())
		}
		m.log.Info("call refused", "call_id", callID, "status", rf.code, "reason", rf.reason, "srtp_required", err == errSRTPRequired)
		respond(tx, req, rf.code, rf.reason, hdrs...)
		rec.End(cdr.DispositionFor(rf.code, false, false), rf.code, nil)
		return
	}

	in, err := dialogUA(m.in, legSide(req.Transport(), req.Recipient)).ReadInvite(req, tx)
	if err != nil {
		m.log.Warn("invite refused", "error", err)
		respond(tx, req, 500, "Server Internal Error")
		rec.End(store.DispositionFailed, 500, nil)
		med.close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Call{ID: callID, Caller: ar.User, Callee: callee, Dialed: dialed,
		Start: time.Now(), in: in, tx: tx, ctx: ctx, cancel: cancel, cdr: rec, med: med, release: release,
		direct: remote}
	if fromTrunk {
		c.Trunk, c.Inbound, c.trunkRelease = trunkIn, true, trunkRelease
		c.callerHidden, _ = privacyRequested(req)
	}
	c.Log = m.log.With("call_id", c.ID, "from", c.Caller, "to", callee)
	if headerHas(req, "Require", "100rel") {
		c.rel = newReliable()
	}
	m.mu.Lock()
	m.byCaller[in.ID] = c
	m.mu.Unlock()
	if m.hooks.OnStart != nil {
		m.hooks.OnStart(c)
	}
	// sipgo ends the INVITE server transaction when this handler returns,
	// so ring here until the caller has a final answer.
	m.wg.Add(1)
	if group != nil || mailbox != nil {
		var outcome groupOutcome
		if group != nil {
			outcome = m.ringGroupCall(c, req, *group)
		} else {
			outcome = m.ringOrVoicemail(c, req, targets, mailbox)
		}
		switch outcome {
		case groupFailed:
			m.wg.Done()
			return
		case groupApp:
			// An application took the call over (the group's fallback,
			// the callee's voicemail); its goroutine owns the call and
			// m.wg's count.
			up = true
			tx.Terminate()
			return
		}
	} else if len(plan) > 0 && !m.ringTrunks(c, req, plan, emergency) || remote && !m.ringRemote(c, req, targets) ||
		len(plan) == 0 && !remote && !m.ring(c, req, targets) {
		m.wg.Done()
		return
	}
	up = true
	// The caller has ACKed our 2xx, so it will not retransmit its INVITE:
	// the transaction need not wait out Timer L (32 s) holding both.
	tx.Terminate()
	m.supervise(c)
}

type branchResult struct {
	cs  *sipgo.DialogClientSession
	err error
}

// ring forks the call to every target and answers the caller with the
// winner; false when the call did not connect (and is finished).
func (m *Manager) ring(c *Call, req *sip.Request, targets []store.Binding) bool {
	r := m.fork(c, targets, legSpec{build: func(b store.Binding) (*sip.Request, error) { return m.newLegInvite(c, req, b) }})
	defer r.done()
	if r.winner == nil {
		m.failed(c, r)
		return false
	}
	return m.connect(c, r.winner)
}

// legSpec says how fork builds and authenticates its branches.
type legSpec struct {
	build func(b store.Binding) (*sip.Request, error)
	// user and password answer the callee's 401/407 (a carrier's).
	user, password string
	// setup, when set, gives up on branches that send nothing at all
	// (not even 100 Trying) within it.
	setup time.Duration
	// ring, when set, is how long the branches ring instead of the
	// no-answer timeout (a ring group's ring time).
	ring time.Duration
	// early, when set, is told every provisional response (after its
	// PRACK): an application's outbound leg plays ringback or relays early
	// media with it (appbridge.go). It runs on the branch's goroutine.
	early func(res *sip.Response)
}

// forked is how fork ended: a winner, or why there is none.
type forked struct {
	winner     *sipgo.DialogClientSession
	best       int // best final failure, 0 when none
	bestReason string
	callerGone bool // the caller cancelled
	noAnswer   bool // the no-answer timeout
	silent     bool // spec.setup passed with no response at all
	unreached  bool // no request could be sent to any target
	done       func()
}

// fork sends the call to every target at once and waits for the first
// to answer, or for all to fail. done must be called once the winner's
// dialog is set up (it releases the branches' contexts).
func (m *Manager) fork(c *Call, targets []store.Binding, spec legSpec) forked {
	ringFor := m.cfg.NoAnswerTimeout
	if spec.ring > 0 {
		ringFor = spec.ring
	}
	ringCtx, stopRinging := context.WithTimeout(c.ctx, ringFor)
	results := make(chan branchResult, len(targets))
	branchCtx, cancelBranches := context.WithCancel(ringCtx)
	r := forked{done: func() { cancelBranches(); stopRinging() }}
	var responded, silent atomic.Bool
	if spec.setup > 0 {
		t := time.AfterFunc(spec.setup, func() {
			if !responded.Load() {
				silent.Store(true)
				cancelBranches()
			}
		})
		defer t.Stop()
	}
	// While ringing, the caller's CANCEL ends its dialog (the transaction
	// layer has answered 487): stop ringing every branch.
	var callerGone atomic.Bool
	stopWatching := context.AfterFunc(c.in.Context(), func() {
		callerGone.Store(true)
		cancelBranches()
	})
	defer stopWatching()
	var relayMu sync.Mutex
	started := 0
	for _, b := range targets {
		out, err := spec.build(b)
		if err != nil {
			c.Log.Warn("cannot reach contact", "contact", b.Contact, "error", err)
			continue
		}
		cs, err := dialogUA(m.out, legSide(b.Transport, out.Recipient)).WriteInvite(branchCtx, out)
		if err != nil {
			c.Log.Warn("invite to contact failed", "contact", b.Contact, "error", err)
			continue
		}
		started++
		go func() {
			var lastRSeq uint32 // of this branch's reliable 1xx
			err := waitAnswer(branchCtx, cs, sipgo.AnswerOptions{Username: spec.user, Password: spec.password, OnResponse: func(res *sip.Response) error {
				responded.Store(true)
				c.Log.Debug("callee response", "status", res.StatusCode, "contact", b.Contact)
				if res.IsProvisional() && res.StatusCode > 100 && headerHas(res, "Require", "100rel") {
					if !prackCallee(c, cs, res, &lastRSeq) {
						return nil // a retransmission
					}
				}
				if spec.early != nil && res.IsProvisional() {
					spec.early(res)
				}
				if res.StatusCode == 180 || res.StatusCode == 183 {
					relayMu.Lock()
					defer relayMu.Unlock()
					if c.in.LoadState() < sip.DialogStateEstablished {
						var body []byte
						if res.StatusCode == 183 && len(res.Body()) > 0 {
							body = res.Body()
							if c.med != nil {
								// Early media through the relay.
								var err error
								if body, err = c.med.answered(c.ctx, body); err != nil {
									c.Log.Debug("early media refused", "error", err)
									body = nil
								}
							}
						}
						var err error
						if c.rel != nil {
							err = c.rel.sendProvisional(c, res.StatusCode, res.Reason, body)
						} else {
							err = c.in.Respond(res.StatusCode, res.Reason, body, sdpType(body)...)
						}
						if err != nil {
							c.Log.Debug("relaying provisional failed", "error", err)
						}
					}
				}
				return nil
			}})
			results <- branchResult{cs: cs, err: err}
		}()
	}
	if started == 0 {
		r.unreached = true
		return r
	}

	var winner *sipgo.DialogClientSession
	best := 0
	bestReason := ""
	pending := started
collect:
	for pending > 0 && winner == nil {
		var r branchResult
		select {
		case r = <-results:
		case <-branchCtx.Done():
			// Ringing is over (timeout or the caller's CANCEL). A branch
			// that never sent a provisional answer can only be cancelled
			// once it does, or at Timer B: answer the caller now, and let
			// the drain below collect the stragglers.
			break collect
		}
		pending--
		if r.err == nil {
			winner = r.cs
			break
		}
		var er *sipgo.ErrDialogResponse
		if errors.As(r.err, &er) {
			if code := er.Res.StatusCode; betterFinal(code, best) {
				best, bestReason = code, er.Res.Reason
			}
		}
		r.cs.Close()
	}
	if pending > 0 {
		// RFC 3261 §16.7 step 10: CANCEL the other branches. A branch that
		// has not sent a provisional answer cannot be cancelled until it
		// does or Timer B fires, so do not make the caller wait for it.
		cancelBranches()
		go func() {
			for ; pending > 0; pending-- {
				r := <-results
				if r.err == nil {
					// A second answer lost the race: hang it up.
					ackCallee(r.cs, nil)
					bye(r.cs)
					continue
				}
				r.cs.Close()
			}
		}()
	}

	r.winner, r.best, r.bestReason = winner, best, bestReason
	r.callerGone = callerGone.Load() || c.ctx.Err() != nil
	r.noAnswer = ringCtx.Err() != nil && !silent.Load()
	r.silent = silent.Load()
	return r
}

// failed answers the caller a call that found no one, and finishes it.
func (m *Manager) failed(c *Call, r forked) {
	best, bestReason := r.best, r.bestReason
	switch {
	case r.callerGone:
		// The caller cancelled: the transaction layer answered 487.
		m.finish(c, 487, "Request Terminated")
	case r.noAnswer:
		m.reject(c, 480, "No Answer")
	case best == 0:
		m.reject(c, 480, "Temporarily Unavailable")
	default:
		if best == 401 || best == 407 {
			// The far end wants credentials we cannot give for the
			// caller (another realm): its challenge means nothing here.
			best, bestReason = 403, "Forbidden"
		}
		m.reject(c, best, bestReason)
	}
}

// reject answers the caller's INVITE with a final failure and finishes
// the call with the status the caller got: 487 when its CANCEL ended the
// transaction first (the transaction layer answered it).
func (m *Manager) reject(c *Call, code int, reason string) {
	if !c.rejected.CompareAndSwap(0, int32(code)) {
		m.finish(c, code, reason) // the caller's BYE got its 487 already (earlyBye)
		return
	}
	if err := c.in.Respond(code, reason, nil); err != nil {
		c.Log.Debug("final answer to the caller failed", "status", code, "error", err)
	}
	m.finish(c, code, reason)
}

// cancelled reports whether the caller's CANCEL ended its INVITE before
// the call was answered (RFC 3261 §9.2: the transaction answered 487).
func (c *Call) cancelled() bool {
	return c.tx != nil && c.Answered.IsZero() && errors.Is(c.tx.Err(), sip.ErrTransactionCanceled)
}

// connect completes a call the callee answered (winner): ACK the callee,
// answer the caller; false when that failed (the call is finished).
func (m *Manager) connect(c *Call, winner *sipgo.DialogClientSession) bool {
	// Answered: ACK the callee, answer the caller with the callee's SDP.
	// With a late offer (no SDP in the caller's INVITE) the callee's 2xx
	// holds the offer, and its ACK must wait for the caller's answer.
	c.out = winner
	late := len(c.in.InviteRequest.Body()) == 0
	if !late {
		if err := ackCallee(winner, nil); err != nil {
			c.Log.Warn("ack to callee failed", "error", err)
		}
	}
	body := winner.InviteResponse.Body()
	codec := codecOf(body)
	if late && c.med != nil {
		var err error
		if body, err = c.med.lateOffer(body); err != nil {
			c.Log.Warn("callee's offer unusable", "error", err)
			ackCallee(winner, nil)
			bye(winner)
			m.reject(c, 488, "Not Acceptable Here")
			return false
		}
	} else if c.med != nil {
		var err error
		if body, err = c.med.answered(c.ctx, body); err != nil {
			c.Log.Warn("callee's answer unusable", "error", err)
			bye(winner)
			m.reject(c, 488, "Not Acceptable Here")
			return false
		}
		codec = c.med.codec
	}
	if c.rel != nil {
		// RFC 3262 §3: no 2xx before the PRACK of a reliable 1xx with SDP.
		if err := c.rel.waitAcked(c.in.Context(), true); err != nil {
			c.Log.Warn("caller never PRACKed", "error", err)
			bye(winner)
			m.reject(c, 500, "Server Internal Error")
			return false
		}
	}
	sessionHdrs, sessionInterval := answerSession(c.in.InviteRequest, winner.InviteResponse)
	err := c.in.Respond(200, "OK", body, append(sdpType(body), sessionHdrs...)...)
	if err == nil && c.in.LoadState() < sip.DialogStateConfirmed {
		// sipgo stops waiting for the ACK after 64*T1 without an error.
		err = errors.New("no ACK for our 2xx")
	}
	if err != nil {
		c.Log.Warn("answering caller failed", "error", err)
		if late {
			ackCallee(winner, nil)
		}
		bye(winner)
		status, reason := 500, "Server Internal Error"
		if c.in.LoadState() == sip.DialogStateEstablished {
			// Our 2xx went out and no ACK came in 64*T1: RFC 3261
			// §13.3.1.4 ends the session with a BYE.
			bye(c.in)
			status, reason = 408, "No ACK"
		}
		m.finish(c, status, reason)
		return false
	}
	if late && !m.completeLateOffer(c, winner) {
		return false
	}
	if late && c.med != nil {
		codec = c.med.codec
	}
	c.Answered = time.Now()
	m.armSession(c, sessionInterval)
	if c.Trunk != "" && !c.Inbound {
		c.cdr.TrunkAnswered()
	}
	c.cdr.Answered(codec)
	m.mu.Lock()
	m.byCallee[winner.ID] = c
	m.mu.Unlock()
	c.Log.Info("call answered")
	if m.hooks.OnAnswer != nil {
		m.hooks.OnAnswer(c)
	}
	return true
}

// supervise watches an answered call until it ends, without a goroutine
// of its own: a call stopped by a shutdown (its context cancelled while
// still up) is hung up on both sides, and so is one whose media stopped
// both ways for the RTP timeout. m.wg is released when the call ends.
func (m *Manager) supervise(c *Call) {
	m.armLimit(c)
	var check atomic.Pointer[time.Timer]
	if m.cfg.RTPTimeout > 0 && c.med != nil {
		period := min(m.cfg.RTPTimeout/4, 5*time.Second)
		t := time.AfterFunc(time.Hour, func() { m.checkMedia(c, &check, period) })
		check.Store(t)
		t.Reset(period) // armed only once checkMedia can find it
	}
	context.AfterFunc(c.ctx, func() {
		defer m.wg.Done()
		if t := check.Load(); t != nil {
			t.Stop()
		}
		m.hangUp(c, "server shutdown")
	})
}

// checkMedia hangs up a call with no RTP either way for the RTP timeout,
// else looks again after period.
func (m *Manager) checkMedia(c *Call, check *atomic.Pointer[time.Timer], period time.Duration) {
	if c.ctx.Err() != nil {
		return
	}
	now := time.Now()
	last := latest(c.Answered, c.med.legA.LastActivity(), c.med.legB.LastActivity())
	if now.Sub(last) > m.cfg.RTPTimeout {
		c.Log.Warn("no media either way, hanging up", "silent_for", now.Sub(last).Round(time.Second).String())
		c.cdr.Flag(FlagRTPTimeout)
		m.hangUp(c, "rtp timeout")
		return
	}
	check.Load().Reset(period)
}

// hangUp ends an answered call from here: BYE to both sides.
func (m *Manager) hangUp(c *Call, reason string) {
	if c.ended.Load() {
		return
	}
	bye(c.out)
	bye(c.in)
	m.finish(c, 200, reason)
}

// byeTimeout bounds a BYE we send on our own: a dead peer does not hold
// the call's resources until Timer F.
const byeTimeout = 5 * time.Second

// bye hangs up one leg, waiting at most byeTimeout for its answer.
func bye(leg interface{ Bye(context.Context) error }) error {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	return leg.Bye(ctx)
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// withoutOption removes one option tag from a comma-separated list.
func withoutOption(list, tag string) string {
	var keep []string
	for _, o := range strings.Split(list, ",") {
		if o = strings.TrimSpace(o); o != "" && !strings.EqualFold(o, tag) {
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ", ")
}

// DirectMark tags (as its Instance) the pseudo-binding of a direct call
// or a call to another domain: its Source is where the request goes, not
// a registered connection.
const DirectMark = "direct"

// direct turns a Request-URI naming an IP address other than ours into a
// target; false for our domain, our own address, or host names.
func (m *Manager) direct(u sip.Uri) (store.Binding, bool) {
	if m.cfg.IsSelf == nil || strings.EqualFold(u.Host, m.cfg.Domain) {
		return store.Binding{}, false
	}
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return store.Binding{}, false
	}
	port, tp, scheme := u.Port, "UDP", "sip"
	if isSIPS(u) {
		tp, scheme = "TLS", "sips"
	} else if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToUpper(v)
	}
	if port == 0 {
		// RFC 3263 §4.2: 5061 for TLS, 5060 otherwise.
		port = 5060
		if tp == "TLS" {
			port = 5061
		}
	}
	if m.cfg.IsSelf(ip.String(), port) {
		return store.Binding{}, false
	}
	contact := sip.Uri{Scheme: scheme, User: u.User, Host: u.Host, Port: u.Port, UriParams: u.UriParams}
	return store.Binding{AOR: u.User + "@" + netip.AddrPortFrom(ip, uint16(port)).String(), Contact: contact.String(),
		Source: netip.AddrPortFrom(ip, uint16(port)).String(), Transport: tp, Instance: DirectMark}, true
}

// betterFinal ranks final failures for the caller (RFC 3261 §16.7 step 6,
// simplified): 6xx beats everything, then busy, then any 4xx, then 5xx.
func betterFinal(code, best int) bool {
	rank := func(c int) int {
		switch {
		case c >= 600:
			return 5
		case c == 486:
			return 4
		case c >= 400 && c < 500:
			return 3
		case c >= 500:
			return 2
		case c > 0:
			return 1
		}
		return 0
	}
	return rank(code) > rank(best)
}

// codecOf names the first codec of an SDP answer, for the CDR.
func codecOf(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=rtpmap:"); ok {
			if _, enc, ok := strings.Cut(rest, " "); ok {
				name, _, _ := strings.Cut(enc, "/")
				return name
			}
		}
	}
	return ""
}

func sdpType(body []byte) []sip.Header {
	if len(body) == 0 {
		return nil
	}
	ct := sip.ContentTypeHeader("application/sdp")
	return []sip.Header{&ct}
}

// newLegInvite builds the INVITE toward one of the callee's contacts.
func (m *Manager) newLegInvite(c *Call, req *sip.Request, b store.Binding) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, err
	}
	out := sip.NewRequest(sip.INVITE, uri)
	display := ""
	if f := req.From(); f != nil {
		display = m.displayName(c, f.DisplayName)
	}
	out.AppendHeader(&sip.FromHeader{DisplayName: display,
		Address: m.callerURI(c),
		Params:  sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(16)}}})
	to := sip.Uri{Scheme: "sip", User: c.Callee, Host: m.cfg.Domain}
	if c.direct {
		to = sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: req.Recipient.Host, Port: req.Recipient.Port}
	}
	out.AppendHeader(&sip.ToHeader{Address: to})
	copyLegHeaders(m, req, out, c)
	if err := m.route(out, b); err != nil {
		return nil, err
	}
	return out, nil
}

// waitAnswer is cs.WaitAnswer that survives a sipgo v1.7.2 bug: when a
// ringing branch is cancelled while its transaction is torn down (server
// shutdown), sipgo's CANCEL gets neither a response nor an error and
// dereferences the missing response. The branch has failed either way.
func waitAnswer(ctx context.Context, cs *sipgo.DialogClientSession, opts sipgo.AnswerOptions) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sipgo: cancelling the branch failed: %v", p)
		}
	}()
	return cs.WaitAnswer(ctx, opts)
}

// finish ends a call once and reports it.
func (m *Manager) finish(c *Call, status int, reason string) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	if c.cancelled() {
		// Whatever ended the setup, the caller got the 487 for its CANCEL.
		status, reason = 487, "caller cancelled"
	}
	func() {
		c.cancel()
		if c.release != nil {
			c.release()
		}
		if c.trunkRelease != nil {
			c.trunkRelease()
		}
		c.stopSession()
		m.mu.Lock()
		delete(m.byCaller, c.in.ID)
		if c.out != nil {
			delete(m.byCallee, c.out.ID)
		}
		m.mu.Unlock()
		c.in.Close()
		if c.out != nil {
			c.out.Close()
		}
		c.Log.Info("call ended", "status", status, "reason", reason,
			"duration", time.Since(c.Start).Round(time.Millisecond).String())
		answered := !c.Answered.IsZero()
		legs := c.med.stats()
		c.med.close()
		if c.app != nil {
			c.app.Close() // a Play or CollectDigits under way returns
		}
		rec := c.cdr.End(cdr.DispositionFor(status, answered, status == 487), status, legs)
		m.charge(c, rec)
		if m.hooks.OnEnd != nil {
			m.hooks.OnEnd(c, status, reason)
		}
	}()
}

// OnAck handles the caller's ACK for our 2xx.
func (m *Manager) OnAck(req *sip.Request, tx sip.ServerTransaction) {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return
	}
	m.mu.Lock()
	c := m.byCaller[id]
	m.mu.Unlock()
	if c != nil {
		if body := req.Body(); len(body) > 0 {
			// The answer of a late offer; kept before ReadAck wakes ring.
			b := append([]byte(nil), body...)
			c.ackBody.CompareAndSwap(nil, &b)
		}
		c.in.ReadAck(req, tx)
	}
	// The ACK for our 2xx to a re-INVITE, from either side.
	if sd, ok := m.match(req); ok {
		if ch := sd.c.pendingAck.Load(); ch != nil {
			select {
			case *ch <- append([]byte(nil), req.Body()...):
			default:
			}
		}
	}
}

// completeLateOffer takes the caller's answer from its ACK and ACKs the
// callee with it (rewritten toward the callee when media is anchored).
// False when the call failed, and has been ended.
func (m *Manager) completeLateOffer(c *Call, winner *sipgo.DialogClientSession) bool {
	var ans []byte
	if p := c.ackBody.Load(); p != nil {
		ans = *p
	}
	fail := func(reason string, err error) bool {
		c.Log.Warn(reason, "error", err)
		ackCallee(winner, nil)
		bye(winner)
		bye(c.in)
		m.finish(c, 488, "Not Acceptable Here")
		return false
	}
	if len(ans) == 0 {
		return fail("late offer: the caller's ACK has no answer", nil)
	}
	if c.med != nil {
		var err error
		if ans, err = c.med.lateAnswer(c.ctx, ans); err != nil {
			return fail("late offer: the caller's answer is unusable", err)
		}
	}
	if err := ackCallee(winner, ans); err != nil {
		c.Log.Warn("ack to callee failed", "error", err)
	}
	return true
}

// OnBye handles a BYE from either side and hangs up the other.
func (m *Manager) OnBye(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		m.mu.Lock()
		c := m.byCaller[id]
		m.mu.Unlock()
		if c != nil && m.earlyBye(c, req, tx) {
			return
		}
		if c != nil {
			c.in.ReadBye(req, tx)
			if c.out != nil {
				if err := c.out.Bye(ctx); err != nil {
					c.Log.Debug("bye to callee", "error", err)
				}
			}
			m.finish(c, 200, "caller hung up")
			return
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		m.mu.Lock()
		c := m.byCallee[id]
		m.mu.Unlock()
		if c != nil {
			c.out.ReadBye(req, tx)
			if err := c.in.Bye(ctx); err != nil {
				c.Log.Debug("bye to caller", "error", err)
			}
			m.finish(c, 200, "callee hung up")
			return
		}
	}
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

// earlyBye handles the caller's BYE on a call not answered yet; false
// when the call has been answered (the BYE is the ordinary hang-up).
// After a final failure the dialog is gone: 481, and the call ends with
// the status the caller got. Before any final answer the BYE ends the
// early dialog: RFC 3261 §15.1.2 answers the INVITE 487, the ringing
// stops (finish), and the record says 487, as for a CANCEL.
func (m *Manager) earlyBye(c *Call, req *sip.Request, tx sip.ServerTransaction) bool {
	if !c.Answered.IsZero() || c.in.LoadState() >= sip.DialogStateEstablished {
		return false
	}
	if !c.rejected.CompareAndSwap(0, 487) {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return true
	}
	if c.tx != nil {
		if err := c.tx.Respond(sip.NewResponseFromRequest(c.in.InviteRequest, 487, "Request Terminated", nil)); err != nil {
			c.Log.Debug("487 to the caller's INVITE", "error", err)
		}
	}
	respond(tx, req, 200, "OK")
	m.finish(c, 487, "caller hung up before the answer")
	return true
}

// OnCancel answers a CANCEL that matched no pending INVITE (the transaction
// layer handles the ones that did: 200 for the CANCEL, 487 for the INVITE).
func (m *Manager) OnCancel(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}
