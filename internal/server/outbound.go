package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/call"
	"github.com/kaopu/kaopu/internal/registrar"
	"github.com/kaopu/kaopu/internal/store"
)

// route makes req go where binding b really is: to the address its
// REGISTER came from (RFC 3581), over the same transport, from our listening
// UDP socket (so NATs and firewalls let it through) or over the phone's own
// TCP/TLS connection, which sipgo's connection pool finds by that address
// (connection reuse, RFC 5923/5626: a phone behind NAT cannot accept a
// new connection). When that connection is gone, the request opens a new
// one to the Contact's address (a phone that listens, on a LAN); if that
// fails too, sending fails and the caller gets 480.
func (s *Server) route(req *sip.Request, b store.Binding) error {
	req.SetDestination(b.Source)
	tp := strings.ToUpper(b.Transport)
	req.SetTransport(tp)
	switch tp {
	case "UDP":
		ua, ok := s.UDPAddr.(*net.UDPAddr)
		if !ok {
			return errors.New("no UDP listener")
		}
		req.Laddr = sip.Addr{IP: ua.IP, Port: ua.Port}
	case "TCP", "TLS":
		if b.Instance == call.DirectMark {
			// A direct call: Source is the Contact's address. A carrier
			// whose certificate is verified gets a connection we checked.
			if tp == "TLS" && b.Trunk != "" {
				if peer, ok := s.trunkSrc.Load().TLSPeer(b.Trunk); ok {
					dst, err := netip.ParseAddrPort(b.Source)
					if err != nil {
						return err
					}
					return s.trunkTLS.ensure(dst, peer)
				}
			}
			return nil
		}
		if _, err := s.ua.TransportLayer().GetConnection(tp, b.Source); err == nil {
			return nil // the phone's own connection is still open
		}
		dst, err := contactAddr(b.Contact, tp)
		if err != nil {
			return err
		}
		s.log.Debug("registered connection gone; connecting to the contact", "aor", b.AOR,
			"source", b.Source, "contact", dst, "transport", tp)
		req.SetDestination(dst)
	}
	return nil
}

// contactAddr is the host:port a Contact URI names for a new connection
// over tp: its port, else 5061 for TLS and 5060 otherwise (RFC 3263 §4.2).
// Only IP addresses: a phone's Contact carries the address it listens on,
// and resolving names here would let a phone point us anywhere by DNS.
func contactAddr(contact, tp string) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(contact, &u); err != nil {
		return "", fmt.Errorf("contact %q: %w", contact, err)
	}
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return "", fmt.Errorf("contact %q: not an IP address", contact)
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if tp == "TLS" {
			port = 5061
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)).String(), nil
}

// qualify sends an OPTIONS to binding b and waits for any answer
// (like Asterisk's qualify and Kamailio's nathelper pings).
func (s *Server) qualify(ctx context.Context, b store.Binding) (*sip.Response, error) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, fmt.Errorf("contact %q: %w", b.Contact, err)
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "kaopu", Host: s.realm},
		Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(16)}}})
	req.AppendHeader(&sip.ToHeader{Address: uri})
	if err := s.route(req, b); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.client.Do(ctx, req)
}

// keepalive pings every UDP binding behind NAT until ctx ends.
func (s *Server) keepalive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sem := make(chan struct{}, 256) // bounded: 100k phones must not mean 100k goroutines
		s.loc.Each(func(b store.Binding) {
			if strings.ToUpper(b.Transport) != "UDP" || !registrar.BehindNAT(b) || ctx.Err() != nil {
				return
			}
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				// The point is the packet through the NAT; an answer is a bonus.
				if _, err := s.qualify(ctx, b); err != nil && ctx.Err() == nil {
					s.log.Debug("nat keepalive unanswered", "aor", b.AOR, "source", b.Source, "error", err)
				}
			}()
		})
	}
}
