package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/account"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/billing"
	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/conference"
	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/pbx"
	"github.com/kaopu/kaopu/internal/registrar"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/sipx"
	"github.com/kaopu/kaopu/internal/store/sqlite"
	"github.com/kaopu/kaopu/internal/trunk"
	"github.com/kaopu/kaopu/internal/version"
	"github.com/kaopu/kaopu/internal/voicemail"
	"github.com/kaopu/kaopu/internal/web"
)

// Server is one running kaopu node.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	out       io.Writer // where the first-run admin password is printed
	realm     string
	st        *sqlite.Store
	dir       *account.Directory
	bans      *auth.Bans
	biller    *billing.Biller
	billStart *web.Histogram                        // Biller.Start of trunk calls: kaopu_billing_start_seconds
	denied    struct{ funds, noRate atomic.Uint64 } // trunk calls refused by billing
	banDB     *banSync
	rate      *auth.Rate
	digest    *auth.Digest
	loc       *registrar.Location
	reg       *registrar.Registrar
	gate      *sipx.Gate
	ua        *sipgo.UserAgent
	sip       *sipgo.Server
	client    *sipgo.Client
	calls     *call.Manager
	trunks    *trunk.Manager
	trunkTLS  *trunkTLS // verified TLS connections to carriers (trunktls.go)
	// trunkSrc is trunks once it exists, for the source checks that start
	// before it (bans, rate limit, per-source caps).
	trunkSrc atomic.Pointer[trunk.Manager]
	// conf is the conference bridge (conferences.go).
	conf *conference.Service
	pbx  *pbx.Directory // ring groups and IVR menus
	vm   *voicemail.Service
	mwi  *mwi // message-waiting subscriptions (RFC 3842)
	// appLookup is the media applications' number lookup (applications).
	appLookup func(dialed string) (call.App, bool)
	cdrs      *cdr.Recorder
	certs     *certReloader // nil without a TLS listener
	// signalling is security.signalling, overridden per user by the
	// user's policy (store.Policy.Signalling).
	signalling auth.SignallingPolicy
	bounds     sourceBounds

	ready   atomic.Bool
	closers []io.Closer
	bg      sync.WaitGroup
	stopBG  context.CancelFunc
	locStop context.CancelFunc
	// trunkStop ends the trunks' workers before the SIP stack closes, so
	// that they can unregister.
	trunkStop context.CancelFunc

	// Addresses actually bound (useful when ports were :0).
	UDPAddr, TCPAddr, TLSAddr, HTTPAddr net.Addr
}

var sipgoOnce sync.Once

// configureSipgo sets sipgo's package globals, once per process.
func configureSipgo(log *slog.Logger) {
	sipgoOnce.Do(func() {
		// sipgo logs every parse failure with the raw packet at Error level;
		// the edge answers those itself, so keep sipgo's own noise at Warn+
		// and tag it.
		// KAOPU_SIPGO_LOG=debug lowers the floor when debugging sipgo itself.
		floor := slog.LevelWarn
		if os.Getenv("KAOPU_SIPGO_LOG") == "debug" {
			floor = slog.LevelDebug
		}
		h := log.Handler().WithAttrs([]slog.Attr{slog.String("component", "sipgo")})
		sip.SetDefaultLogger(slog.New(levelFloor{h, floor}))

		// A finished transaction waits to absorb retransmissions: RFC 3261
		// has 64*T1 (32 s) for Timers D and J. sipgo keeps the whole
		// request and response that long, so at a few hundred calls/s
		// hundreds of megabytes sit in transactions that are over. Like
		// Kamailio's tm wait timer, wait 5 s: a peer retransmits only while
		// our answer has not reached it, so only after 5 s of lost answers
		// does a straggler arrive, to get 481 or be dropped as stray.
		// Timer L keeps 64*T1: our 2xx is retransmitted through the
		// INVITE server transaction until the ACK comes (RFC 6026); the
		// call manager ends the transaction once it has. Timer M, for
		// re-ACKing the callee's retransmitted 2xx, waits 5 s: our ACK has
		// been sent 4 times over by then if the 2xx kept coming.
		sip.Timer_D = linger
		sip.Timer_J = linger
		sip.Timer_M = linger
	})
}

