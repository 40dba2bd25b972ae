package server

import (
	"net"
	"testing"
)

// TestIsSelf: our listeners' addresses at their ports are ours; port 0
// matches any of our ports (a From address without one); other ports and
// addresses are not.
func TestIsSelf(t *testing.T) {
	ip := net.ParseIP("127.0.0.3")
	s := &Server{UDPAddr: &net.UDPAddr{IP: ip, Port: 5080}, TCPAddr: &net.TCPAddr{IP: ip, Port: 5080},
		TLSAddr: &net.TCPAddr{IP: ip, Port: 5081}}
	s.cfg.PublicIP = "203.0.113.9"
	for _, tc := range []struct {
		host string
		port int
		want bool
	}{
		{"127.0.0.3", 5080, true},
		{"127.0.0.3", 5081, true},
		{"127.0.0.3", 0, true},
		{"127.0.0.3", 5060, false},
		{"127.0.0.2", 5080, false},
		{"127.0.0.2", 0, false},
		{"203.0.113.9", 5060, true}, // public_ip: the NAT in front of us
		{"beta.test", 5080, false},
	} {
		if got := s.isSelf(tc.host, tc.port); got != tc.want {
			t.Errorf("isSelf(%s, %d) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}
