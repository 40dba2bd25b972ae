package ua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/media/codec"
)

// Config is one agent's account and network settings.
type Config struct {
	// User is the SIP user name (the user part of our address).
	User string
	// Password answers digest challenges; AuthUser is the name given with
	// it (default User).
	Password, AuthUser string
	// DisplayName is shown to the people we call.
	DisplayName string
	// Server is the registrar and outbound proxy, host:port; empty for an
	// agent without a server (direct calls only).
	Server string
	// Domain is our address's host part and the digest realm we expect
	// (default: Server's host, else the listening address).
	Domain string
	// Transport to the server: udp (default), tcp or tls.
	Transport string
	// Listen is the local SIP address (ip:port). Default: the address that
	// routes to Server, on a port the kernel picks. An agent without a
	// server needs it so that others can call it.
	Listen string
	// Expires is the registration lifetime asked for (default 300 s); the
	// agent refreshes at half of what the registrar grants.
	Expires time.Duration
	// STUN is a STUN server (host:port) asked for the public address of
	// each call's RTP socket, which the SDP then announces.
	STUN string
	// SRTP says when to encrypt media.
	SRTP SRTPMode
	// Codecs are the SDP names of the codecs to offer and accept, in order
	// of preference (default codec.All: PCMU, PCMA, G722, then opus when
	// built with the opus tag).
	Codecs []string
	// InsecureTLS skips verifying the server's certificate (kaopu's
	// generated one is self-signed).
	InsecureTLS bool
	// RingTimeout bounds how long an incoming call rings unanswered before
	// it gets 480 (default 120 s).
	RingTimeout time.Duration
	Log         *slog.Logger
	Hooks       Hooks
}

// Hooks are called on events; each may be nil. They run on the agent's
// goroutines: return quickly, and do not call back into the same Call
// from OnState.
type Hooks struct {
	// OnIncoming is a new incoming call, ringing: Answer or Reject it.
	OnIncoming func(*Call)
	// OnState is a call's state change.
	OnState func(*Call, State)
	// OnDTMF is a digit received (RFC 4733 event or SIP INFO).
	OnDTMF func(*Call, rune)
	// OnMessage is an instant message received (SIP MESSAGE).
	OnMessage func(from, text string)
	// OnRegister is the result of each registration attempt.
	OnRegister func(granted time.Duration, err error)
	// OnTransfer is a call that replaces old after the other side
	// transferred us (REFER).
	OnTransfer func(old, replacement *Call)
}

// Agent is a SIP user agent: it registers (when it has a server), places
// and receives calls and exchanges instant messages.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	codecs []codec.Info

	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	cli      *sipgo.Client
	dialogUA *sipgo.DialogUA

	local     netip.AddrPort // SIP listening address
	udpConn   *net.UDPConn
	tcpLn     *net.TCPListener
	transport string
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu         sync.Mutex
	calls      map[string]*Call // by Call-ID
	contact    sip.ContactHeader
	registered bool
	regCancel  context.CancelFunc
}

// New checks cfg and returns an agent; Start makes it work.
func New(cfg Config) (*Agent, error) {
	if cfg.User == "" {
		return nil, errors.New("ua: no user name")
	}
	if cfg.Server == "" && cfg.Listen == "" {
		return nil, errors.New("ua: give a server (HOST:PORT) or a listening address for direct calls")
	}
	cfg.Transport = strings.ToLower(cfg.Transport)
	switch cfg.Transport {
	case "":
		cfg.Transport = "udp"
	case "udp", "tcp", "tls":
	default:
		return nil, fmt.Errorf("ua: transport %q: allowed udp, tcp, tls", cfg.Transport)
	}
	if cfg.Expires == 0 {
		cfg.Expires = 300 * time.Second
	}
	if cfg.RingTimeout == 0 {
		cfg.RingTimeout = 120 * time.Second
	}
	if cfg.AuthUser == "" {
		cfg.AuthUser = cfg.User
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, log: cfg.Log, calls: map[string]*Call{}, closing: make(chan struct{}), transport: cfg.Transport}
	if len(cfg.Codecs) == 0 {
		a.codecs = codec.All()
	}
	for _, n := range cfg.Codecs {
		c, ok := codec.Lookup(strings.TrimSpace(n))
		if !ok {
			var names []string
			for _, c := range codec.All() {
				names = append(names, c.Name)
			}
			return nil, fmt.Errorf("ua: codec %q: allowed %s", n, strings.Join(names, ", "))
		}
		a.codecs = append(a.codecs, c)
	}
	return a, nil
}

