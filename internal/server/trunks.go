package server

import (
	"context"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/web"
)

// Numbering is the server's country numbering (calls.country_code,
// national_prefix, international_prefix), for routes and DIDs.
func Numbering(cfg config.Config) dialplan.Numbering {
	return dialplan.Numbering{CountryCode: strings.TrimPrefix(cfg.Calls.CountryCode, "+"),
		NationalPrefix: cfg.Calls.NationalPrefix, InternationalPrefix: cfg.Calls.InternationalPrefix}
}

// trunkSender lets the trunk manager send through our SIP client, from
// our listeners.
type trunkSender struct {
	s        *Server
	contacts map[string]sip.ContactHeader
}

func (t trunkSender) Do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	return t.s.client.Do(ctx, req)
}

func (t trunkSender) DoDigestAuth(ctx context.Context, req *sip.Request, res *sip.Response, user, password string) (*sip.Response, error) {
	return t.s.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
}

func (t trunkSender) Route(req *sip.Request, trunk string, dst netip.AddrPort, transport string) error {
	return t.s.route(req, store.Binding{Source: dst.String(), Transport: transport, Instance: call.DirectMark, Trunk: trunk})
}

func (t trunkSender) Contact(transport string) sip.ContactHeader {
	if c, ok := t.contacts[strings.ToUpper(transport)]; ok {
		return c
	}
	return t.contacts["UDP"]
}

// trunkMetrics are the trunks' samples for /metrics.
func (s *Server) trunkMetrics() []web.Metric {
	if s.trunks == nil {
		return nil
	}
	var out []web.Metric
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, st := range s.trunks.Statuses() {
		l := web.Label("trunk", st.Name)
		up := web.Gauge("kaopu_trunk_up", "1 when the trunk is enabled and answers its health checks (OPTIONS).", b(st.Up))
		up.Labels = l
		act := web.Gauge("kaopu_trunk_calls_active", "Calls through the trunk now, both ways.", float64(st.Active))
		act.Labels = l
		out = append(out, up, act)
		if st.Register {
			reg := web.Gauge("kaopu_trunk_registered", "1 when our registration with the carrier is current.", b(st.Registered))
			reg.Labels = l
			out = append(out, reg)
		}
	}
	return out
}
