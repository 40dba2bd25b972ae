package server

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestStreamSource: a TCP connection sipgo opens leaves from the SIP
// listener's address (127.0.0.2 here), not the kernel's pick (127.0.0.1
// toward 127.0.0.1); with a wildcard listener the kernel picks.
func TestStreamSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raddr := ln.Addr().(*net.TCPAddr)
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.2:5060", "127.0.0.2"},
		{"0.0.0.0:5060", "127.0.0.1"},
	} {
		tl := sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), nil, streamSource(tc.listen, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: raddr.IP.String(), Port: raddr.Port,
			UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}})
		req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TCP", Host: "127.0.0.1",
			Params: sip.HeaderParams{{K: "branch", V: sip.GenerateBranch()}}})
		req.SetTransport("TCP")
		req.SetDestination(raddr.String())
		conn, err := tl.ClientRequestConnection(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.listen, err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		in, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := netip.MustParseAddrPort(in.RemoteAddr().String()).Addr().String(); got != tc.want {
			t.Errorf("listener %s: connection from %s, want %s", tc.listen, got, tc.want)
		}
		in.Close()
		conn.Close()
		tl.Close()
	}
}
