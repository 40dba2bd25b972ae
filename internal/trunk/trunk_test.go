package trunk

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/sipdns"
	"github.com/kaopu/kaopu/internal/sipdns/dnstest"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

func newManager(t *testing.T) (*Manager, *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	add := func(tr store.Trunk) {
		tr.Enabled, tr.Created = true, time.Unix(1, 0)
		if tr.NumberFormat == "" {
			tr.NumberFormat = "e164"
		}
		if err := st.AddTrunk(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	add(store.Trunk{Name: "uk", Address: "192.0.2.10:5070", Transport: "udp", Auth: "ip", Channels: 1})
	add(store.Trunk{Name: "world", Address: "192.0.2.20", Transport: "tcp", Auth: "ip", NumberFormat: "digits",
		Networks: []string{"198.51.100.0/24"}, Codecs: []string{"G722", "PCMA"}, Media: store.TrunkMediaSRTP, SendPAI: true})
	for _, r := range []store.Route{
		{Name: "a-uk", Pattern: "_0[1-9]X.", Trunks: []string{"uk", "world"}, Priority: 10},
		{Name: "b-intl", Pattern: "00", Trunks: []string{"world", "uk"}, Priority: 20},
		{Name: "c-outside", Pattern: "9", Strip: 1, Trunks: []string{"world"}, Priority: 30},
	} {
		if err := st.AddRoute(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []store.DID{{Number: "+442071230001", Target: "alice"}, {Number: "+442071230002", Target: "2001", Trunk: "world"}} {
		if err := st.AddDID(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	m := New(Config{Store: st, Numbering: dialplan.Numbering{CountryCode: "44", NationalPrefix: "0", InternationalPrefix: "00"},
		Emergency: []string{"112", "999"},
		Canonical: func(l string) (string, bool) {
			return map[string]string{"alice": "alice", "2001": "bob", "bob": "bob"}[l], l == "alice" || l == "2001" || l == "bob"
		}})
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return m, st
}

func TestOutbound(t *testing.T) {
	m, _ := newManager(t)
	type hop struct{ trunk, contact, source, e164 string }
	for _, tc := range []struct {
		dialed string
		want   []hop
	}{
		// National number: uk first (E.164 with +), world second (digits, over TCP).
		{"020 7946 0000", []hop{{"uk", "sip:+442079460000@192.0.2.10:5070", "192.0.2.10:5070", "+442079460000"},
			{"world", "sip:442079460000@192.0.2.20;transport=tcp", "192.0.2.20:5060", "+442079460000"}}},
		{"0033123456789", []hop{{"world", "sip:33123456789@192.0.2.20;transport=tcp", "192.0.2.20:5060", "+33123456789"},
			{"uk", "sip:+33123456789@192.0.2.10:5070", "192.0.2.10:5070", "+33123456789"}}},
		// 9 for an outside line: stripped, then normalized.
		{"9020794600", []hop{{"world", "sip:4420794600@192.0.2.20;transport=tcp", "192.0.2.20:5060", "+4420794600"}}},
		// No route.
		{"12345", nil},
		// Emergency: no route matches, every enabled trunk, the number as dialed.
		{"112", []hop{{"uk", "sip:112@192.0.2.10:5070", "192.0.2.10:5070", ""}, {"world", "sip:112@192.0.2.20;transport=tcp", "192.0.2.20:5060", ""}}},
		{"not a number", nil},
	} {
		t.Run(tc.dialed, func(t *testing.T) {
			got := m.Outbound(tc.dialed)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d targets %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Trunk != w.trunk || g.Binding.Contact != w.contact || g.Binding.Source != w.source || g.E164 != w.e164 {
					t.Errorf("target %d: %s %s %s %q, want %+v", i, g.Trunk, g.Binding.Contact, g.Binding.Source, g.E164, w)
				}
				// The trunk's presentation and media settings travel with it.
				world := g.Trunk == "world"
				if g.SendPAI != world || (g.Media == store.TrunkMediaSRTP) != world || (strings.Join(g.Codecs, ",") == "G722,PCMA") != world {
					t.Errorf("target %d (%s): pai %v media %q codecs %v", i, g.Trunk, g.SendPAI, g.Media, g.Codecs)
				}
			}
		})
	}
}

func TestDIDAndSource(t *testing.T) {
	m, _ := newManager(t)
	for _, tc := range []struct {
		trunk, number, want string
		ok                  bool
	}{
		{"uk", "+442071230001", "alice", true},
		{"uk", "442071230001", "alice", true}, // carrier dropped the +
		{"uk", "02071230001", "alice", true},  // national form
		{"uk", "+442071230002", "", false},    // bound to trunk world
		{"world", "+442071230002", "2001", true},
		{"uk", "+442071239999", "", false},
	} {
		got, ok := m.DID(tc.trunk, tc.number)
		if got != tc.want || ok != tc.ok {
			t.Errorf("DID(%s, %s) = %q %v, want %q %v", tc.trunk, tc.number, got, ok, tc.want, tc.ok)
		}
	}
	if n := m.CallerNumber("bob"); n != "+442071230002" {
		t.Errorf("bob's caller number %q", n)
	}
	for src, want := range map[string]string{"192.0.2.10": "uk", "198.51.100.99": "world", "192.0.2.20": "", "203.0.113.1": ""} {
		got, ok := m.FromTrunk(netip.MustParseAddr(src))
		if got != want || ok != (want != "") {
			t.Errorf("FromTrunk(%s) = %q %v, want %q", src, got, ok, want)
		}
		if m.IsTrunk(netip.MustParseAddr(src)) != (want != "") {
			t.Errorf("IsTrunk(%s) disagrees with FromTrunk", src)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { m.IsTrunk(netip.MustParseAddr("203.0.113.1")) }); allocs != 0 {
		t.Errorf("IsTrunk allocates %v times", allocs)
	}
	var none *Manager
	if none.IsTrunk(netip.MustParseAddr("192.0.2.10")) {
		t.Error("a nil manager has no trunks")
	}
}

func TestAcquire(t *testing.T) {
	m, st := newManager(t)
	rel, ok := m.Acquire("uk", false)
	if !ok {
		t.Fatal("first channel refused")
	}
	if _, ok := m.Acquire("uk", false); ok {
		t.Fatal("second channel of a 1-channel trunk granted")
	}
	erel, ok := m.Acquire("uk", true)
	if !ok {
		t.Fatal("an emergency call was refused by the channel limit")
	}
	erel()
	rel()
	rel() // twice is harmless
	rel2, ok := m.Acquire("uk", false)
	if !ok {
		t.Fatal("channel not given back")
	}
	rel2()
	// Down: refused, except emergencies.
	m.snap.Load().lines["uk"].up.Store(false)
	if _, ok := m.Acquire("uk", false); ok {
		t.Fatal("a down trunk granted a channel")
	}
	if r, ok := m.Acquire("uk", true); !ok {
		t.Fatal("emergency refused by a down trunk")
	} else {
		r()
	}
	// Disabled in the store: gone from routing once reloaded.
	tr, _ := st.GetTrunk(context.Background(), "world")
	tr.Enabled = false
	if err := st.UpdateTrunk(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.Outbound("0033123456789"); len(got) != 1 || got[0].Trunk != "uk" {
		t.Fatalf("after disabling world: %+v", got)
	}
	if _, ok := m.Acquire("world", true); ok {
		t.Fatal("a disabled trunk granted a channel")
	}
}

func TestResolve(t *testing.T) {
	dns := dnstest.Start(t,
		`carrier.example. 60 IN NAPTR 10 0 "s" "SIP+D2T" "" _sip._tcp.carrier.example.`,
		`_sip._tcp.carrier.example. 60 IN SRV 0 0 5070 b.carrier.example.`,
		`_sip._udp.carrier.example. 60 IN SRV 0 0 5080 a.carrier.example.`,
		`_sip._udp.carrier.example. 60 IN SRV 1 0 5090 b.carrier.example.`,
		`_sips._tcp.carrier.example. 60 IN SRV 0 0 5061 a.carrier.example.`,
		`a.carrier.example. 60 IN AAAA 2001:db8::1`,
		`a.carrier.example. 60 IN A 192.0.2.1`,
		`b.carrier.example. 60 IN A 192.0.2.2`,
		`plain.example. 60 IN A 192.0.2.3`,
	)
	loc := sipdns.New(sipdns.Config{Servers: []string{dns.Addr}, Hosts: "-", Timeout: 300 * time.Millisecond, Attempts: 1})
	for _, tc := range []struct {
		addr, tp string
		want     []string
		err      bool
	}{
		{"192.0.2.9", "udp", []string{"UDP:192.0.2.9:5060"}, false},
		{"192.0.2.9", "tls", []string{"TLS:192.0.2.9:5061"}, false},
		{"192.0.2.9:7000", "udp", []string{"UDP:192.0.2.9:7000"}, false},
		{"192.0.2.9", "auto", []string{"UDP:192.0.2.9:5060"}, false},
		{"carrier.example", "udp", []string{"UDP:192.0.2.1:5080", "UDP:[2001:db8::1]:5080", "UDP:192.0.2.2:5090"}, false},
		{"carrier.example", "tls", []string{"TLS:192.0.2.1:5061", "TLS:[2001:db8::1]:5061"}, false},
		{"carrier.example", "auto", []string{"TCP:192.0.2.2:5070"}, false}, // NAPTR says TCP
		{"plain.example", "udp", []string{"UDP:192.0.2.3:5060"}, false},    // no SRV: A at 5060
		{"plain.example", "auto", []string{"UDP:192.0.2.3:5060"}, false},
		{"plain.example:5099", "tcp", []string{"TCP:192.0.2.3:5099"}, false},
		{"missing.example", "udp", nil, true},
		{"bad host:x", "udp", nil, true},
	} {
		res, err := resolve(context.Background(), loc, store.Trunk{Address: tc.addr, Transport: tc.tp})
		if (err != nil) != tc.err {
			t.Errorf("%s/%s: error %v", tc.addr, tc.tp, err)
			continue
		}
		var s []string
		for _, a := range res.Targets {
			s = append(s, a.String())
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.addr, tc.tp, s, tc.want)
		}
	}
	if _, err := resolve(context.Background(), loc, store.Trunk{Address: "missing.example", Transport: "udp"}); !errors.Is(err, sipdns.ErrNotFound) {
		t.Errorf("missing name: %v", err)
	}
}

func TestDefaultTransport(t *testing.T) {
	for addr, want := range map[string]string{"carrier.example": "auto", "carrier.example.": "auto", "carrier.example:5060": "udp",
		"192.0.2.1": "udp", "[2001:db8::1]:5070": "udp", "bad host": "udp"} {
		if got := DefaultTransport(addr); got != want {
			t.Errorf("DefaultTransport(%q) = %s, want %s", addr, got, want)
		}
	}
}
