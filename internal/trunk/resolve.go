package trunk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kaopu/kaopu/internal/call"
)

// Resolver is the DNS a trunk's address needs; *net.Resolver is one.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupHost(ctx context.Context, host string) (addrs []string, err error)
}

// defaultPort is RFC 3263 §4.2's port for a transport.
func defaultPort(transport string) uint16 {
	if strings.EqualFold(transport, "tls") {
		return 5061
	}
	return 5060
}

// splitAddress splits a trunk address into host and port (0: none).
func splitAddress(addr string) (host string, port uint16, err error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().String(), ap.Port(), nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
		return ip.String(), 0, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		// No port.
		if strings.ContainsAny(addr, ":/ ") || addr == "" {
			return "", 0, fmt.Errorf("address %q: want host or host:port", addr)
		}
		return strings.TrimSuffix(addr, "."), 0, nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || h == "" {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return strings.TrimSuffix(h, "."), uint16(n), nil
}

// ValidAddress reports whether addr is a usable trunk address.
func ValidAddress(addr string) error {
	_, _, err := splitAddress(addr)
	return err
}

// Codecs are the names a trunk's codec preference may use: the audio
// codecs the relay carries.
func Codecs() []string { return call.RelayCodecs() }

// CodecName is a trunk's codec preference as stored: the relay's
// spelling of one of Codecs; false for any other name.
func CodecName(name string) (string, bool) {
	for _, c := range Codecs() {
		if strings.EqualFold(c, name) {
			return c, true
		}
	}
	return "", false
}

// resolve finds the addresses of a trunk, RFC 3263 §4 without NAPTR
// (Go's resolver has no NAPTR lookup; the transport is the trunk's own):
// an IP address is used as it is; a name with a port is looked up for
// A/AAAA; a name without one for SRV (_sip._udp, _sip._tcp or _sips._tcp
// by transport), whose targets are tried in order, else A/AAAA at the
// transport's default port. All addresses are returned, first preferred:
// calls go to the first, and calls from any of them are the trunk's.
func resolve(ctx context.Context, r Resolver, address, transport string) ([]netip.AddrPort, error) {
	host, port, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if port == 0 {
			port = defaultPort(transport)
		}
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), port)}, nil
	}
	var out []netip.AddrPort
	if port == 0 {
		service, proto := "sip", strings.ToLower(transport)
		if proto == "tls" {
			service, proto = "sips", "tcp"
		}
		_, recs, err := r.LookupSRV(ctx, service, proto, host)
		if err == nil && !(len(recs) == 1 && recs[0].Target == ".") {
			for _, rec := range recs {
				ips, err := lookupIPs(ctx, r, strings.TrimSuffix(rec.Target, "."))
				if err != nil {
					continue
				}
				for _, ip := range ips {
					out = append(out, netip.AddrPortFrom(ip, rec.Port))
				}
			}
			if len(out) > 0 {
				return out, nil
			}
		}
		port = defaultPort(transport)
	}
	ips, err := lookupIPs(ctx, r, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip, port))
	}
	return out, nil
}

// lookupIPs returns the addresses of name, IPv4 first.
func lookupIPs(ctx context.Context, r Resolver, name string) ([]netip.Addr, error) {
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		return nil, err
	}
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		switch {
		case err != nil:
		case ip.Is4() || ip.Is4In6():
			v4 = append(v4, ip.Unmap())
		default:
			v6 = append(v6, ip)
		}
	}
	if out := append(v4, v6...); len(out) > 0 {
		return out, nil
	}
	return nil, errors.New("no usable address for " + name)
}
