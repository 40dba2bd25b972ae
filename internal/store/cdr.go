package store

import (
	"context"
	"time"

	"github.com/kaopu/kaopu/internal/money"
)

// Dispositions of a call detail record: how the call ended, as Asterisk's
// CDR "disposition" field names it, plus CANCELLED (see cdr.DispositionFor
// for the mapping from SIP).
const (
	DispositionAnswered  = "ANSWERED"
	DispositionNoAnswer  = "NO ANSWER"
	DispositionBusy      = "BUSY"
	DispositionFailed    = "FAILED"
	DispositionCancelled = "CANCELLED"
)

// CDR is one call detail record: a row written when a call starts and
// updated when it is answered and when it ends.
type CDR struct {
	ID     int64
	CallID string // SIP Call-ID of the caller's leg
	Caller string // user name or URI of the caller
	Callee string // user name or URI of who was called
	Dialed string // what the caller dialed: the Request-URI user

	// Start is when the call began; Answer and End are zero until reached.
	Start, Answer, End time.Time
	// Duration is End-Start and Billsec End-Answer (0 if never answered),
	// both in whole seconds.
	Duration, Billsec int

	Disposition string // one of the Disposition constants; "" while active
	Cause       int    // final SIP status, e.g. 200, 486, 487, 480
	Codec       string // negotiated audio codec, e.g. "PCMU"
	Flags       string // comma-separated notes, e.g. "crash-recovered"
	Legs        []LegStats
	Active      bool // the call has not ended (yet)
	Rating      CDRRating

	// The outbound leg through a trunk, on outbound trunk calls and on
	// calling-card calls (whose Answer is the service's): Trunk is the
	// trunk that carried it (the last one tried when none answered),
	// Number the number called (E.164, or a short code as dialed), and
	// TrunkAnswer when the carrier answered (zero: it did not).
	Trunk       string
	Number      string
	TrunkAnswer time.Time
}

// CDRRating is what a rated call cost: set on calls billed to an account
// (zero on the others).
type CDRRating struct {
	Account     string       // the account charged
	Destination string       // the rate deck's name of the destination
	Rate        money.Amount // per minute
	Billed      int          // seconds billed: billsec rounded up to increments
	Cost        money.Amount // connect fee + Rate × Billed / 60, charged
	Currency    string
}

// IsZero reports whether the call was not rated.
func (r CDRRating) IsZero() bool { return r == CDRRating{} }

// LegStats are one leg's media counters at the end of a call. "In" is what
// the leg's phone sent to the server, "out" what the server sent to it.
type LegStats struct {
	Leg                   string // "caller" or "callee"
	PacketsIn, PacketsOut uint64 // RTP packets
	BytesIn, BytesOut     uint64 // RTP bytes, header included
	// Lost is RTP packets lost from the phone (RFC 3550 §A.3; negative when
	// duplicates outnumber losses).
	Lost int64
	// JitterMs is the RFC 3550 §6.4.1 interarrival jitter of the phone's
	// stream, in milliseconds.
	JitterMs float64
	// StrangersDropped counts packets from addresses that were not the
	// phone's (RTP bleed attempts), ignored by the relay.
	StrangersDropped uint64
}

// CDRFilter selects call detail records by start time.
type CDRFilter struct {
	From time.Time // Start >= From; zero: no lower bound
	To   time.Time // Start < To; zero: no upper bound
	// Limit > 0 keeps only the Limit most recent records of the range
	// (still returned oldest first); 0 returns all.
	Limit int
}

// CDRWriter writes call detail records, one event at a time.
type CDRWriter interface {
	// StartCDR inserts c as a new, active record and returns its ID.
	// c.ID and c.Active are ignored.
	StartCDR(ctx context.Context, c CDR) (int64, error)
	// AnswerCDR records the answer time and negotiated codec.
	AnswerCDR(ctx context.Context, id int64, at time.Time, codec string) error
	// EndCDR closes a record: it sets End, Duration, Billsec, Disposition,
	// Cause and Legs from c and clears Active. Answer, Codec and Flags are
	// taken from c when set there (so an answer whose own write was lost is
	// still recorded) and kept otherwise. ErrNotFound when id is unknown.
	EndCDR(ctx context.Context, id int64, c CDR) error
	// RateCDR sets the rating columns of a record. ErrNotFound when id
	// is unknown.
	RateCDR(ctx context.Context, id int64, r CDRRating) error
}

// CDRs is call detail record storage. Each CDRWriter method called on it
// is one small transaction, so a record survives a crash at any point of
// the call.
type CDRs interface {
	CDRWriter
	// BatchCDRs runs fn in one transaction: the writes fn makes through w
	// commit together when fn returns nil, and none of them otherwise.
	// A busy server groups the events of many calls this way (group
	// commit): one commit costs far more than one row.
	BatchCDRs(ctx context.Context, fn func(w CDRWriter) error) error
	// CloseActiveCDRs closes every record still active, after a crash:
	// End = now, Duration and Billsec up to now (the Answer time is kept),
	// Disposition ANSWERED if answered and FAILED otherwise, flag added to
	// Flags. It returns how many records it closed.
	CloseActiveCDRs(ctx context.Context, now time.Time, flag string) (int, error)
	// ListCDRs returns the records selected by f, ordered by start time.
	ListCDRs(ctx context.Context, f CDRFilter) ([]CDR, error)
}