// linger is how long sipgo keeps a finished transaction; see configureSipgo.
const linger = 5 * time.Second

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

// Handle redacts SDES keys (a=crypto inline:KEY) from what sipgo logs:
// it logs unparsable messages whole, SDP included.
func (l levelFloor) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, redactKeys(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return l.Handler.Handle(ctx, out)
}

var sdesKey = regexp.MustCompile(`inline:[A-Za-z0-9+/=]+`)

func redactKeys(s string) string {
	if !strings.Contains(s, "inline:") {
		return s
	}
	return sdesKey.ReplaceAllString(s, "inline:<redacted>")
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactKeys(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = redactAttr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, redactKeys(err.Error()))
		}
		return slog.String(a.Key, redactKeys(fmt.Sprint(v.Any())))
	}
	return a
}

// WithAttrs keeps the floor on derived loggers (sipgo derives many).
func (l levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return levelFloor{l.Handler.WithAttrs(red), l.min}
}

// WithGroup keeps the floor on derived loggers.
func (l levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{l.Handler.WithGroup(name), l.min}
}

// New builds a server from a validated config. out receives the one-time
// admin password on first run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) (*Server, error) {
	s := &Server{cfg: cfg, log: log, out: out}
	configureSipgo(log)
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.st = st
	s.realm = Realm(ctx, cfg, st)
	if err := st.PutSetting(ctx, settingDomain, s.realm); err != nil {
		st.Close()
		return nil, err
	}
	pw, err := ensureAdmin(ctx, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	if pw != "" {
		fmt.Fprintf(out, "admin password: %s\n(shown once; it is stored only as a hash)\n", pw)
	}

	s.dir, err = account.NewDirectory(ctx, st, s.realm, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	now := time.Now
	s.banDB = newBanSync(st, log)
	s.bans = auth.NewBans(auth.BanConfig{
		Failures: cfg.Security.BanFailures, Window: cfg.Security.BanWindow.D(),
		BanTime: cfg.Security.BanTime.D(), Trusted: cfg.Security.TrustedPrefixes(), TrustedFunc: s.fromTrunk,
	}, auth.BanEvents{OnBan: func(b auth.BanInfo) {
		log.Warn("source banned", "ip", b.IP.String(), "reason", b.Reason, "failures", b.Failures,
			"offences", b.Offences, "until", b.Until.Format(time.RFC3339))
		s.banDB.onBan(b)
	}}, now)
	s.banDB.bans = s.bans
	if n, err := s.banDB.load(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("loading bans: %w", err)
	} else if n > 0 {
		log.Info("bans restored", "banned", n)
	}
	s.rate = auth.NewRate(auth.RateConfig{
		PerSecond: cfg.Security.RateLimit, Burst: float64(cfg.Security.RateBurst),
		BanAfter: cfg.Security.FloodBanAfter, Trusted: cfg.Security.TrustedPrefixes(), TrustedFunc: s.fromTrunk,
	}, func(ip netip.Addr) bool {
		log.Warn("flooding source banned", "ip", ip.String(), "rate_limit", cfg.Security.RateLimit)
		return s.bans.Ban(ip, auth.ReasonFlood)
	}, now)
	algs := make([]auth.Algorithm, len(cfg.Auth.Algorithms))
	for i, a := range cfg.Auth.Algorithms {
		algs[i] = auth.Algorithm(a)
	}
	s.digest = auth.NewDigest(s.realm, algs, auth.NewNonces(cfg.Auth.NonceTTL.D(), now), s.dir, s.bans)
	s.loc = registrar.NewLocation(st, log, now)
	n, err := s.loc.Load(ctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading registrations: %w", err)
	}
	log.Info("registrations restored", "bindings", n)
	// Calls that were up when the last run died are closed and flagged.
	s.cdrs = cdr.NewRecorder(cdr.Config{Store: st, Log: log})
	if n, err := s.cdrs.Recover(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("closing call records left active: %w", err)
	} else if n > 0 {
		log.Warn("closed call records left active by a crash", "records", n, "flag", cdr.FlagCrashRecovered)
	}
	// Loading users and bindings leaves garbage several times the size of
	// what is kept; hand it back now instead of carrying it as RSS.
	debug.FreeOSMemory()
	s.signalling = auth.SignallingPolicy{Default: cfg.Security.Signalling, PerUser: func(user string) (string, bool) {
		// `kaopu user set NAME --signalling ...`; "" follows the server.
		p := s.dir.Policy(user).Signalling
		return p, p != ""
	}}
	s.reg = registrar.New(registrar.Config{
		MinExpires: cfg.Registrar.MinExpires, MaxExpires: cfg.Registrar.MaxExpires,
		DefaultExpires: cfg.Registrar.DefaultExpires, MaxContacts: cfg.Registrar.MaxContacts,
		SignallingAllowed: s.signallingAllowed,
	}, s.digest, s.loc, canonical{s.dir}, log, now)

	s.gate = &sipx.Gate{
		Limits: sipx.Limits{MaxMessageSize: cfg.SIP.MaxMessageSize, MaxHeaders: cfg.SIP.MaxHeaders, MaxVia: cfg.SIP.MaxVia},
		Banned: s.bans.Banned, RejectBanned: cfg.Security.BanAction == "reject",
		OnScanner: func(src netip.Addr, _ string) { s.bans.Ban(src, auth.ReasonScanner) },
		Allow:     s.rate.Allow,
		Fast:      map[sip.RequestMethod]sipx.Handler{sip.REGISTER: s.reg.Handle, sip.OPTIONS: s.options},
		// Unauthenticated INVITEs get their 407 without a transaction
		// (call.Manager.Challenge); s.calls is made in Start, before the
		// UDP workers run.
		Challenge: func(req *sip.Request) *sip.Response {
			if s.calls == nil {
				return nil
			}
			return s.calls.Challenge(req)
		},
		Log: log,
	}
	s.bounds = newSourceBounds(cfg, s.bans.Banned, s.fromTrunk)
	return s, nil
}

// signallingAllowed is the one place that decides whether an
// authenticated user may send requests over a transport ("UDP", "TCP",
// "TLS", "WS", "WSS"): the user's own setting (kaopu user set --signalling),
// else security.signalling. The registrar and the call manager
// ask it after a successful authentication; no answers 403 "TLS required".
func (s *Server) signallingAllowed(user, transport string) bool {
	return s.signalling.Allowed(user, transport)
}

// fromTrunk reports whether ip is a trunk's address: carriers are on the
// allow-list like security.trusted (never banned, never rate-limited).
func (s *Server) fromTrunk(ip netip.Addr) bool { return s.trunkSrc.Load().IsTrunk(ip) }

// canonical adapts the directory to registrar.Directory.
type canonical struct{ d *account.Directory }

func (c canonical) CanonicalUser(login string) (string, bool) {
	e, ok := c.d.LookupOrRefresh(context.Background(), login)
	return e.User, ok
}

var allowed = "INVITE, ACK, BYE, CANCEL, PRACK, UPDATE, INFO, NOTIFY, SUBSCRIBE, REGISTER, OPTIONS"

func (s *Server) options(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Supported", "path, 100rel, timer"))
	return res
}

// wrap turns a stateless handler into a sipgo transaction handler with the
// same validation the UDP edge applies.
func (s *Server) wrap(h sipx.Handler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if s.refused(req) {
			return
		}
		if pr := sipx.Validate(req, s.gate.Limits); pr != nil {
			tx.Respond(sipx.Reply(req, pr.Code, pr.Reason))
			return
		}
		sipx.SetToTag(req)
		res := h(req)
		if res == nil {
			return
		}
		sipx.FixVia(res, req.Source())
		if err := tx.Respond(res); err != nil {
			s.log.Debug("respond failed", "error", err, "method", req.Method)
		}
	}
}

