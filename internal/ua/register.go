package ua

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// register sends one REGISTER for expires (0 removes our binding; RFC 3261
// §10.2) through the server, answering a digest challenge, and returns the
// lifetime the registrar granted. When the registrar saw our request come
// from another address than our Contact says (rport/received, RFC 3581: we
// are behind NAT), the Contact is changed to that address and the binding
// renewed with it.
func (a *Agent) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	for attempt := 0; ; attempt++ {
		granted, public, err := a.registerOnce(ctx, expires)
		if err != nil || expires == 0 || attempt > 0 || a.transport != "udp" {
			return granted, err
		}
		a.mu.Lock()
		cur := a.contact.Address
		changed := public.host != "" && (public.host != cur.Host || public.port != cur.Port)
		if changed {
			a.log.Info("behind NAT: using the address the registrar sees", "contact", fmt.Sprintf("%s:%d", public.host, public.port))
			a.contact.Address.Host, a.contact.Address.Port = public.host, public.port
			a.dialogUA.ContactHDR = a.contact
		}
		a.mu.Unlock()
		if !changed {
			return granted, nil
		}
	}
}

type hostPort struct {
	host string
	port int
}

func (a *Agent) registerOnce(ctx context.Context, expires time.Duration) (time.Duration, hostPort, error) {
	uri := sip.Uri{Scheme: "sip", Host: a.cfg.Domain}
	req := sip.NewRequest(sip.REGISTER, uri)
	aor := sip.Uri{Scheme: "sip", User: a.cfg.User, Host: a.cfg.Domain}
	from := a.from()
	from.Address = aor
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	a.mu.Lock()
	contact := a.contact
	a.mu.Unlock()
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	if a.transport != "udp" {
		req.SetTransport(a.transportName())
	}
	req.SetDestination(a.cfg.Server)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := a.do(ctx, req)
	if err != nil {
		return 0, hostPort{}, fmt.Errorf("register: %w", err)
	}
	if !res.IsSuccess() {
		return 0, hostPort{}, fmt.Errorf("register: %w", &StatusError{Code: res.StatusCode, Reason: res.Reason})
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(h.Value()); err == nil {
			granted = time.Duration(n) * time.Second
		}
	}
	// A Contact in the answer with its own expires param wins (§10.2.4).
	for _, h := range res.GetHeaders("Contact") {
		var u sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(h.Value(), &u, &params); err != nil || u.User != contact.Address.User ||
			u.Host != contact.Address.Host || u.Port != contact.Address.Port {
			continue
		}
		if v, ok := params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				granted = time.Duration(n) * time.Second
			}
		}
	}
	var public hostPort
	if via := res.Via(); via != nil {
		if rec, ok := via.Params.Get("received"); ok && rec != "" {
			public.host = rec
			public.port = via.Port
			if rp, ok := via.Params.Get("rport"); ok {
				if n, err := strconv.Atoi(rp); err == nil && n > 0 {
					public.port = n
				}
			}
		}
	}
	a.log.Info("registered", "aor", a.AOR(), "expires", granted)
	return granted, public, nil
}

func (a *Agent) transportName() string {
	switch a.transport {
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	}
	return "UDP"
}

// refreshLoop renews the registration at half its lifetime, retrying
// failures every 10 s (sooner than the binding expires).
func (a *Agent) refreshLoop(ctx context.Context, granted time.Duration) {
	next := max(granted/2, time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		g, err := a.register(ctx, a.cfg.Expires)
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.registered = err == nil
		a.mu.Unlock()
		if h := a.cfg.Hooks.OnRegister; h != nil {
			h(g, err)
		}
		if err != nil {
			a.log.Warn("registration refresh failed", "error", err)
			next = 10 * time.Second
			continue
		}
		next = max(g/2, time.Second)
	}
}
