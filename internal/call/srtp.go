package call

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/media"
	"github.com/kaopu/kaopu/internal/sdpx"
)

// Media encryption policies (config security.media_encryption).
const (
	// PolicyOptional: SRTP where the peer offers or accepts it, plain RTP
	// otherwise.
	PolicyOptional = "optional"
	// PolicyRequired: the user's legs must be SRTP; a plain offer gets 488
	// and a callee that answers plainly is hung up on.
	PolicyRequired = "required"
)

// mediaPolicy is the media encryption policy for a user's legs, the one
// place that decides it: the user's own setting (store.Policy's
// MediaEncryption) if it has one, else the global one.
func (m *Manager) mediaPolicy(user string) string {
	p := m.cfg.MediaEncryption
	if own := m.policy(user).MediaEncryption; own != "" {
		p = own
	}
	if p == PolicyRequired {
		return PolicyRequired
	}
	return PolicyOptional
}

// errSRTPRequired refuses an offer without usable SRTP under the required
// policy; OnInvite adds srtpWarning to the 488.
var errSRTPRequired = &refusal{488, "Not Acceptable Here"}

// srtpWarning explains errSRTPRequired (RFC 3261 §20.43, 399: miscellaneous).
func (m *Manager) srtpWarning() sip.Header {
	agent := m.cfg.Domain
	if agent == "" {
		agent = "kaopu"
	}
	return sip.NewHeader("Warning", fmt.Sprintf(`399 %s "Media encryption (SRTP, SDES) required"`, agent))
}

// legSec is one leg's SDES state as negotiated in SDP: the suite and tag
// in force, our key (Local: what we encrypt with, announced to this leg's
// peer) and the peer's. offered are the lines of our pending offer on this
// leg, one per suite, each with a fresh key of ours.
type legSec struct {
	on            bool
	savp          bool // our offer said RTP/SAVP
	tag           int
	suite         string
	local, remote []byte
	offered       []sdpx.Crypto
}

func suiteKeyLen(s string) int { return media.Suite(s).KeyLen() }

// keys is the leg's media.SRTP, nil for plain RTP.
func (s legSec) keys() *media.SRTP {
	if !s.on {
		return nil
	}
	return &media.SRTP{Suite: media.Suite(s.suite), Local: s.local, Remote: s.remote}
}

// answer is the a=crypto line answering the peer's offer: its tag and
// suite, our key.
func (s legSec) answer() []sdpx.Crypto {
	if !s.on {
		return nil
	}
	return []sdpx.Crypto{{Tag: s.tag, Suite: s.suite, Key: s.local}}
}

// secFromOffer reads a peer's offer: the first a=crypto line we support
// makes the leg SRTP, with a fresh key of ours (or, when cur already uses
// that suite, the key we gave before, so a re-INVITE does not re-key us).
// An offer that requires SRTP (RTP/SAVP) without a usable line, or no
// usable line under the required policy, is refused.
func secFromOffer(st *sdpx.Stream, policy string, cur *legSec) (legSec, error) {
	c, ok := st.SelectCrypto(suiteKeyLen)
	if !ok {
		if st.Secure() {
			return legSec{}, &refusal{488, "Not Acceptable Here"}
		}
		if policy == PolicyRequired {
			return legSec{}, errSRTPRequired
		}
		return legSec{}, nil
	}
	s := legSec{on: true, tag: c.Tag, suite: c.Suite, remote: c.Key}
	if cur != nil && cur.on && cur.suite == c.Suite {
		s.local = cur.local
	} else {
		var err error
		if s.local, err = media.NewKey(media.Suite(c.Suite)); err != nil {
			return legSec{}, err
		}
	}
	return s, nil
}

// offerSec prepares our offer on a leg: with srtp, one a=crypto line per
// supported suite, each with a fresh key; savp makes it RTP/SAVP.
func offerSec(srtp, savp bool) legSec {
	if !srtp {
		return legSec{}
	}
	s := legSec{savp: savp}
	for i, suite := range media.Suites() {
		key, err := media.NewKey(suite)
		if err != nil {
			continue
		}
		s.offered = append(s.offered, sdpx.Crypto{Tag: i + 1, Suite: string(suite), Key: key})
	}
	return s
}

// reofferSec is our offer on a leg inside a call: the keys in force, or
// none on a plain leg.
func reofferSec(cur legSec) legSec {
	if !cur.on {
		return legSec{}
	}
	s := cur
	s.offered = []sdpx.Crypto{{Tag: cur.tag, Suite: cur.suite, Key: cur.local}}
	return s
}

// secFromAnswer reads the peer's answer to our offer (pending): the line
// it accepted makes the leg SRTP with our key of that line; no line makes
// it plain, unless our offer was RTP/SAVP or the policy requires SRTP.
func secFromAnswer(st *sdpx.Stream, pending legSec, policy string) (legSec, error) {
	c, ok, err := st.AnswerCrypto(pending.offered, suiteKeyLen)
	if err != nil {
		return legSec{}, err
	}
	if !ok {
		if pending.savp || policy == PolicyRequired || st.Secure() {
			return legSec{}, fmt.Errorf("%w: the answer has no usable a=crypto", sdpx.ErrUnsupported)
		}
		return legSec{}, nil
	}
	s := legSec{on: true, savp: pending.savp, tag: c.Tag, suite: c.Suite, remote: c.Key}
	for _, o := range pending.offered {
		if o.Tag == c.Tag {
			s.local = o.Key
		}
	}
	return s, nil
}
