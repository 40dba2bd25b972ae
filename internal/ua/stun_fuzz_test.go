package ua

import (
	"net"
	"testing"

	"github.com/pion/stun/v3"
)

// FuzzSTUNAnswer feeds stunAnswer arbitrary datagrams as if from a STUN
// server (untrusted: anyone can send to the phone's port). It must not
// panic, and an address it accepts must be valid.
func FuzzSTUNAnswer(f *testing.F) {
	id := [stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(append([]stun.Setter{stun.NewTransactionIDSetter(id)}, setters...)...)
		if err != nil {
			f.Fatal(err)
		}
		return m.Raw
	}
	xor := build(stun.BindingSuccess, &stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 7), Port: 4000}, stun.Fingerprint)
	if a, ok := stunAnswer(xor, id); !ok || a.String() != "192.0.2.7:4000" {
		f.Fatalf("seed answer read as %v %v", a, ok)
	}
	f.Add(xor)
	f.Add(build(stun.BindingSuccess, &stun.MappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 5}))
	f.Add(build(stun.BindingError, stun.ErrorCodeAttribute{Code: stun.CodeBadRequest}))
	f.Add(build(stun.BindingRequest))
	f.Add(build(stun.BindingSuccess))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := stunAnswer(b, id)
		if ok && !a.Addr().IsValid() {
			t.Fatalf("accepted an invalid address %v", a)
		}
	})
}