// Start listens for SIP, and registers when the agent has a server (the
// first registration's result is returned; refreshes continue in the
// background until Close).
func (a *Agent) Start(ctx context.Context) error {
	listen, err := a.listenAddr()
	if err != nil {
		return err
	}
	if a.cfg.Domain == "" {
		if a.cfg.Server != "" {
			host, _, err := net.SplitHostPort(a.cfg.Server)
			if err != nil {
				return fmt.Errorf("ua: server %q: %w", a.cfg.Server, err)
			}
			a.cfg.Domain = host
		} else {
			a.cfg.Domain = listen.Addr().String()
		}
	}
	tlsConf := &tls.Config{InsecureSkipVerify: a.cfg.InsecureTLS, MinVersion: tls.VersionTLS12} //nolint:gosec // the user's choice
	a.ua, err = sipgo.NewUA(sipgo.WithUserAgent("kaopu-phone"), sipgo.WithUserAgentHostname(a.cfg.Domain),
		sipgo.WithUserAgenTLSConfig(tlsConf))
	if err != nil {
		return err
	}
	a.srv, err = sipgo.NewServer(a.ua, sipgo.WithServerLogger(a.log))
	if err != nil {
		return err
	}
	a.handle()

	// UDP: one socket serves and sends, so that the registrar's binding and
	// our Via are the address we listen on. TCP: a listener for direct
	// calls; calls from a server come over our own connection.
	udp, tcp, err := listenBoth(listen)
	if err != nil {
		return err
	}
	a.local = netip.AddrPortFrom(listen.Addr(), udp.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	opts := []sipgo.ClientOption{sipgo.WithClientHostname(a.local.Addr().String()), sipgo.WithClientPort(int(a.local.Port()))}
	if a.transport == "udp" {
		opts = append(opts, sipgo.WithClientConnectionAddr(a.local.String()))
	}
	a.cli, err = sipgo.NewClient(a.ua, opts...)
	if err != nil {
		return err
	}
	a.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: a.cfg.User,
		Host: a.local.Addr().String(), Port: int(a.local.Port())}}
	if a.transport != "udp" && a.cfg.Server != "" {
		a.contact.Address.UriParams = sip.NewParams()
		a.contact.Address.UriParams.Add("transport", a.transport)
	}
	a.dialogUA = &sipgo.DialogUA{Client: a.cli, ContactHDR: a.contact}
	// Handlers read the fields above: serve only now.
	a.udpConn, a.tcpLn = udp, tcp
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.srv.ServeUDP(udp) }()
	go func() { defer a.wg.Done(); a.srv.ServeTCP(tcp) }()
	// Requests must leave from the UDP listener: wait until sipgo has it.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		if c, err := a.ua.TransportLayer().GetConnection("udp", udp.LocalAddr().String()); err == nil && c != nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("ua: the SIP UDP listener did not start")
		}
	}

	a.log.Info("listening", "sip", a.local.String(), "transport", a.transport)

	if a.cfg.Server == "" {
		return nil
	}
	granted, err := a.register(ctx, a.cfg.Expires)
	if a.cfg.Hooks.OnRegister != nil {
		a.cfg.Hooks.OnRegister(granted, err)
	}
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.registered, a.regCancel = true, cancel
	a.mu.Unlock()
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.refreshLoop(rctx, granted) }()
	return nil
}

