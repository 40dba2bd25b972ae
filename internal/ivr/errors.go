package ivr

import "errors"

// Errors of Answer, Play and CollectDigits. The SIP side turns the ones of
// Answer into a status: ErrNoCodec 488, ErrBadOffer 400, media.ErrNoPorts 503.
var (
	// ErrNoCodec: the offer has neither PCMU nor PCMA.
	ErrNoCodec = errors.New("ivr: no common codec (PCMU or PCMA)")
	// ErrBadOffer: the SDP offer cannot be parsed or answered.
	ErrBadOffer = errors.New("ivr: unusable SDP offer")
	// ErrClosed: the endpoint was closed (the caller hung up).
	ErrClosed = errors.New("ivr: endpoint closed")
	// ErrTimeout: CollectDigits waited longer than its timeout for the
	// next digit.
	ErrTimeout = errors.New("ivr: no digit in time")
	// ErrNoPrompt: the library has no prompt of that name.
	ErrNoPrompt = errors.New("ivr: no such prompt")
)