// refused drops a request from a scanner, or over its source's rate limit
// on TCP/TLS (the UDP edge has checked both already).
func (s *Server) refused(req *sip.Request) bool {
	if strings.EqualFold(req.Transport(), "UDP") {
		return false // the UDP edge has checked both
	}
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return false
	}
	ip := src.Addr().Unmap()
	return s.gate.Limited(ip) || s.gate.Scanned(req, ip)
}

// validated runs a transaction handler only for requests that pass the
// edge's validation (TCP/TLS requests reach sipgo without it).
func (s *Server) validated(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if s.refused(req) {
			return // TCP/TLS: a ban closes the connection at its next read
		}
		if pr := sipx.Validate(req, s.gate.Limits); pr != nil {
			sipx.Respond(tx, req, sipx.Reply(req, pr.Code, pr.Reason))
			return
		}
		h(req, tx)
	}
}

// contact is our Contact for dialogs: the public IP, else the SIP
// listener's address when it is a specific one.
func (s *Server) contact() sip.ContactHeader {
	host := s.cfg.PublicIP
	ua, _ := s.UDPAddr.(*net.UDPAddr)
	if host == "" && ua != nil && !ua.IP.IsUnspecified() {
		host = ua.IP.String()
	}
	if host == "" {
		host = outboundIP()
	}
	port := 0
	if ua != nil {
		port = ua.Port
	}
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "kaopu", Host: host, Port: port}}
}