// listenAddr is Listen, or the local address that routes to the server.
func (a *Agent) listenAddr() (netip.AddrPort, error) {
	if a.cfg.Listen != "" {
		host, port, err := net.SplitHostPort(a.cfg.Listen)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("ua: listen %q: %w", a.cfg.Listen, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("ua: listen %q: bad port", a.cfg.Listen)
		}
		if host == "" {
			host = "0.0.0.0"
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("ua: listen %q: want IP:PORT", a.cfg.Listen)
		}
		if ip.IsUnspecified() {
			// Contact and SDP need an address others can reach.
			if ip, err = a.routeTo(); err != nil {
				return netip.AddrPort{}, err
			}
		}
		return netip.AddrPortFrom(ip, uint16(p)), nil
	}
	ip, err := a.routeTo()
	return netip.AddrPortFrom(ip, 0), err
}

// routeTo is the local IP the kernel routes toward the server (or toward a
// public address without one), found with an unconnected-in-effect UDP
// socket: nothing is sent.
func (a *Agent) routeTo() (netip.Addr, error) {
	target := a.cfg.Server
	if target == "" {
		target = "192.0.2.1:9" // TEST-NET-1: only the route is looked up
	}
	c, err := net.Dial("udp", target)
	if err != nil {
		return netip.IPv4Unspecified(), fmt.Errorf("ua: no route to %s: %w", target, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// LocalAddr is the SIP listening address (valid after Start).
func (a *Agent) LocalAddr() netip.AddrPort { return a.local }

// AOR is our address of record, sip:user@domain.
func (a *Agent) AOR() string { return "sip:" + a.cfg.User + "@" + a.cfg.Domain }

// Registered reports whether the last registration succeeded.
func (a *Agent) Registered() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered
}

// Calls are the calls not yet ended.
func (a *Agent) Calls() []*Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Call, 0, len(a.calls))
	for _, c := range a.calls {
		out = append(out, c)
	}
	return out
}

// Close hangs up every call, unregisters and stops listening.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		close(a.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		for _, c := range a.Calls() {
			c.Hangup(ctx)
		}
		a.mu.Lock()
		registered, stop := a.registered, a.regCancel
		a.mu.Unlock()
		if stop != nil {
			stop()
		}
		if registered {
			if _, err := a.register(ctx, 0); err != nil {
				a.log.Warn("unregister", "error", err)
			}
		}
		if a.ua != nil {
			a.ua.Close()
		}
		if a.udpConn != nil {
			a.udpConn.Close()
			a.tcpLn.Close()
		}
	})
	a.wg.Wait()
	return nil
}

// from is our From header for a new request.
func (a *Agent) from() *sip.FromHeader {
	f := &sip.FromHeader{DisplayName: a.cfg.DisplayName,
		Address: sip.Uri{Scheme: "sip", User: a.cfg.User, Host: a.cfg.Domain}, Params: sip.NewParams()}
	f.Params.Add("tag", sip.GenerateTagN(16))
	return f
}

// resolve turns a call or message target into a request URI and, when the
// request goes through the server, the server's address. A bare user or
// extension, or a URI in our domain, goes through the server; any other
// sip:user@host[:port] (or user@host:port) goes directly to that host.
func (a *Agent) resolve(target string) (sip.Uri, string, error) {
	target = strings.TrimSpace(target)
	if target == "" {
		return sip.Uri{}, "", fmt.Errorf("%w: empty", ErrBadTarget)
	}
	var uri sip.Uri
	switch {
	case strings.HasPrefix(target, "sip:") || strings.HasPrefix(target, "sips:"):
		if err := sip.ParseUri(target, &uri); err != nil {
			return uri, "", fmt.Errorf("%w: %q: %v", ErrBadTarget, target, err)
		}
	case strings.Contains(target, "@"):
		if err := sip.ParseUri("sip:"+target, &uri); err != nil {
			return uri, "", fmt.Errorf("%w: %q: %v", ErrBadTarget, target, err)
		}
	default:
		if a.cfg.Server == "" {
			return uri, "", fmt.Errorf("%w: %q needs a server; without one call sip:user@host:port", ErrBadTarget, target)
		}
		if strings.ContainsAny(target, " <>;:\"") {
			return uri, "", fmt.Errorf("%w: %q", ErrBadTarget, target)
		}
		uri = sip.Uri{Scheme: "sip", User: target, Host: a.cfg.Domain}
	}
	if uri.Host == "" {
		return uri, "", fmt.Errorf("%w: %q has no host", ErrBadTarget, target)
	}
	if a.cfg.Server != "" && strings.EqualFold(uri.Host, a.cfg.Domain) && uri.Port == 0 {
		if a.transport != "udp" {
			if uri.UriParams == nil {
				uri.UriParams = sip.NewParams()
			}
			uri.UriParams.Add("transport", a.transport)
		}
		return uri, a.cfg.Server, nil
	}
	return uri, "", nil
}

