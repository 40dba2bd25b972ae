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
	secA, secB       legSec // SDES state of each leg (srtp.go)
	policyA, policyB string // mediaPolicy of the caller and of the callee
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
	// late: the caller's INVITE had no SDP, so the callee's 2xx carries
	// the offer (calleeOffer) and the caller's ACK the answer.
	late        bool
	calleeOffer *sdpx.Session
}

// refusal is why a call cannot get media, as a SIP answer.
type refusal struct {
	code   int
	reason string
}

func (r *refusal) Error() string { return fmt.Sprintf("%d %s", r.code, r.reason) }

// newAnchor parses the caller's offer, takes two port pairs and rewrites
// the offer toward the callee. Without an offer (late offer) it only takes
// the ports. A nil anchor and nil error mean anchoring is off. caller and
// callee name the users whose mediaPolicy applies to each leg.
func (m *Manager) newAnchor(body []byte, log *slog.Logger, caller, callee string) (*anchor, error) {
	if m.media.Pool == nil {
		if len(body) > 0 && m.mediaPolicy(caller) == PolicyRequired {
			// Media is not ours to check: only an offer that requires SRTP
			// (RTP/SAVP) is known to end up encrypted.
			if offer, err := sdpx.Parse(body); err != nil || !offer.Audio.Secure() {
				return nil, errSRTPRequired
			}
		}
		return nil, nil
	}
	a := &anchor{log: log, ip: m.media.IP, originA: sdpx.NewOrigin(), originB: sdpx.NewOrigin(),
		policyA: m.mediaPolicy(caller), policyB: m.mediaPolicy(callee)}
	if len(body) == 0 {
		a.late = true
		if err := a.allocate(m.media.Pool); err != nil {
			return nil, err
		}
		return a, nil
	}
	offer, err := sdpx.Parse(body)
	if err != nil {
		if errors.Is(err, sdpx.ErrNoAudio) || errors.Is(err, sdpx.ErrUnsupported) {
			return nil, &refusal{488, "Not Acceptable Here"}
		}
		if errors.Is(err, sdpx.ErrTooLarge) {
			return nil, &refusal{400, "SDP Too Large"}
		}
		return nil, &refusal{400, "Invalid SDP"}
	}
	pts, err := sdpx.Negotiate(offer, nil)
	if err != nil {
		return nil, &refusal{488, "Not Acceptable Here"}
	}
	if a.secA, err = secFromOffer(&offer.Audio, a.policyA, nil); err != nil {
		var rf *refusal
		if !errors.As(err, &rf) {
			err = &refusal{500, "Server Internal Error"}
		}
		return nil, err
	}
	a.offer, a.pts = offer, pts
	if err := a.allocate(m.media.Pool); err != nil {
		return nil, err
	}
	// Toward the callee: our own keys for its leg when the caller's leg is
	// SRTP or the callee must have SRTP.
	a.secB = offerSec(a.secA.on || a.policyB == PolicyRequired, a.policyB == PolicyRequired)
	rtpB := a.pairB.RTP()
	if a.outOffer, err = sdpx.Rewrite(offer, a.ip, int(rtpB.Port()), sdpx.RewriteOptions{Origin: a.originB, Codecs: pts,
		Crypto: a.secB.offered, Secure: a.secB.savp}); err != nil {
		a.close()
		return nil, &refusal{500, "Server Internal Error"}
	}
	if a.outSession, err = sdpx.Parse(a.outOffer); err != nil {
		a.close()
		return nil, &refusal{500, "Server Internal Error"}
	}
	return a, nil
}

// allocate takes the two port pairs; a refusal when there are none.
func (a *anchor) allocate(pool *media.PortPool) error {
	var err error
	if a.pairA, err = pool.Allocate(); err == nil {
		a.pairB, err = pool.Allocate()
	}
	if err != nil {
		a.close()
		if errors.Is(err, media.ErrNoPorts) {
			return &refusal{503, "Service Unavailable"}
		}
		return &refusal{500, "Server Internal Error"}
	}
	return nil
}