// isSelf reports whether host:port is one of this server's SIP addresses;
// port 0 matches any of our ports.
func (s *Server) isSelf(host string, port int) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, a := range []net.Addr{s.UDPAddr, s.TCPAddr, s.TLSAddr} {
		if a == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil || port != 0 && int(ap.Port()) != port {
			continue
		}
		if ap.Addr().IsUnspecified() {
			// Listening everywhere: any local address is ours.
			if ip.IsLoopback() || ip.String() == s.cfg.PublicIP || localAddr(ip) {
				return true
			}
			continue
		}
		if ap.Addr().Unmap() == ip.Unmap() {
			return true
		}
	}
	return ip.String() == s.cfg.PublicIP
}

// localAddr reports whether ip is assigned to an interface of this host.
func localAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

// mediaConfig makes the RTP port pool on the SIP listener's interface
// (media leaves from the address the phones talk to) over rtp.ports; SDP
// carries public_ip when it is set.
func (s *Server) mediaConfig(host string) (call.MediaConfig, error) {
	low, high, err := s.cfg.RTP.Range()
	if err != nil {
		return call.MediaConfig{}, fmt.Errorf("rtp.ports: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return call.MediaConfig{}, fmt.Errorf("media address %q: %w", host, err)
	}
	pool, err := media.NewPortPool(media.PortPoolConfig{IP: ip, Low: low, High: high})
	if err != nil {
		return call.MediaConfig{}, fmt.Errorf("rtp.ports: %w", err)
	}
	sdpIP := ip
	if s.cfg.PublicIP != "" {
		sdpIP = netip.MustParseAddr(s.cfg.PublicIP)
	}
	return call.MediaConfig{Pool: pool, IP: sdpIP}, nil
}

// contacts derives our Contact for each transport from the UDP one.
func (s *Server) contacts(udp sip.ContactHeader) map[string]sip.ContactHeader {
	out := map[string]sip.ContactHeader{"UDP": udp}
	for tp, a := range map[string]net.Addr{"TCP": s.TCPAddr, "TLS": s.TLSAddr} {
		ta, ok := a.(*net.TCPAddr)
		if !ok {
			continue
		}
		c := udp
		c.Address.Port = ta.Port
		c.Address.UriParams = sip.HeaderParams{{K: "transport", V: strings.ToLower(tp)}}
		out[tp] = c
		if tp == "TLS" {
			// For legs whose Request-URI is sips: (RFC 3261 §8.1.1.8).
			c.Address.Scheme, c.Address.UriParams = "sips", nil
			out["SIPS"] = c
		}
	}
	return out
}

// outboundIP is the local address of the default route, learned without
// sending anything (a UDP "connect" only selects a route).
func outboundIP() string {
	c, err := net.Dial("udp", "192.0.2.1:9") // TEST-NET-1: never contacted
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// Start binds every listener and starts serving. It returns once all are up.
func (s *Server) Start(ctx context.Context) error {
	cfg := s.cfg
	var tlsConf *tls.Config
	if cfg.SIP.TLSListen != "" && cfg.SIP.TLSListen != "off" {
		certFile, keyFile := cfg.SIP.TLSCert, cfg.SIP.TLSKey
		if certFile == "" {
			var created bool
			var err error
			certFile, keyFile, created, err = ensureCert(cfg.Data, s.realm)
			if err != nil {
				return fmt.Errorf("sip.tls_cert: generating a certificate: %w", err)
			}
			if created {
				s.log.Info("generated a self-signed TLS certificate", "file", certFile, "domain", s.realm)
			}
		}
		certs, err := newCertReloader(certFile, keyFile, s.log, time.Now)
		if err != nil {
			return err
		}
		s.certs = certs
		tlsConf = tlsConfig(certs)
	}

	s.trunkTLS = &trunkTLS{s: s}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("kaopu/"+version.Version),
		sipgo.WithUserAgentHostname(s.realm),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(s.gate.StreamFilter),
			streamSource(cfg.SIP.Listen, s.trunkTLS.refuse)),
		sipgo.WithUserAgenTLSConfig(clientTLSConfig()),
	)
	if err != nil {
		return err
	}
	s.ua = ua
	// Where a TCP/TLS message ends is known only here; the connection
	// limits need it (sip.message_timeout).
	ua.TransportLayer().OnMessage(s.bounds.streams.OnMessage)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(sip.DefaultLogger()))
	if err != nil {
		return err
	}
	s.sip = srv
	srv.OnRegister(s.bounded(s.wrap(s.reg.Handle)))
	options := s.wrap(s.options)
	srv.OnOptions(s.bounded(func(req *sip.Request, tx sip.ServerTransaction) {
		// An OPTIONS inside a call goes to the other party; any other is ours.
		if to := req.To(); to != nil && to.Params.Has("tag") && s.calls != nil && sipx.Validate(req, s.gate.Limits) == nil &&
			s.calls.Relay(req, tx) {
			return
		}
		options(req, tx)
	}))
	srv.OnNoRoute(s.bounded(func(req *sip.Request, tx sip.ServerTransaction) {
		if pr := sipx.Validate(req, s.gate.Limits); pr != nil {
			tx.Respond(sipx.Reply(req, pr.Code, pr.Reason))
			return
		}
		res := sipx.Reply(req, 501, "Not Implemented")
		res.AppendHeader(sip.NewHeader("Allow", allowed))
		tx.Respond(res)
	}))

	// Bind everything first so a busy port fails start-up cleanly.
	udpAddr, err := net.ResolveUDPAddr("udp", cfg.SIP.Listen)
	if err != nil {
		return fmt.Errorf("sip.listen: %w", err)
	}
	uc, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return fmt.Errorf("sip.listen (udp): %w", err)
	}
	uc.SetReadBuffer(4 << 20)
	uc.SetWriteBuffer(4 << 20)
	s.UDPAddr = uc.LocalAddr()
	rawTL, err := net.Listen("tcp", cfg.SIP.Listen)
	if err != nil {
		uc.Close()
		return fmt.Errorf("sip.listen (tcp): %w", err)
	}
	tl := s.bounds.streams.Listen(rawTL)
	s.TCPAddr = tl.Addr()
	var tlsl net.Listener
	if tlsConf != nil {
		var rawTLS net.Listener
		rawTLS, err = net.Listen("tcp", cfg.SIP.TLSListen)
		if err != nil {
			uc.Close()
			tl.Close()
			return fmt.Errorf("sip.tls_listen: %w", err)
		}
		// The limits see the bytes under TLS: a stalled handshake is
		// half-open too.
		tlsl = tls.NewListener(s.bounds.streams.Listen(rawTLS), tlsConf)
		s.TLSAddr = tlsl.Addr()
	}
	var hl net.Listener
	if cfg.HTTP.Listen != "" && cfg.HTTP.Listen != "off" {
		hl, err = net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			uc.Close()
			tl.Close()
			if tlsl != nil {
				tlsl.Close()
			}
			return fmt.Errorf("http.listen: %w", err)
		}
		s.HTTPAddr = hl.Addr()
	}

	// Requests we send carry our listener's address in Via and Contact, so
	// the client and the call manager are made once it is known.
	contact := s.contact()
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(contact.Address.Host)); err != nil {
		return err
	}
	mc, err := s.mediaConfig(contact.Address.Host)
	if err != nil {
		return err
	}
	s.biller = billing.New(billing.Config{Store: s.st})
	s.billStart = newBillingStartHistogram()
	go s.preloadDecks(ctx)
	s.trunks = trunk.New(trunk.Config{Store: s.st, Sender: trunkSender{s, s.contacts(contact)}, Numbering: Numbering(cfg),
		Emergency: cfg.Calls.EmergencyNumbers, Domain: s.realm, Log: s.log, Resolver: sipdns.New(sipdns.Config{}),
		Canonical: func(login string) (string, bool) { return canonical{s.dir}.CanonicalUser(login) }})
	s.trunkSrc.Store(s.trunks)
	if err := s.trunks.Load(ctx); err != nil {
		return fmt.Errorf("loading trunks: %w", err)
	}
	s.pbx = pbx.NewDirectory(s.st, s.log)
	if err := s.pbx.Load(ctx); err != nil {
		return fmt.Errorf("loading ring groups and IVR menus: %w", err)
	}
	apps, err := s.applications(ctx, cfg)
	if err != nil {
		return err
	}
	s.calls = call.New(call.Config{Domain: s.realm, Media: mc, NoAnswerTimeout: cfg.Calls.NoAnswerTimeout.D(), Apps: apps,
		RTPTimeout: cfg.Calls.RTPTimeout.D(), MinSE: cfg.Calls.MinSessionExpires.D(), IsSelf: s.isSelf,
		Limits: call.Limits{Concurrent: cfg.Calls.MaxConcurrent, PerMinute: cfg.Calls.MaxPerMinute},
		Classes: call.Classes{International: cfg.Calls.InternationalPrefixes, Premium: cfg.Calls.PremiumPrefixes,
			Emergency: cfg.Calls.EmergencyNumbers},
		Policy:            s.dir.Policy,
		SignallingAllowed: s.signallingAllowed,
		Federation:        call.Federation{Inbound: cfg.Calls.FederationInbound(), Outbound: cfg.Calls.FederationOutbound()},
		// TLS toward other domains is not done yet (federation.go).
		Resolver:        sipdns.New(sipdns.Config{Transports: []string{"UDP", "TCP"}}),
		MediaEncryption: cfg.Security.MediaEncryption,
		Gateway:         s.trunks,
		Groups:          s.pbx.Group,
		Voicemail:       s.mailboxApp,
		VoicemailAfter:  cfg.Calls.VoicemailAfter.D(),
		OnTrunkCall:     s.chargeTrunkCall}, s.log, s.digest, canonical{s.dir}, s.loc, s.route,
		s.client, s.contacts(contact), s.cdrs, call.Hooks{})
	srv.OnInvite(s.bounded(s.validated(s.calls.OnInvite)))
	srv.OnAck(s.calls.OnAck)
	srv.OnBye(s.bounded(s.validated(s.calls.OnBye)))
	srv.OnCancel(s.bounded(s.validated(s.calls.OnCancel)))
	srv.OnPrack(s.bounded(s.validated(s.calls.OnPrack)))
	srv.OnRequest(sip.SUBSCRIBE, s.bounded(s.mwi.handle))
	for _, m := range []sip.RequestMethod{sip.UPDATE, sip.INFO, sip.NOTIFY} {
		srv.OnRequest(m, s.bounded(s.validated(s.calls.OnInDialog)))
	}

	bgctx, cancel := context.WithCancel(context.Background())
	s.stopBG = cancel
	locctx, locCancel := context.WithCancel(context.Background())
	s.locStop = locCancel
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.loc.Run(locctx) }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.dir.Run(bgctx, time.Second) }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.banDB.run(bgctx, time.Second) }()
	trunkctx, trunkCancel := context.WithCancel(context.Background())
	s.trunkStop = trunkCancel
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.trunks.Run(trunkctx, time.Second) }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.conf.Run(bgctx, time.Second) }()
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.pbx.Run(bgctx, time.Second) }()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-bgctx.Done():
				return
			case <-t.C:
				s.bans.Sweep()
				s.rate.Sweep()
				s.banDB.purge(bgctx)
			}
		}
	}()

	if d := cfg.Registrar.NATKeepalive.D(); d > 0 {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.keepalive(bgctx, d) }()
	}

	workers := udpWorkers()
	ul := s.gate.ServeUDP(uc, workers, udpLanes())
	s.closers = append(s.closers, ul, tl)
	for _, lane := range ul.Lanes() {
		go s.serve("udp", func() error { return srv.ServeUDP(lane) })
	}
	go s.serve("tcp", func() error { return srv.ServeTCP(tl) })
	if tlsl != nil {
		s.closers = append(s.closers, tlsl)
		go s.serve("tls", func() error { return srv.ServeTLS(tlsl) })
	}
	if hl != nil {
		hs := &http.Server{Handler: web.Handler(s.ready.Load, s.metrics), ReadHeaderTimeout: 10 * time.Second}
		s.closers = append(s.closers, hs)
		go s.serve("http", func() error { return hs.Serve(hl) })
	}
	// sipgo registers the UDP socket in its connection pool when its serve
	// goroutine starts; requests to phones must leave from that socket, so
	// do not report ready before it is there.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := ua.TransportLayer().GetConnection("udp", s.UDPAddr.String()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("sip.listen: UDP transport did not start")
		}
		time.Sleep(time.Millisecond)
	}
	s.ready.Store(true)
	attrs := []any{"version", version.Version, "domain", s.realm, "sip_udp", s.UDPAddr.String(), "sip_tcp", s.TCPAddr.String()}
	if s.TLSAddr != nil {
		attrs = append(attrs, "sip_tls", s.TLSAddr.String())
	}
	if s.HTTPAddr != nil {
		attrs = append(attrs, "http", s.HTTPAddr.String())
	}
	s.log.Info("kaopu started", attrs...)
	return nil
}