// newRequest is an out-of-dialog request to target.
func (a *Agent) newRequest(method sip.RequestMethod, target string) (*sip.Request, error) {
	uri, dest, err := a.resolve(target)
	if err != nil {
		return nil, err
	}
	req := sip.NewRequest(method, uri)
	req.AppendHeader(a.from())
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host, Port: uri.Port}})
	if tr, ok := uri.UriParams.Get("transport"); ok && tr != "" {
		req.SetTransport(strings.ToUpper(tr))
	}
	if dest != "" {
		req.SetDestination(dest)
	}
	return req, nil
}

// do sends an out-of-dialog request, answers one digest challenge, and
// returns the final response.
func (a *Agent) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	res, err := a.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired {
		if a.cfg.Password == "" {
			return res, nil
		}
		res, err = a.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: a.cfg.AuthUser, Password: a.cfg.Password})
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// SendMessage sends an instant message (SIP MESSAGE, text/plain) to target
// and waits for the answer.
func (a *Agent) SendMessage(ctx context.Context, target, text string) error {
	req, err := a.newRequest(sip.MESSAGE, target)
	if err != nil {
		return err
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.SetBody([]byte(text))
	res, err := a.do(ctx, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	return nil
}

// handle installs the request handlers.
func (a *Agent) handle() {
	a.srv.OnInvite(a.onInvite)
	a.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if c := a.call(req); c != nil {
			c.onAck(req, tx)
		}
	})
	a.srv.OnBye(a.inDialog(func(c *Call, req *sip.Request, tx sip.ServerTransaction) { c.onBye(req, tx) }))
	a.srv.OnInfo(a.inDialog(func(c *Call, req *sip.Request, tx sip.ServerTransaction) { c.onInfo(req, tx) }))
	a.srv.OnRefer(a.inDialog(func(c *Call, req *sip.Request, tx sip.ServerTransaction) { c.onRefer(req, tx) }))
	a.srv.OnNotify(a.inDialog(func(c *Call, req *sip.Request, tx sip.ServerTransaction) { c.onNotify(req, tx) }))
	a.srv.OnUpdate(a.inDialog(func(c *Call, req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, 200, "OK") // no SDP in UPDATE is used here: session refresh
	}))
	a.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) { respond(tx, req, 200, "OK") })
	a.srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		if h := a.cfg.Hooks.OnMessage; h != nil {
			from := ""
			if f := req.From(); f != nil {
				from = f.Address.String()
			}
			h(from, string(req.Body()))
		}
		respond(tx, req, 200, "OK")
	})
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

// call finds the call a request belongs to.
func (a *Agent) call(req *sip.Request) *Call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id.Value()]
}

func (a *Agent) inDialog(f func(*Call, *sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		c := a.call(req)
		if c == nil {
			respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		f(c, req, tx)
	}
}

// listenBoth opens UDP and TCP on the same port. With port 0 the system
// picks the UDP port, which may be taken for TCP: then another is tried.
func listenBoth(listen netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(listen))
		if err != nil {
			return nil, nil, fmt.Errorf("ua: listen udp %s: %w", listen, err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(listen.Addr(), port)))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if listen.Port() != 0 || attempt == 20 {
			return nil, nil, fmt.Errorf("ua: listen tcp %s: %w", netip.AddrPortFrom(listen.Addr(), port), err)
		}
	}
}
