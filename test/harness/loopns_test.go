//go:build linux

package harness

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStartNetnsAndDNS: the namespace has only lo, programs run in it read
// the namespace's resolv.conf, the test DNS server answers SRV, A and
// AAAA from its zone and NXDOMAIN outside it, and the namespace and its
// /etc/netns directory are gone once the test that made them has ended.
func TestStartNetnsAndDNS(t *testing.T) {
	var ns *Netns
	t.Run("in the namespace", func(t *testing.T) {
		ns = StartNetns(t)
		dns := StartDNS(t, ns, DNSZone{
			A: map[string][]netip.Addr{"sip.beta.test": {netip.MustParseAddr("127.0.0.3")},
				"alpha.test.": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")}},
			SRV: map[string][]net.SRV{"_sip._udp.beta.test": {{Target: "sip.beta.test", Port: 5080, Priority: 10, Weight: 5}}},
		})
		out, err := ns.Exec("ip", "-o", "link")
		if err != nil {
			t.Fatalf("ip -o link: %v\n%s", err, out)
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], ": lo:") ||
			!strings.Contains(lines[0], "UP") {
			t.Fatalf("interfaces in the namespace, want only lo, up:\n%s", out)
		}
		if out, err := ns.Exec("cat", "/etc/resolv.conf"); err != nil || !strings.HasPrefix(out, "nameserver 127.0.0.1\n") {
			t.Fatalf("/etc/resolv.conf in the namespace (%v):\n%s", err, out)
		}
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return ns.Dial(network, dns.Addr, time.Second)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, srvs, err := r.LookupSRV(ctx, "sip", "udp", "beta.test")
		if err != nil || len(srvs) != 1 || srvs[0].Target != "sip.beta.test." || srvs[0].Port != 5080 {
			t.Fatalf("LookupSRV(_sip._udp.beta.test) = %+v, %v", srvs, err)
		}
		addrs, err := r.LookupHost(ctx, "alpha.test")
		slices.Sort(addrs)
		if err != nil || !slices.Equal(addrs, []string{"127.0.0.2", "::1"}) {
			t.Fatalf("LookupHost(alpha.test) = %v, %v", addrs, err)
		}
		var de *net.DNSError
		if _, err := r.LookupHost(ctx, "gamma.test"); !errors.As(err, &de) || !de.IsNotFound {
			t.Fatalf("LookupHost(gamma.test) = %v, want not found", err)
		}
		if _, _, err := r.LookupSRV(ctx, "sip", "tcp", "beta.test"); !errors.As(err, &de) || !de.IsNotFound {
			t.Fatalf("LookupSRV(_sip._tcp.beta.test) = %v, want not found", err)
		}
		if q := dns.Queries(); !slices.Contains(q, "SRV _sip._udp.beta.test.") || !slices.Contains(q, "A gamma.test.") {
			t.Fatalf("queries seen %q", q)
		}
	})
	if ns == nil {
		t.FailNow()
	}
	if out, _ := runCmd("ip", "netns", "list"); strings.Contains(out, ns.Name) {
		t.Errorf("network namespace %s left behind", ns.Name)
	}
	if _, err := os.Stat(ns.etcDir); err == nil {
		t.Errorf("%s left behind", ns.etcDir)
	}
}
