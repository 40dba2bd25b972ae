package cdr

import "github.com/kaopu/kaopu/internal/store"

// DispositionFor maps how a call ended to its CDR disposition, with the
// meanings Asterisk gives its CDR disposition field, so that billing and
// reporting tools written for Asterisk read kaopu's records the same way:
//
//   - ANSWERED: the call was answered (a 2xx reached the caller), however
//     it ended afterwards.
//   - CANCELLED: the caller gave up before an answer (its CANCEL, or a 487
//     Request Terminated as the final status). Asterisk reports this case
//     as NO ANSWER; kaopu keeps it apart because "the caller hung up while
//     ringing" and "nobody picked up" are different complaints.
//   - BUSY: the callee refused: 486 Busy Here, 600 Busy Everywhere, 603
//     Decline (Asterisk's AST_CAUSE_BUSY / CALL_REJECTED).
//   - NO ANSWER: it rang out: 408 Request Timeout or 480 Temporarily
//     Unavailable, which is also what kaopu's own no-answer timer sends
//     (Asterisk's AST_CAUSE_NO_ANSWER).
//   - FAILED: anything else: no route (404), not acceptable (488), server
//     errors, or no final status at all (status 0).
//
// status is the final SIP status the caller received (RFC 3261 §21), 0 if
// none; answered tells whether a 2xx was received; cancelled whether the
// caller sent CANCEL. The order above is the order of precedence.
func DispositionFor(status int, answered, cancelled bool) string {
	switch {
	case answered || (status >= 200 && status < 300):
		return store.DispositionAnswered
	case cancelled || status == 487:
		return store.DispositionCancelled
	case status == 486 || status == 600 || status == 603:
		return store.DispositionBusy
	case status == 408 || status == 480:
		return store.DispositionNoAnswer
	default:
		return store.DispositionFailed
	}
}
