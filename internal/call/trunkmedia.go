package call

// The offer toward a carrier follows the trunk, not the caller: its media
// encryption (store.Trunk.Media) and its codecs, in its order
// (store.Trunk.Codecs). The relay joins whatever the two legs agree on:
// an SRTP phone through a plain-RTP trunk is SRTP on its leg and RTP on
// the carrier's.

import (
	"errors"
	"strings"

	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/kaopu/kaopu/internal/store"
)

// errNoTrunkCodec: none of the trunk's codecs is in the caller's offer.
var errNoTrunkCodec = errors.New("no codec of the trunk in the caller's offer")

// trunkPolicy is the mediaPolicy of a carrier's leg: only an srtp trunk
// requires SRTP (security.media_encryption is about our users' legs).
func trunkPolicy(media string) string {
	if media == store.TrunkMediaSRTP {
		return PolicyRequired
	}
	return PolicyOptional
}

// trunkCodecs orders offered (the caller's codecs we relay) by the
// trunk's preference: for each name in prefs, every offered payload type
// of that name; then every telephone-event offered (the relay forwards
// events untouched, whatever their clock: see sdpx.Negotiate). Empty
// prefs keep offered as it is; false when no audio codec is left.
func trunkCodecs(offered []sdpx.PT, prefs []string) ([]sdpx.PT, bool) {
	if len(prefs) == 0 {
		return offered, true
	}
	var out []sdpx.PT
	seen := map[uint8]bool{}
	for _, name := range prefs {
		for _, p := range offered {
			if strings.EqualFold(p.Name, name) && !isTelephoneEvent(p) && !seen[p.Number] {
				out = append(out, p)
				seen[p.Number] = true
			}
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	for _, p := range offered {
		if isTelephoneEvent(p) {
			out = append(out, p)
		}
	}
	return out, true
}

// RelayCodecs are the SDP names of the audio codecs the relay carries
// (telephone-event goes with any of them): the names a trunk's codec
// preference may use.
func RelayCodecs() []string {
	var out []string
	for _, p := range sdpx.DefaultCodecs() {
		if !isTelephoneEvent(p) {
			out = append(out, p.Name)
		}
	}
	return out
}

func isTelephoneEvent(p sdpx.PT) bool { return strings.EqualFold(p.Name, "telephone-event") }

// offerToTrunk rewrites the offer on the callee's leg for trunk t (each
// trunk tried gets its own): t's codecs, and keys as t.Media says. With a
// late offer there is nothing to write: the carrier's offer (in its 2xx)
// is read with the trunk's policy. errNoTrunkCodec leaves the anchor as
// it was.
func (a *anchor) offerToTrunk(t TrunkTarget) error {
	if a.late {
		a.policyB = trunkPolicy(t.Media)
		return nil
	}
	offered, err := sdpx.Negotiate(a.offer, nil)
	if err != nil {
		return err
	}
	pts, ok := trunkCodecs(offered, t.Codecs)
	if !ok {
		return errNoTrunkCodec
	}
	var sec legSec
	switch t.Media {
	case store.TrunkMediaSRTP:
		sec = offerSec(true, true)
	case store.TrunkMediaBestEffort:
		sec = offerSec(true, false)
	}
	// The callee's port: still in the pair, or in the leg when an earlier
	// trunk's early media started the relay.
	var port uint16
	if a.pairB != nil {
		port = a.pairB.RTP().Port()
	} else if a.legB != nil {
		rtp, _ := a.legB.Local()
		port = rtp.Port()
	}
	origin := sdpx.NewOrigin() // a new dialog with another server
	out, err := sdpx.Rewrite(a.offer, a.ip, int(port), sdpx.RewriteOptions{Origin: origin, Codecs: pts,
		Crypto: sec.offered, Secure: sec.savp})
	if err != nil {
		return err
	}
	session, err := sdpx.Parse(out)
	if err != nil {
		return err
	}
	a.policyB, a.secB, a.pts, a.originB, a.outOffer, a.outSession = trunkPolicy(t.Media), sec, pts, origin, out, session
	return nil
}
