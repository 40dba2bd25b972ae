package ua

import (
	"errors"
	"strconv"
)

var (
	// ErrNotAcceptable: the other side's SDP has nothing this agent can
	// use (no common codec, SRTP required but absent...): answered 488.
	ErrNotAcceptable = errors.New("ua: media not acceptable")
	// ErrBadTarget: a call or message target that is not a SIP address, a
	// user or an extension, or a bare user with no server to ask.
	ErrBadTarget = errors.New("ua: bad target")
	// ErrCallState: the operation does not fit the call's state (answer
	// an outgoing call, hold one not yet answered...).
	ErrCallState = errors.New("ua: wrong call state")
	// ErrRejected: the other side answered with a final failure status;
	// the *StatusError in the chain has it.
	ErrRejected = errors.New("ua: rejected")
	// ErrClosed: the agent was closed.
	ErrClosed = errors.New("ua: agent closed")
)

// StatusError is a SIP final response that ended a request.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string { return "ua: " + strconv.Itoa(e.Code) + " " + e.Reason }

// Unwrap lets errors.Is(err, ErrRejected) match.
func (e *StatusError) Unwrap() error { return ErrRejected }