func (s *Server) serve(name string, f func() error) {
	if err := f(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) &&
		!strings.Contains(err.Error(), "use of closed") {
		s.log.Error("listener stopped", "listener", name, "error", err)
	}
}

// Close stops listeners, writes pending registrations and closes the store.
func (s *Server) Close() error {
	s.ready.Store(false)
	for _, c := range s.closers {
		c.Close()
	}
	if s.calls != nil {
		s.calls.Close()
	}
	if s.trunkStop != nil {
		// Waits for the trunks' workers, which unregister from carriers.
		s.trunkStop()
		s.trunks.Wait()
	}
	if s.trunkTLS != nil {
		s.trunkTLS.close()
	}
	if s.ua != nil {
		s.ua.Close()
	}
	if s.stopBG != nil {
		s.stopBG()
		s.locStop()
		s.bg.Wait()
	}
	if s.cdrs != nil {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.cdrs.Flush(fctx); err != nil {
			s.log.Error("writing call records", "error", err)
		}
		cancel()
	}
	s.log.Info("kaopu stopped", "bindings_saved", s.loc.Count())
	return s.st.Close()
}

func (s *Server) activeCalls() int {
	if s.calls == nil {
		return 0
	}
	return s.calls.Active()
}

// ReloadTLS reads the TLS certificate and key files again now (SIGHUP);
// they are also read again on their own when they change. On an error the
// previous certificate stays in use.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.Reload()
}

