package trunk

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/store"
)

// Sender sends SIP requests: Do waits for the final answer (it is
// sipgo.Client.Do), Route points a request for trunk at an address over
// a transport ("UDP", "TCP", "TLS") from our listener.
type Sender interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	DoDigestAuth(ctx context.Context, req *sip.Request, res *sip.Response, user, password string) (*sip.Response, error)
	Route(req *sip.Request, trunk string, dst netip.AddrPort, transport string) error
	// Contact is our Contact toward a trunk over transport.
	Contact(transport string) sip.ContactHeader
}

// Config is what the trunk manager needs.
type Config struct {
	Store     store.Trunks
	Sender    Sender
	Numbering dialplan.Numbering
	Emergency []string // emergency numbers: always routed
	Domain    string   // our SIP domain (From of OPTIONS)
	// Canonical turns a DID's target (user name or extension) into the
	// user name; false when there is no such user.
	Canonical func(login string) (string, bool)
	Resolver  Locator // nil: a sipdns.Resolver of the system's name servers
	Log       *slog.Logger
	Now       func() time.Time
}

// Manager keeps the trunks, routes and DIDs of the store in memory and
// runs each enabled trunk's registration and health checks.
type Manager struct {
	cfg Config
	log *slog.Logger

	snap atomic.Pointer[snapshot]

	mu      sync.Mutex
	lines   map[string]*line // by trunk name, enabled or not
	version int64
	ctx     context.Context // of Run: trunk workers live in it
	wg      sync.WaitGroup
}

// snapshot is one consistent view of routes and DIDs.
type snapshot struct {
	lines  map[string]*line
	routes []route
	dids   map[string]store.DID // by number as stored
	byUser map[string]string    // user name -> first DID mapped to it
}

type route struct {
	store.Route
	pattern *dialplan.Pattern
}

// line is one trunk's running state.
type line struct {
	t        store.Trunk
	networks []netip.Prefix

	// targets are the trunk's servers in the order to try them, addrs
	// their addresses (IP authentication of the carrier's calls); nil
	// until resolved.
	targets    atomic.Pointer[[]sipdns.Target]
	addrs      atomic.Pointer[[]netip.AddrPort]
	tlsRoots   *x509.CertPool // the trunk's TLSCA; nil: the system's
	up         atomic.Bool
	registered atomic.Bool
	active     atomic.Int64 // calls through the trunk now, both ways
	stop       context.CancelFunc
	reg        regState // touched by the trunk's worker only
}

// New makes a manager; Load reads the store, Run keeps it current.
func New(cfg Config) *Manager {
	if cfg.Resolver == nil {
		cfg.Resolver = sipdns.New(sipdns.Config{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Log, lines: map[string]*line{}}
	m.snap.Store(&snapshot{lines: map[string]*line{}, dids: map[string]store.DID{}, byUser: map[string]string{}})
	return m
}

// Run starts the trunks' workers and reloads when the store's version
// moves, until ctx ends.
func (m *Manager) Run(ctx context.Context, poll time.Duration) {
	m.mu.Lock()
	m.ctx = ctx
	for _, l := range m.lines {
		m.startLocked(l)
	}
	m.mu.Unlock()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.wg.Wait()
			return
		case <-t.C:
			if err := m.Load(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("reading trunks failed", "error", err)
			}
		}
	}
}

