package call

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/kaopu/kaopu/internal/store"
)

// MediaConfig anchors media on this server; a nil Pool relays SDP
// untouched (media flows phone to phone).
type MediaConfig struct {
	Pool *media.PortPool
	// IP is the address written in SDP toward phones (public_ip, else the
	// address the pool binds).
	IP netip.Addr
}

// anchor is a call's media: leg A faces the caller, leg B the callee.
type anchor struct {
	log              *slog.Logger
	ip               netip.Addr
	offer            *sdpx.Session // the caller's offer
	pts              []sdpx.PT     // the offer's codecs we accept
	pairA, pairB     *media.PortPair
	legA, legB       *media.Leg
	bridge           *media.Bridge
	originA, originB *sdpx.Origin
	outOffer         []byte // the offer as the callee sees it
	outSession       *sdpx.Session
	codec            string
}

// refusal is why a call cannot get media, as a SIP answer.
type refusal struct {
	code   int
	reason string
}

func (r *refusal) Error() string { return fmt.Sprintf("%d %s", r.code, r.reason) }

// newAnchor parses the caller's offer, takes two port pairs and rewrites
// the offer toward the callee. A nil anchor and nil error mean there is
// no offer to anchor (late offer) or anchoring is off.
func (m *Manager) newAnchor(body []byte, log *slog.Logger) (*anchor, error) {
	if m.media.Pool == nil || len(body) == 0 {
		return nil, nil
	}
	offer, err := sdpx.Parse(body)
	if err != nil {
		if errors.Is(err, sdpx.ErrNoAudio) || errors.Is(err, sdpx.ErrUnsupported) {
			return nil, &refusal{488, "Not Acceptable Here"}
		}
		return nil, &refusal{400, "Invalid SDP"}
	}
	pts, err := sdpx.Negotiate(offer, nil)
	if err != nil {
		return nil, &refusal{488, "Not Acceptable Here"}
	}
	a := &anchor{log: log, ip: m.media.IP, offer: offer, pts: pts, originA: sdpx.NewOrigin(), originB: sdpx.NewOrigin()}
	if a.pairA, err = m.media.Pool.Allocate(); err == nil {
		a.pairB, err = m.media.Pool.Allocate()
	}
	if err != nil {
		a.close()
		if errors.Is(err, media.ErrNoPorts) {
			return nil, &refusal{503, "Service Unavailable"}
		}
		return nil, &refusal{500, "Server Internal Error"}
	}
	rtpB := a.pairB.RTP()
	if a.outOffer, err = sdpx.Rewrite(offer, a.ip, int(rtpB.Port()), sdpx.RewriteOptions{Origin: a.originB, Codecs: pts}); err != nil {
		a.close()
		return nil, &refusal{500, "Server Internal Error"}
	}
	if a.outSession, err = sdpx.Parse(a.outOffer); err != nil {
		a.close()
		return nil, &refusal{500, "Server Internal Error"}
	}
	return a, nil
}

func toMedia(pts []sdpx.PT) []media.PayloadType {
	out := make([]media.PayloadType, len(pts))
	for i, p := range pts {
		out[i] = media.PayloadType{Number: p.Number, Name: p.Name, ClockRate: p.ClockRate}
	}
	return out
}

// answered takes the callee's answer (from a 183 or the 2xx), connects the
// relay and returns the answer as the caller must see it.
func (a *anchor) answered(ctx context.Context, body []byte) ([]byte, error) {
	ans, err := sdpx.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("callee's answer: %w", err)
	}
	pts, err := sdpx.Negotiate(ans, a.pts)
	if err != nil {
		return nil, fmt.Errorf("callee's answer: %w", err)
	}
	callerRTP, callerRTCP, _ := a.offer.Remote()
	calleeRTP, calleeRTCP, _ := ans.Remote()
	remoteA := media.Remote{RTP: callerRTP, RTCP: callerRTCP, PayloadTypes: toMedia(pts)}
	remoteB := media.Remote{RTP: calleeRTP, RTCP: calleeRTCP, PayloadTypes: toMedia(pts)}
	if a.bridge == nil {
		if a.legA, err = media.NewLeg(a.pairA, media.LegConfig{Remote: remoteA, Logger: a.log.With("leg", "caller")}); err != nil {
			return nil, err
		}
		a.pairA = nil // owned by the leg now
		if a.legB, err = media.NewLeg(a.pairB, media.LegConfig{Remote: remoteB, Logger: a.log.With("leg", "callee")}); err != nil {
			return nil, err
		}
		a.pairB = nil
		if a.bridge, err = media.NewBridge(a.legA, a.legB); err != nil {
			return nil, err
		}
		if err := a.bridge.Start(ctx); err != nil {
			return nil, err
		}
	} else {
		a.legA.SetRemote(remoteA)
		a.legB.SetRemote(remoteB)
	}
	for _, p := range pts {
		if p.Name != "telephone-event" {
			a.codec = p.Name
			break
		}
	}
	local, _ := a.legA.Local()
	return sdpx.Rewrite(ans, a.ip, int(local.Port()), sdpx.RewriteOptions{Origin: a.originA, Codecs: pts, AnswerTo: a.offer})
}

// stats reports both legs for the CDR.
func (a *anchor) stats() []store.LegStats {
	if a == nil || a.legA == nil {
		return nil
	}
	conv := func(name string, s media.Stats) store.LegStats {
		return store.LegStats{Leg: name, PacketsIn: s.PacketsIn, PacketsOut: s.PacketsOut, BytesIn: s.BytesIn,
			BytesOut: s.BytesOut, Lost: s.Lost, JitterMs: float64(s.Jitter.Microseconds()) / 1000,
			StrangersDropped: s.DroppedStrangers}
	}
	return []store.LegStats{conv("caller", a.legA.Stats()), conv("callee", a.legB.Stats())}
}

// close frees everything the anchor holds.
func (a *anchor) close() {
	if a == nil {
		return
	}
	if a.bridge != nil {
		a.bridge.Close()
	}
	if a.legA != nil {
		a.legA.Close()
	}
	if a.legB != nil {
		a.legB.Close()
	}
	if a.pairA != nil {
		a.pairA.Close()
	}
	if a.pairB != nil {
		a.pairB.Close()
	}
}
