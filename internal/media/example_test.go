package media_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/kaopu/kaopu/internal/media"
)

// The call layer's use: one pool per media address, one leg per call leg,
// a bridge once both SDPs are known.
func Example() {
	pool, err := media.NewPortPool(media.PortPoolConfig{IP: netip.MustParseAddr("127.77.40.1"), Low: 10000, High: 20000})
	if err != nil {
		panic(err)
	}
	pts := []media.PayloadType{{Number: 0}, {Number: 101, Name: "telephone-event"}}
	newLeg := func(sdp string) *media.Leg {
		pp, err := pool.Allocate()
		if errors.Is(err, media.ErrNoPorts) {
			panic("answer 503")
		}
		leg, err := media.NewLeg(pp, media.LegConfig{Remote: media.Remote{RTP: netip.MustParseAddrPort(sdp), PayloadTypes: pts}})
		if err != nil {
			pp.Close()
			panic(err)
		}
		return leg
	}
	caller, callee := newLeg("192.168.1.10:4000"), newLeg("203.0.113.5:30000")
	rtp, _ := caller.Local() // goes into the SDP answer to the caller
	fmt.Println(rtp)

	br, err := media.NewBridge(caller, callee)
	if err != nil {
		panic(err)
	}
	if err := br.Start(context.Background()); err != nil {
		panic(err)
	}
	// ... on BYE, or when both legs' LastActivity is too old:
	br.Close()
	fmt.Println(pool.Free() == pool.Size())
	// Output:
	// 127.77.40.1:10000
	// true
}