// Realm returns the SIP domain in use.
func (s *Server) Realm() string { return s.realm }

func (s *Server) metrics() []web.Metric {
	g, d := &s.gate.Stats, &s.digest.Stats
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var deniedConc, deniedRate, deniedClass uint64
	if s.calls != nil {
		deniedConc, deniedRate, deniedClass = s.calls.Denied()
	}
	return append(append(append(append(s.trunkMetrics(), s.billingMetrics()...), s.conferenceMetrics()...), s.mwiMetrics()...),
		web.Gauge("kaopu_bindings", "Registered contacts held.", float64(s.loc.Count())),
		web.Gauge("kaopu_users", "Login names (users and extensions) known.", float64(s.dir.Len())),
		web.Gauge("kaopu_banned_sources", "Source IPs banned now.", float64(s.bans.Count())),
		web.Counter("kaopu_sip_udp_received_total", "UDP datagrams received.", float64(g.Received.Load())),
		web.Counter("kaopu_sip_malformed_total", "Requests refused as malformed.", float64(g.Malformed.Load())),
		web.Counter("kaopu_sip_dropped_total", "Datagrams dropped unanswered.", float64(g.Dropped.Load())),
		web.Counter("kaopu_sip_banned_total", "Datagrams or connections from banned sources.", float64(g.Banned.Load())),
		web.Counter("kaopu_sip_scanners_total", "Requests from SIP scanning tools (their sources are banned).", float64(g.Scanners.Load())),
		web.Counter("kaopu_sip_rate_limited_total", "Requests dropped over their source's rate limit (security.rate_limit).", float64(g.RateLimited.Load())),
		web.Counter("kaopu_sip_oversize_total", "Messages over sip.max_message_size.", float64(g.Oversize.Load())),
		web.Counter("kaopu_sip_source_limited_total", "Requests refused over sip.max_pending_per_source or sip.max_calls_setup_per_source.", float64(g.SourceLimited.Load())),
		web.Gauge("kaopu_sip_pending_transactions", "Server transactions held (sip.max_pending_per_source caps each source).", float64(s.bounds.pending.Total())),
		web.Gauge("kaopu_sip_connections", "TCP and TLS connections open.", float64(s.bounds.streams.Open())),
		web.Counter("kaopu_sip_connections_refused_total", "Connections closed at accept: over sip.max_connections_per_source, or banned.", float64(s.bounds.streams.Stats.Refused.Load())),
		web.Counter("kaopu_sip_connections_timed_out_total", "Connections closed by sip.message_timeout or sip.idle_timeout.", float64(s.bounds.streams.Stats.TimedOut.Load())),
		web.Counter("kaopu_auth_challenges_total", "Digest challenges sent.", float64(d.Challenges.Load())),
		web.Counter("kaopu_auth_success_total", "Successful digest authentications.", float64(d.Successes.Load())),
		web.Counter("kaopu_auth_failures_total", "Failed digest authentications.", float64(d.Failures.Load())),
		web.Gauge("kaopu_calls_active", "Calls in progress.", float64(s.activeCalls())),
		web.Counter("kaopu_calls_denied_concurrent_total", "Calls refused over calls.max_concurrent.", float64(deniedConc)),
		web.Counter("kaopu_calls_denied_rate_total", "Calls refused over calls.max_per_minute.", float64(deniedRate)),
		web.Counter("kaopu_calls_denied_funds_total", "Calls through trunks refused: the caller's account cannot pay for the first increment.", float64(s.denied.funds.Load())),
		web.Counter("kaopu_calls_denied_norate_total", "Calls through trunks refused: the destination is not in the account's rate deck.", float64(s.denied.noRate.Load())),
		web.Counter("kaopu_calls_denied_class_total", "Calls refused to a destination class the caller is not allowed (international, premium).", float64(deniedClass)),
		web.Gauge("go_goroutines", "Goroutines.", float64(runtime.NumGoroutine())),
		web.Gauge("go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.", float64(ms.HeapInuse)),
		web.Gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", float64(ms.HeapAlloc)),
		web.Gauge("go_memstats_sys_bytes", "Bytes obtained from the OS.", float64(ms.Sys)),
		web.Counter("go_gc_cycles_total", "Completed GC cycles.", float64(ms.NumGC)),
	)
}

// udpLanes is how many read loops sipgo runs on the UDP socket (see
// sipx.UDPListener): one per CPU, at least 2. KAOPU_UDP_LANES overrides it
// for benchmarking.
func udpLanes() int {
	if n, err := strconv.Atoi(os.Getenv("KAOPU_UDP_LANES")); err == nil && n > 0 && n <= 64 {
		return n
	}
	return max(2, runtime.GOMAXPROCS(0))
}

// udpWorkers is how many goroutines serve each UDP socket: enough that
// a burst is read while others are parsing or writing (reads on one socket
// are serialized by the runtime, processing is not). KAOPU_UDP_WORKERS
// overrides it for benchmarking.
func udpWorkers() int {
	if n, err := strconv.Atoi(os.Getenv("KAOPU_UDP_WORKERS")); err == nil && n > 0 && n <= 256 {
		return n
	}
	return 4 * runtime.GOMAXPROCS(0)
}
