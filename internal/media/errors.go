package media

import "errors"

// Sentinel errors; callers match them with errors.Is. The call layer turns
// ErrNoPorts into 503 Service Unavailable; the others are programming or
// configuration errors.
var (
	// ErrNoPorts means every RTP/RTCP pair of the range is in use (by our
	// calls or, for the pairs the OS refused, by other programs).
	ErrNoPorts = errors.New("media: no free RTP/RTCP port pair")
	// ErrPortRange means the configured range holds no even/odd pair or the
	// local IP is not a usable address.
	ErrPortRange = errors.New("media: bad RTP port range")
	// ErrClosed means the leg, pair or bridge was already closed.
	ErrClosed = errors.New("media: closed")
	// ErrLegInUse means the leg is already joined to a bridge.
	ErrLegInUse = errors.New("media: leg already bridged")
	// ErrSameLeg means a bridge was asked to join a leg to itself.
	ErrSameLeg = errors.New("media: cannot bridge a leg to itself")
	// ErrStarted means Start was called twice.
	ErrStarted = errors.New("media: already started")
	// ErrPayloadType means a negotiated payload type is outside 0-127 or is
	// listed twice.
	ErrPayloadType = errors.New("media: bad payload type")
	// ErrSuite means an SRTP suite is not supported or a key has the wrong
	// length for it.
	ErrSuite = errors.New("media: unsupported SRTP suite or key")
)
