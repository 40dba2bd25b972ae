package trunk

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/store"
)

// Timing of registration and health checks.
const (
	requestTimeout = 5 * time.Second  // one REGISTER or OPTIONS
	minBackoff     = 2 * time.Second  // first retry after a failure
	maxBackoff     = 5 * time.Minute  // longest wait between retries
	resolveEvery   = 10 * time.Minute // names are looked up again at least this often
	minRefresh     = 5 * time.Second  // and at most this often, whatever their TTL
)

// work runs one enabled trunk until ctx ends: it resolves the address,
// registers (auth "register") and checks health (OPTIONS) on their own
// schedules.
func (m *Manager) work(ctx context.Context, l *line) {
	log := m.log.With("trunk", l.t.Name)
	var wg sync.WaitGroup
	wg.Go(func() { m.resolveLoop(ctx, l, log) })
	if l.t.Auth == store.TrunkAuthRegister {
		wg.Go(func() { m.registerLoop(ctx, l, log) })
	}
	if l.t.Qualify > 0 {
		wg.Go(func() { m.qualifyLoop(ctx, l, log) })
	}
	wg.Wait()
	if l.registered.Load() {
		// Unregister (RFC 3261 §10.2.2) so the carrier stops sending
		// calls to a trunk that was removed or disabled.
		// Bounded: shutting down must not wait on a carrier that is gone.
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m.register(uctx, l, 0)
		cancel()
		l.registered.Store(false)
	}
}

