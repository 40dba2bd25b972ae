package sdpx

import "math/rand/v2"

// Origin is the server's o= line on one leg of a call (RFC 4566 §5.2): the
// call keeps one per leg and passes it to every Rewrite for that leg. Its
// session id stays the same for the life of the leg; Rewrite increments
// its version whenever the SDP it writes differs from the previous one on
// the leg and keeps it when nothing changed, as RFC 3264 §8 requires (a
// re-INVITE that only refreshes the session then carries the same
// version). So call Rewrite only for SDP that is really sent.
//
// An Origin is not safe for concurrent use; a leg's signalling is
// serialised anyway.
type Origin struct {
	// Username is the o= user name; "kaopu" when empty.
	Username string
	// SessionID is the o= sess-id.
	SessionID uint64
	// Version is the o= sess-version of the last SDP written.
	Version uint64

	digest uint64 // FNV-1a of the last SDP written, less its o= line
	used   bool
}

// NewOrigin returns an Origin with a random session id. Ids stay below
// 2^62 so that peers that parse them as signed 64-bit numbers cope.
func NewOrigin() *Origin {
	return &Origin{SessionID: rand.Uint64() >> 2, Version: 1}
}

// stamp records the SDP about to be sent (less its v= and o= lines) and
// returns the version to write in it.
func (o *Origin) stamp(rest []byte) uint64 {
	d := uint64(14695981039346656037)
	for _, c := range rest {
		d ^= uint64(c)
		d *= 1099511628211
	}
	if o.used && d != o.digest {
		o.Version++
	}
	o.used, o.digest = true, d
	return o.Version
}

func (o *Origin) username() string {
	if o.Username == "" || !isToken(o.Username) {
		return "kaopu"
	}
	return o.Username
}
