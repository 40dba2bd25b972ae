package ua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// stunTries is how many Binding requests are sent (RFC 5389 §7.2.1
// retransmits over UDP; a few quick tries are enough for a phone that will
// fall back to its local address).
const stunTries = 4

// stunMapped asks the STUN server at server (host:port) for the address
// conn's packets come from (RFC 5389 Binding request, XOR-MAPPED-ADDRESS)
// and returns it. conn must not be read by anyone else meanwhile.
func stunMapped(ctx context.Context, conn net.PacketConn, server string) (netip.AddrPort, error) {
	raddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("stun server %q: %w", server, err)
	}
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	buf := make([]byte, 1500)
	defer conn.SetReadDeadline(time.Time{})
	wait := 250 * time.Millisecond
	for range stunTries {
		if _, err := conn.WriteTo(req.Raw, raddr); err != nil {
			return netip.AddrPort{}, fmt.Errorf("stun: %w", err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetReadDeadline(deadline)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return netip.AddrPort{}, fmt.Errorf("stun: %w", err)
			}
			if addr, ok := stunAnswer(buf[:n], req.TransactionID); ok {
				return addr, nil
			}
		}
		if ctx.Err() != nil {
			return netip.AddrPort{}, ctx.Err()
		}
		wait *= 2
	}
	return netip.AddrPort{}, fmt.Errorf("stun: no answer from %s", server)
}

// stunAnswer reads the mapped address from a Binding success response to
// the transaction id.
func stunAnswer(b []byte, id [stun.TransactionIDSize]byte) (netip.AddrPort, bool) {
	if !stun.IsMessage(b) {
		return netip.AddrPort{}, false
	}
	var m stun.Message
	m.Raw = append([]byte(nil), b...)
	if m.Decode() != nil || m.TransactionID != id || m.Type != stun.BindingSuccess {
		return netip.AddrPort{}, false
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(&m); err == nil {
		if a, ok := netip.AddrFromSlice(xor.IP); ok {
			return netip.AddrPortFrom(a.Unmap(), uint16(xor.Port)), true
		}
	}
	var mapped stun.MappedAddress
	if err := mapped.GetFrom(&m); err == nil {
		if a, ok := netip.AddrFromSlice(mapped.IP); ok {
			return netip.AddrPortFrom(a.Unmap(), uint16(mapped.Port)), true
		}
	}
	return netip.AddrPort{}, false
}
