package trunk

import (
	"sort"
	"strings"

	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/store"
)

var _ call.Gateway = (*Manager)(nil)

// Outbound lists the trunks a dialed number goes out through: the trunks
// of every route whose pattern matches it, routes in priority order and
// trunks in each route's order, each trunk once. An emergency number
// that no route matches goes out through every enabled trunk, in name
// order: it is always routed.
//
// The number is transformed per route (strip, then prepend), normalized
// to E.164 with the server's numbering (calls.country_code,
// national_prefix, international_prefix) and written in the trunk's
// NumberFormat. A number with no E.164 form (a short code such as an
// emergency number) goes as the transformed digits.
func (m *Manager) Outbound(dialed string) []call.TrunkTarget {
	n, ok := dialplan.Clean(dialed)
	if !ok {
		return nil
	}
	s := m.snap.Load()
	emergency := m.emergency(n)
	var out []call.TrunkTarget
	seen := map[string]bool{}
	add := func(routeName string, number string, l *line) {
		if seen[l.t.Name] || !l.t.Enabled {
			return
		}
		t, ok := m.target(routeName, number, l, emergency)
		if !ok {
			return
		}
		seen[l.t.Name] = true
		out = append(out, t)
	}
	for _, r := range s.routes {
		if !r.pattern.Match(n) {
			continue
		}
		number := n
		if r.Strip > 0 {
			if r.Strip >= len(number) {
				continue
			}
			number = number[r.Strip:]
		}
		number = r.Prepend + number
		for _, name := range r.Trunks {
			if l := s.lines[name]; l != nil {
				add(r.Name, number, l)
			}
		}
	}
	if emergency && len(out) == 0 {
		names := make([]string, 0, len(s.lines))
		for name := range s.lines {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			add("", n, s.lines[name])
		}
	}
	return out
}

// target is the call.TrunkTarget of number through trunk l; false when
// the trunk's address is not known yet (its name did not resolve). Its
// Servers are the trunk's servers in order (RFC 3263 §4.3 failover).
func (m *Manager) target(routeName, number string, l *line, emergency bool) (call.TrunkTarget, bool) {
	targets := l.targets.Load()
	if targets == nil || len(*targets) == 0 {
		return call.TrunkTarget{}, false
	}
	e164, ok := m.cfg.Numbering.ToE164(number)
	user := number
	if ok && !emergency {
		user = m.cfg.Numbering.Format(e164, l.t.NumberFormat)
	} else {
		e164 = ""
	}
	servers := make([]store.Binding, 0, len(*targets))
	for _, dst := range *targets {
		uri := requestURI(l.t, user, dst)
		servers = append(servers, store.Binding{AOR: user + "@" + l.t.Name, Contact: uri.String(),
			Source: dst.Addr.String(), Transport: dst.Transport, Instance: call.DirectMark, Trunk: l.t.Name})
	}
	return call.TrunkTarget{
		Trunk: l.t.Name, Route: routeName, Number: user, E164: e164,
		Binding: servers[0], Servers: servers,
		Username: l.t.Username, Password: l.t.Password, CallerID: l.t.CallerID,
		SendPAI: l.t.SendPAI, HonourPrivacy: l.t.HonourPrivacy, Emergency: emergency,
		Codecs: l.t.Codecs, Media: l.t.Media,
	}, true
}

// NormalizeDID is the form a DID is stored and matched in: E.164 when the
// number has one with the server's numbering, else its digits.
func NormalizeDID(n dialplan.Numbering, number string) (string, bool) {
	c, ok := dialplan.Clean(number)
	if !ok {
		return "", false
	}
	if e, ok := n.ToE164(c); ok {
		return e, true
	}
	return c, true
}

// DID returns the target of a number arriving through trunk: the number
// as the carrier wrote it, or in E.164 (with the server's numbering, or
// with a + in front: carriers often drop it). A DID bound to another
// trunk does not match.
func (m *Manager) DID(trunk, number string) (string, bool) {
	c, ok := dialplan.Clean(number)
	if !ok {
		return "", false
	}
	s := m.snap.Load()
	cands := []string{c}
	if e, ok := m.cfg.Numbering.ToE164(c); ok {
		cands = append(cands, e)
	}
	if !strings.HasPrefix(c, "+") {
		cands = append(cands, "+"+c)
	}
	for _, k := range cands {
		if d, ok := s.dids[k]; ok && (d.Trunk == "" || d.Trunk == trunk) {
			return d.Target, true
		}
	}
	return "", false
}

// CallerNumber is the first DID (by number) mapped to user.
func (m *Manager) CallerNumber(user string) string {
	return m.snap.Load().byUser[user]
}
