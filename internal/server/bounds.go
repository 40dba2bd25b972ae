package server

import (
	"net/netip"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/sipx"
)

// sourceBounds are the per-source caps on what a source holds in the
// server: transactions, calls being set up, connections (sip.max_*).
type sourceBounds struct {
	pending *sipx.PerSource // server transactions, until sipgo ends them
	setup   *sipx.PerSource // initial INVITEs whose handler is running
	streams *sipx.Streams   // TCP and TLS connections
}

func newSourceBounds(cfg config.Config, banned, trunk func(netip.Addr) bool) sourceBounds {
	trusted := cfg.Security.TrustedPrefixes()
	return sourceBounds{
		pending: &sipx.PerSource{Max: cfg.SIP.MaxPendingPerSource, Trusted: trusted, TrustedFunc: trunk},
		setup:   &sipx.PerSource{Max: cfg.SIP.MaxCallsSetupPerSource, Trusted: trusted, TrustedFunc: trunk},
		streams: sipx.NewStreams(sipx.StreamLimits{
			MaxPerSource: cfg.SIP.MaxConnectionsPerSource, MessageTimeout: cfg.SIP.MessageTimeout.D(),
			IdleTimeout: cfg.SIP.IdleTimeout.D(), Trusted: trusted,
		}, banned),
	}
}

// bounded runs h for a request whose source is within its caps. A request
// over sip.max_pending_per_source is dropped (sipgo ends its transaction
// at once, as nothing answered it); an INVITE over
// sip.max_calls_setup_per_source is answered 503.
func (s *Server) bounded(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		ap, err := netip.ParseAddrPort(req.Source())
		if err != nil || tx == nil {
			h(req, tx)
			return
		}
		ip := ap.Addr().Unmap()
		if !s.bounds.pending.Acquire(ip) {
			s.gate.Stats.SourceLimited.Add(1)
			return
		}
		if !tx.OnTerminate(func(string, error) { s.bounds.pending.Release(ip) }) {
			s.bounds.pending.Release(ip) // already over
		}
		if req.Method == sip.INVITE {
			if to := req.To(); to != nil && !to.Params.Has("tag") {
				if !s.bounds.setup.Acquire(ip) {
					s.gate.Stats.SourceLimited.Add(1)
					res := sipx.Reply(req, 503, "Too Many Calls From Source")
					res.AppendHeader(sip.NewHeader("Retry-After", "5"))
					sipx.Respond(tx, req, res)
					return
				}
				defer s.bounds.setup.Release(ip)
			}
		}
		h(req, tx)
	}
}