// lateOffer takes the callee's offer from its 2xx (late offer) and
// returns it as the caller must see it: the relay's address, and only
// the codecs the relay handles.
func (a *anchor) lateOffer(body []byte) ([]byte, error) {
	offer, err := sdpx.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("callee's offer: %w", err)
	}
	pts, err := sdpx.Negotiate(offer, nil)
	if err != nil {
		return nil, fmt.Errorf("callee's offer: %w", err)
	}
	if a.secB, err = secFromOffer(&offer.Audio, a.policyB, nil); err != nil {
		return nil, fmt.Errorf("callee's offer: %w", err)
	}
	a.calleeOffer, a.pts = offer, pts
	a.secA = offerSec(a.secB.on || a.policyA == PolicyRequired, a.policyA == PolicyRequired)
	return sdpx.Rewrite(offer, a.ip, int(a.pairA.RTP().Port()), sdpx.RewriteOptions{Origin: a.originA, Codecs: pts,
		Crypto: a.secA.offered, Secure: a.secA.savp})
}

// lateAnswer takes the caller's answer from its ACK, connects the relay
// and returns the answer as the callee must see it (in our ACK).
func (a *anchor) lateAnswer(ctx context.Context, body []byte) ([]byte, error) {
	ans, err := sdpx.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("caller's answer: %w", err)
	}
	pts, err := sdpx.Negotiate(ans, a.pts)
	if err != nil {
		return nil, fmt.Errorf("caller's answer: %w", err)
	}
	if a.secA, err = secFromAnswer(&ans.Audio, a.secA, a.policyA); err != nil {
		return nil, fmt.Errorf("caller's answer: %w", err)
	}
	callerRTP, callerRTCP, _ := ans.Remote()
	calleeRTP, calleeRTCP, _ := a.calleeOffer.Remote()
	if err := a.connect(ctx, media.Remote{RTP: callerRTP, RTCP: callerRTCP, PayloadTypes: toMedia(pts)},
		media.Remote{RTP: calleeRTP, RTCP: calleeRTCP, PayloadTypes: toMedia(pts)}, pts); err != nil {
		return nil, err
	}
	local, _ := a.legB.Local()
	return sdpx.Rewrite(ans, a.ip, int(local.Port()), sdpx.RewriteOptions{Origin: a.originB, Codecs: pts,
		AnswerTo: a.calleeOffer, Crypto: a.secB.answer()})
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
	if a.secB, err = secFromAnswer(&ans.Audio, a.secB, a.policyB); err != nil {
		return nil, fmt.Errorf("callee's answer: %w", err)
	}
	callerRTP, callerRTCP, _ := a.offer.Remote()
	calleeRTP, calleeRTCP, _ := ans.Remote()
	remoteA := media.Remote{RTP: callerRTP, RTCP: callerRTCP, PayloadTypes: toMedia(pts)}
	remoteB := media.Remote{RTP: calleeRTP, RTCP: calleeRTCP, PayloadTypes: toMedia(pts)}
	if err := a.connect(ctx, remoteA, remoteB, pts); err != nil {
		return nil, err
	}
	local, _ := a.legA.Local()
	return sdpx.Rewrite(ans, a.ip, int(local.Port()), sdpx.RewriteOptions{Origin: a.originA, Codecs: pts,
		AnswerTo: a.offer, Crypto: a.secA.answer()})
}

// connect points the legs at the two sides, starting the relay the first
// time, and notes the codec.
func (a *anchor) connect(ctx context.Context, remoteA, remoteB media.Remote, pts []sdpx.PT) error {
	var err error
	if a.bridge == nil {
		if a.legA, err = media.NewLeg(a.pairA, media.LegConfig{Remote: remoteA, Logger: a.log.With("leg", "caller"),
			SRTP: a.secA.keys()}); err != nil {
			return err
		}
		a.pairA = nil // owned by the leg now
		if a.legB, err = media.NewLeg(a.pairB, media.LegConfig{Remote: remoteB, Logger: a.log.With("leg", "callee"),
			SRTP: a.secB.keys()}); err != nil {
			return err
		}
		a.pairB = nil
		if a.bridge, err = media.NewBridge(a.legA, a.legB); err != nil {
			return err
		}
		if err := a.bridge.Start(ctx); err != nil {
			return err
		}
	} else {
		a.legA.SetRemote(remoteA)
		a.legB.SetRemote(remoteB)
		if err := errors.Join(a.legA.SetSRTP(a.secA.keys()), a.legB.SetSRTP(a.secB.keys())); err != nil {
			return err
		}
	}
	a.log.Info("media connected", "caller_srtp", a.secA.keys(), "callee_srtp", a.secB.keys())
	for _, p := range pts {
		if p.Name != "telephone-event" {
			a.codec = p.Name
			break
		}
	}
	return nil
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