// resolveLoop keeps the trunk's servers current: looked up at start,
// after a failure with backoff, and again when the records' TTL runs out
// (between minRefresh and resolveEvery), so the addresses its calls may
// come from follow DNS.
func (m *Manager) resolveLoop(ctx context.Context, l *line, log *slog.Logger) {
	backoff := minBackoff
	for {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		res, err := resolve(rctx, m.cfg.Resolver, l.t)
		cancel()
		wait := resolveEvery
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("trunk address not resolved", "address", l.t.Address, "error", err, "retry_in", backoff.String())
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		} else {
			if old := l.targets.Load(); old == nil || fmt.Sprint(*old) != fmt.Sprint(res.Targets) {
				log.Info("trunk address resolved", "address", l.t.Address, "targets", fmt.Sprint(res.Targets))
			}
			l.setTargets(res.Targets)
			backoff = minBackoff
			if res.TTL > 0 {
				wait = min(max(res.TTL, minRefresh), resolveEvery)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// servers are the trunk's servers in order, waiting for the lookup when
// needed.
func (m *Manager) servers(ctx context.Context, l *line) ([]sipdns.Target, bool) {
	for {
		if t := l.targets.Load(); t != nil && len(*t) > 0 {
			return *t, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nextServer reports whether a request to one of a trunk's servers
// should be sent to the next one instead (RFC 3263 §4.3): it failed in
// transport or timed out (no answer: res is nil), or the server
// answered 503.
func nextServer(res *sip.Response, err error) bool {
	if res != nil {
		return res.StatusCode == 503
	}
	return err != nil
}

// requestURI is the trunk's Request-URI (user, if any, at its address)
// over target's transport.
func requestURI(t store.Trunk, user string, target sipdns.Target) sip.Uri {
	host, port, _ := splitAddress(t.Address)
	u := sip.Uri{Scheme: "sip", User: user, Host: host, Port: int(port)}
	if target.Transport != "UDP" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: strings.ToLower(target.Transport)}}
	}
	return u
}

// registerLoop registers with the carrier and refreshes the registration
// before it expires (at 80 % of the interval the carrier granted);
// failures are retried with exponential backoff and jitter.
func (m *Manager) registerLoop(ctx context.Context, l *line, log *slog.Logger) {
	backoff := minBackoff
	for {
		granted, err := m.register(ctx, l, l.t.Expires)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			if l.registered.Swap(false) {
				log.Warn("trunk registration lost", "error", err)
			} else {
				log.Warn("trunk registration failed", "error", err, "retry_in", backoff.String())
			}
			wait = backoff + time.Duration(rand.Int64N(int64(backoff/4)+1))
			backoff = min(2*backoff, maxBackoff)
		} else {
			if !l.registered.Swap(true) {
				log.Info("trunk registered", "expires", granted.String())
			}
			backoff = minBackoff
			wait = max(granted*4/5, time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// regState is a trunk's registration dialog identity: one Call-ID and
// increasing CSeq for all its REGISTERs (RFC 3261 §10.2.4).
type regState struct {
	callID string
	cseq   uint32
}

// register sends one REGISTER asking for expires (0 unregisters),
// answers a 401/407 challenge with the trunk's credentials, and returns
// the interval the carrier granted.
func (m *Manager) register(ctx context.Context, l *line, expires time.Duration) (time.Duration, error) {
	servers, ok := m.servers(ctx, l)
	if !ok {
		return 0, ctx.Err()
	}
	var err error
	for i, target := range servers {
		var granted time.Duration
		var res *sip.Response
		granted, res, err = m.registerAt(ctx, l, target, expires)
		if !nextServer(res, err) || ctx.Err() != nil {
			return granted, err
		}
		if i+1 < len(servers) {
			m.log.Info("trunk server failed; trying the next", "trunk", l.t.Name, "server", target.String(), "error", err)
		}
	}
	return 0, err
}

// registerAt sends one REGISTER to one server; res is its final answer
// (nil on a transport error or timeout).
func (m *Manager) registerAt(ctx context.Context, l *line, dst sipdns.Target, expires time.Duration) (time.Duration, *sip.Response, error) {
	if l.reg.callID == "" {
		l.reg.callID = sip.GenerateTagN(24) + "@kaopu"
		l.reg.cseq = 1
	}
	host, _, _ := splitAddress(l.t.Address)
	aor := sip.Uri{Scheme: "sip", User: l.t.Username, Host: host}
	req := sip.NewRequest(sip.REGISTER, requestURI(l.t, "", dst))
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(16)}}})
	req.AppendHeader(&sip.ToHeader{Address: aor})
	cid := sip.CallIDHeader(l.reg.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: l.reg.cseq, MethodName: sip.REGISTER})
	contact := m.cfg.Sender.Contact(dst.Transport)
	contact.Address.User = l.t.Username
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	if err := m.cfg.Sender.Route(req, l.t.Name, dst.Addr, dst.Transport); err != nil {
		return 0, nil, fmt.Errorf("REGISTER to %s: %w", dst, err)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := m.cfg.Sender.Do(rctx, req)
	l.reg.cseq = req.CSeq().SeqNo + 1
	if err != nil {
		return 0, nil, fmt.Errorf("REGISTER to %s: %w", dst, err)
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && l.t.Password != "" {
		res, err = m.cfg.Sender.DoDigestAuth(rctx, req, res, l.t.Username, l.t.Password)
		l.reg.cseq = req.CSeq().SeqNo + 1
		if err != nil {
			return 0, nil, fmt.Errorf("REGISTER to %s (with credentials): %w", dst, err)
		}
	}
	if res.StatusCode != 200 {
		return 0, res, fmt.Errorf("REGISTER to %s: %d %s", dst, res.StatusCode, res.Reason)
	}
	return grantedExpiry(res, contact, expires), res, nil
}

// grantedExpiry is the registration interval in a 2xx: our Contact's
// expires parameter, else the Expires header, else what we asked.
func grantedExpiry(res *sip.Response, ours sip.ContactHeader, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.User != ours.Address.User || c.Address.Host != ours.Address.Host {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// qualifyLoop sends an OPTIONS every Qualify and marks the trunk up when
// the carrier answers anything but 408 or 503, down otherwise; every
// change is logged.
func (m *Manager) qualifyLoop(ctx context.Context, l *line, log *slog.Logger) {
	for {
		err := m.qualify(ctx, l)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if l.up.Swap(false) {
				log.Warn("trunk down", "error", err)
			}
		} else if !l.up.Swap(true) {
			log.Info("trunk up")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.t.Qualify):
		}
	}
}

// qualify sends an OPTIONS to the trunk's servers in turn until one
// answers anything but 503 (RFC 3263 §4.3); a 408 is a failure too.
func (m *Manager) qualify(ctx context.Context, l *line) error {
	servers, ok := m.servers(ctx, l)
	if !ok {
		return ctx.Err()
	}
	var err error
	for _, dst := range servers {
		var res *sip.Response
		res, err = m.qualifyAt(ctx, l, dst)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !nextServer(res, err) {
			if res.StatusCode == 408 {
				return fmt.Errorf("OPTIONS to %s: %d %s", dst, res.StatusCode, res.Reason)
			}
			return nil
		}
		if err == nil {
			err = fmt.Errorf("OPTIONS to %s: %d %s", dst, res.StatusCode, res.Reason)
		}
	}
	return err
}

// qualifyAt sends one OPTIONS to one server.
func (m *Manager) qualifyAt(ctx context.Context, l *line, dst sipdns.Target) (*sip.Response, error) {
	ruri := requestURI(l.t, "", dst)
	req := sip.NewRequest(sip.OPTIONS, ruri)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "kaopu", Host: m.cfg.Domain},
		Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(16)}}})
	req.AppendHeader(&sip.ToHeader{Address: ruri})
	if err := m.cfg.Sender.Route(req, l.t.Name, dst.Addr, dst.Transport); err != nil {
		return nil, fmt.Errorf("OPTIONS to %s: %w", dst, err)
	}
	rctx, cancel := context.WithTimeout(ctx, min(requestTimeout, max(l.t.Qualify, time.Second)))
	defer cancel()
	res, err := m.cfg.Sender.Do(rctx, req)
	if err != nil {
		return nil, fmt.Errorf("OPTIONS to %s: %w", dst, err)
	}
	return res, nil
}