// Load reads trunks, routes and DIDs when the store's version moved.
func (m *Manager) Load(ctx context.Context) error {
	st := m.cfg.Store
	v, err := st.TrunksVersion(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	same := v == m.version
	m.mu.Unlock()
	if same {
		return nil
	}
	trunks, err := st.ListTrunks(ctx)
	if err != nil {
		return err
	}
	routes, err := st.ListRoutes(ctx)
	if err != nil {
		return err
	}
	dids, err := st.ListDIDs(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version = v
	next := map[string]*line{}
	for _, t := range trunks {
		if old := m.lines[t.Name]; old != nil && reflect.DeepEqual(old.t, t) {
			next[t.Name] = old
			continue
		}
		if old := m.lines[t.Name]; old != nil {
			m.stopLocked(old)
			m.log.Info("trunk changed", "trunk", t.Name)
		} else {
			m.log.Info("trunk loaded", "trunk", t.Name, "address", t.Address, "transport", t.Transport, "auth", t.Auth, "enabled", t.Enabled)
		}
		l := newLine(t, m.log)
		next[t.Name] = l
		m.startLocked(l)
	}
	for name, old := range m.lines {
		if next[name] == nil {
			m.stopLocked(old)
			m.log.Info("trunk removed", "trunk", name)
		}
	}
	m.lines = next
	s := &snapshot{lines: next, dids: map[string]store.DID{}, byUser: map[string]string{}}
	for _, r := range routes {
		p, err := dialplan.Compile(r.Pattern)
		if err != nil {
			m.log.Warn("route ignored: bad pattern", "route", r.Name, "pattern", r.Pattern, "error", err)
			continue
		}
		s.routes = append(s.routes, route{Route: r, pattern: p})
	}
	for _, d := range dids {
		s.dids[d.Number] = d
		// A DID added without the server's numbering (kaopu did add
		// without --config) is matched in E.164 too.
		if n, ok := NormalizeDID(m.cfg.Numbering, d.Number); ok && n != d.Number {
			if _, taken := s.dids[n]; !taken {
				s.dids[n] = d
			}
		}
		if m.cfg.Canonical != nil {
			if u, ok := m.cfg.Canonical(d.Target); ok {
				if _, dup := s.byUser[u]; !dup {
					s.byUser[u] = d.Number
				}
			}
		}
	}
	m.snap.Store(s)
	return nil
}

func newLine(t store.Trunk, log *slog.Logger) *line {
	l := &line{t: t}
	for _, n := range t.Networks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			ip, err2 := netip.ParseAddr(n)
			if err2 != nil {
				log.Warn("trunk network ignored", "trunk", t.Name, "network", n, "error", err)
				continue
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		l.networks = append(l.networks, p.Masked())
	}
	// Up until a health check says otherwise: a trunk without checks is
	// always tried.
	l.up.Store(true)
	if _, err := netip.ParseAddr(hostOf(t.Address)); err == nil {
		// An IP address needs no lookup: known from the start.
		if res, err := resolve(context.Background(), sipdns.New(sipdns.Config{Hosts: "-"}), t); err == nil {
			l.setTargets(res.Targets)
		}
	}
	if t.TLSCA != "" {
		l.tlsRoots = x509.NewCertPool()
		if !l.tlsRoots.AppendCertsFromPEM([]byte(t.TLSCA)) {
			// kaopu trunk add checks the bundle; a broken one verifies nothing.
			log.Warn("trunk TLS CA bundle has no certificate: the carrier cannot be verified", "trunk", t.Name)
		}
	}
	if strings.EqualFold(t.Transport, "tls") && !t.TLSVerify && t.Enabled {
		log.Warn("trunk TLS certificate not verified (tls_verify off): anyone on the path can pose as the carrier", "trunk", t.Name)
	}
	return l
}

// setTargets stores the trunk's servers and their addresses.
func (l *line) setTargets(ts []sipdns.Target) {
	addrs := make([]netip.AddrPort, 0, len(ts))
	seen := map[netip.AddrPort]bool{}
	for _, t := range ts {
		if !seen[t.Addr] {
			seen[t.Addr] = true
			addrs = append(addrs, t.Addr)
		}
	}
	l.targets.Store(&ts)
	l.addrs.Store(&addrs)
}

// TLSPeer is how a verified TLS connection to a carrier is checked.
type TLSPeer struct {
	Trunk      string
	ServerName string         // the trunk's host name (RFC 5922 §4)
	Roots      *x509.CertPool // nil: the system's
}

// TLSPeer says whether TLS to trunk's servers must verify the carrier's
// certificate (an enabled trunk with tls_verify on), and how. Trunks
// whose address is an IP are checked against that IP (a certificate with
// it as an IP SAN).
func (m *Manager) TLSPeer(trunk string) (TLSPeer, bool) {
	if m == nil {
		return TLSPeer{}, false
	}
	l := m.snap.Load().lines[trunk]
	if l == nil || !l.t.Enabled || !l.t.TLSVerify {
		return TLSPeer{}, false
	}
	return TLSPeer{Trunk: trunk, ServerName: hostOf(l.t.Address), Roots: l.tlsRoots}, true
}

// VerifiesTLS reports whether dst is a TLS server of a trunk that
// verifies its carrier: no unverified TLS connection may be opened to it.
func (m *Manager) VerifiesTLS(dst netip.AddrPort) bool {
	if m == nil {
		return false
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	s := m.snap.Load()
	names := make([]string, 0, len(s.lines))
	for n := range s.lines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		l := s.lines[n]
		if !l.t.Enabled || !l.t.TLSVerify {
			continue
		}
		ts := l.targets.Load()
		if ts == nil {
			continue
		}
		for _, t := range *ts {
			if t.Transport == "TLS" && t.Addr == dst {
				return true
			}
		}
	}
	return false
}

func hostOf(addr string) string {
	h, _, err := splitAddress(addr)
	if err != nil {
		return ""
	}
	return h
}

// startLocked runs a trunk's worker once Run has started.
func (m *Manager) startLocked(l *line) {
	if m.ctx == nil || !l.t.Enabled || l.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	l.stop = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.work(ctx, l)
	}()
}

func (m *Manager) stopLocked(l *line) {
	if l.stop != nil {
		l.stop()
	}
}

// Status is one trunk's state as `kaopu trunk show` and /metrics see it.
type Status struct {
	Name                 string
	Enabled, Up          bool
	Register, Registered bool
	Active               int64
	Addrs                []netip.AddrPort
}

// Statuses returns the state of every trunk, by name.
func (m *Manager) Statuses() []Status {
	s := m.snap.Load()
	out := make([]Status, 0, len(s.lines))
	for _, l := range s.lines {
		st := Status{Name: l.t.Name, Enabled: l.t.Enabled, Up: l.t.Enabled && l.up.Load(),
			Register: l.t.Auth == store.TrunkAuthRegister, Registered: l.registered.Load(), Active: l.active.Load()}
		if a := l.addrs.Load(); a != nil {
			st.Addrs = *a
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// IsTrunk reports whether src is one of an enabled trunk's addresses,
// like FromTrunk but without naming it or allocating: cheap enough for
// every request (the rate limits and bans let trunks through).
func (m *Manager) IsTrunk(src netip.Addr) bool {
	if m == nil {
		return false
	}
	src = src.Unmap()
	for _, l := range m.snap.Load().lines {
		if !l.t.Enabled {
			continue
		}
		for _, p := range l.networks {
			if p.Contains(src) {
				return true
			}
		}
		if a := l.addrs.Load(); len(l.networks) == 0 && a != nil {
			for _, ap := range *a {
				if ap.Addr() == src {
					return true
				}
			}
		}
	}
	return false
}

// FromTrunk names the enabled trunk whose addresses include src: its
// networks, else (none configured) the addresses its name resolves to.
func (m *Manager) FromTrunk(src netip.Addr) (string, bool) {
	src = src.Unmap()
	s := m.snap.Load()
	names := make([]string, 0, len(s.lines))
	for n := range s.lines {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic when networks overlap
	for _, n := range names {
		l := s.lines[n]
		if !l.t.Enabled {
			continue
		}
		if len(l.networks) > 0 {
			for _, p := range l.networks {
				if p.Contains(src) {
					return n, true
				}
			}
			continue
		}
		if a := l.addrs.Load(); a != nil {
			for _, ap := range *a {
				if ap.Addr() == src {
					return n, true
				}
			}
		}
	}
	return "", false
}

// Acquire takes one of a trunk's channels: false when the trunk is
// disabled, down or all its channels are busy. An emergency call is
// refused only by a disabled trunk. release gives the channel back.
func (m *Manager) Acquire(trunk string, emergency bool) (release func(), ok bool) {
	l := m.snap.Load().lines[trunk]
	if l == nil || !l.t.Enabled {
		return nil, false
	}
	if !emergency && !l.up.Load() {
		return nil, false
	}
	n := l.active.Add(1)
	if !emergency && l.t.Channels > 0 && n > int64(l.t.Channels) {
		l.active.Add(-1)
		return nil, false
	}
	return sync.OnceFunc(func() { l.active.Add(-1) }), true
}

func (m *Manager) emergency(n string) bool {
	c, ok := dialplan.Clean(n)
	if !ok {
		return false
	}
	for _, e := range m.cfg.Emergency {
		if c == e {
			return true
		}
	}
	return false
}

// Wait returns once Run and every trunk worker have stopped (after the
// context given to Run ended).
func (m *Manager) Wait() {
	m.wg.Wait()
}
