package cdr

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// FlagCrashRecovered marks a record that Recover closed because the server
// stopped while the call was up: its end time is the restart time, not the
// moment the call really ended.
const FlagCrashRecovered = "crash-recovered"

// DefaultWriteTimeout bounds each wait for a store write when
// Config.WriteTimeout is 0.
const DefaultWriteTimeout = 2 * time.Second

const (
	// maxBatch caps the events committed in one transaction.
	maxBatch = 256
	// maxPending caps the events waiting for the store; beyond it (the
	// store has been stuck for a while) new events are dropped and logged
	// rather than held in memory without bound.
	maxPending = 16384
)

// Config is what a Recorder needs.
type Config struct {
	Store store.CDRs
	// Log receives write failures and recovery counts; nil discards.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// WriteTimeout bounds how long a call waits for one of its writes,
	// and each store transaction; 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
}

// Recorder writes call detail records. It is safe for concurrent use; a
// nil *Recorder records nothing (its Start returns a nil *Call, whose
// methods do nothing).
//
// The events of every call go, in order, to one writer goroutine, started
// when there is work and gone after a second with none, which commits
// whatever has queued up in one transaction (group commit): under load the
// store pays one commit per batch rather than three per call. A call waits
// until its event is committed, but at most WriteTimeout; an event still
// queued then is written later all the same.
type Recorder struct {
	st      store.CDRs
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration

	mu      sync.Mutex
	queue   []*op
	busy    bool          // events are queued or being written
	idle    chan struct{} // closed when busy turns false
	running bool          // the writer goroutine exists
	wake    chan struct{} // tells a waiting writer there is work
}

// NewRecorder returns a Recorder writing to cfg.Store.
func NewRecorder(cfg Config) *Recorder {
	r := &Recorder{st: cfg.Store, log: cfg.Log, now: cfg.Now, timeout: cfg.WriteTimeout}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.timeout <= 0 {
		r.timeout = DefaultWriteTimeout
	}
	r.wake = make(chan struct{}, 1)
	return r
}

// CallInfo is what is known of a call when it starts.
type CallInfo struct {
	CallID string // SIP Call-ID of the caller's leg
	Caller string // authenticated user name, or the From URI
	Callee string // user name, or the target URI
	Dialed string // Request-URI user, as dialed
}

// Recover closes the records a crash left active, flagging them
// FlagCrashRecovered, and returns how many it closed. Call it once at
// start-up, before taking calls.
func (r *Recorder) Recover(ctx context.Context) (int, error) {
	if r == nil {
		return 0, nil
	}
	n, err := r.st.CloseActiveCDRs(ctx, r.now(), FlagCrashRecovered)
	if err != nil {
		r.log.ErrorContext(ctx, "cdr: closing records left active by a crash", "error", err)
		return 0, err
	}
	if n > 0 {
		r.log.WarnContext(ctx, "cdr: closed records left active by a crash", "count", n, "flag", FlagCrashRecovered)
	}
	return n, nil
}

// Flush waits until every queued event has been written (or has failed),
// for an orderly shutdown before the store is closed.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if !r.busy {
		r.mu.Unlock()
		return nil
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start opens the record of a call now and writes it, waiting at most the
// write timeout. ctx's cancellation is deliberately ignored: a record is
// written even when the INVITE's transaction has already gone.
func (r *Recorder) Start(ctx context.Context, info CallInfo) *Call {
	if r == nil {
		return nil
	}
	c := &Call{r: r, log: r.log.With("call_id", info.CallID)}
	c.rec = store.CDR{
		CallID: info.CallID, Caller: info.Caller, Callee: info.Callee, Dialed: info.Dialed,
		Start: r.now(), Active: true,
	}
	c.wait(ctx, r.submit(c, opStart, c.rec))
	return c
}

// Call is the record of one call in progress. Its methods are safe for
// concurrent use; their writes reach the store in the order of the calls.
type Call struct {
	r   *Recorder
	log *slog.Logger
	id  atomic.Int64 // the row's ID, set by the writer once it exists

	mu    sync.Mutex
	rec   store.CDR // the record as the call knows it; rec.ID unused
	ended bool
}

// ID returns the record's ID, 0 while its row is not written.
func (c *Call) ID() int64 {
	if c == nil {
		return 0
	}
	return c.id.Load()
}

// Answered records that the call was answered now with codec. Only the
// first answer counts; an answer after End is ignored.
func (c *Call) Answered(codec string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.ended || !c.rec.Answer.IsZero() {
		c.mu.Unlock()
		return
	}
	c.rec.Answer, c.rec.Codec = c.r.now(), codec
	o := c.r.submit(c, opAnswer, c.snapshot())
	c.mu.Unlock()
	c.wait(context.Background(), o)
}

// SetCallee names who the call reached when that is known only once it
// is answered (the member of a ring group); the end write records it.
func (c *Call) SetCallee(callee string) {
	if c == nil || callee == "" {
		return
	}
	c.mu.Lock()
	if !c.ended {
		c.rec.Callee = callee
	}
	c.mu.Unlock()
}

// Trunk records the outbound leg of the call: the trunk it goes out
// through and the number called there (E.164, or a short code). A call
// that tries several trunks records each in turn: the last one counts.
// It reaches the store with End.
func (c *Call) Trunk(trunk, number string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended {
		c.rec.Trunk, c.rec.Number = trunk, number
	}
}

// TrunkAnswered records that the carrier answered the outbound leg now.
// Only the first answer counts; it reaches the store with End.
func (c *Call) TrunkAnswered() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ended && c.rec.TrunkAnswer.IsZero() {
		c.rec.TrunkAnswer = c.r.now()
	}
}

// Flag adds a note to the record's flags (comma-separated), such as why
// the server hung up; it reaches the store with End. A flag already there
// is not added twice.
func (c *Call) Flag(flag string) {
	if c == nil || flag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || slices.Contains(strings.Split(c.rec.Flags, ","), flag) {
		return
	}
	if c.rec.Flags != "" {
		c.rec.Flags += ","
	}
	c.rec.Flags += flag
}

// End closes the record now and returns it. disposition is one of the
// store.Disposition constants (see DispositionFor); "" derives it from
// cause and whether the call was answered. cause is the final SIP status.
// legs are the media counters of each leg. Only the first End counts;
// later ones return the record unchanged.
func (c *Call) End(disposition string, cause int, legs []store.LegStats) store.CDR {
	if c == nil {
		return store.CDR{}
	}
	c.mu.Lock()
	if c.ended {
		defer c.mu.Unlock()
		return c.snapshot()
	}
	c.ended = true
	answered := !c.rec.Answer.IsZero()
	if disposition == "" {
		disposition = DispositionFor(cause, answered, false)
	}
	rec := &c.rec
	rec.End = c.r.now()
	rec.Duration = seconds(rec.End.Sub(rec.Start))
	if answered {
		rec.Billsec = seconds(rec.End.Sub(rec.Answer))
	}
	rec.Disposition, rec.Cause, rec.Active = disposition, cause, false
	rec.Legs = append([]store.LegStats(nil), legs...)
	o := c.r.submit(c, opEnd, c.snapshot())
	c.mu.Unlock()
	c.wait(context.Background(), o)
	return c.Record()
}

// Rate records what the call cost (see internal/billing), usually right
// after End, when the billed seconds are known. The last Rate counts.
func (c *Call) Rate(r store.CDRRating) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.rec.Rating = r
	o := c.r.submit(c, opRate, c.snapshot())
	c.mu.Unlock()
	c.wait(context.Background(), o)
}

// Record returns a copy of the record as the Call knows it.
func (c *Call) Record() store.CDR {
	if c == nil {
		return store.CDR{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshot()
}

// snapshot copies the record; c.mu is held.
func (c *Call) snapshot() store.CDR {
	r := c.rec
	r.ID = c.id.Load()
	r.Legs = append([]store.LegStats(nil), c.rec.Legs...)
	return r
}

// wait blocks until o is written or the write timeout passes. Failures
// are logged by the writer, which also sees those nobody waits for.
func (c *Call) wait(ctx context.Context, o *op) {
	t := time.NewTimer(c.r.timeout)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
		c.log.WarnContext(ctx, "cdr: write still pending; the call goes on", "op", o.kind.String(), "timeout", c.r.timeout)
	}
}

// seconds is d in whole seconds, truncated; never negative.
func seconds(d time.Duration) int {
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}

type opKind uint8

const (
	opStart opKind = iota
	opAnswer
	opEnd
	opRate
)

func (k opKind) String() string {
	return [...]string{"start", "answer", "end", "rate"}[k]
}

// op is one event of one call, waiting for the writer.
type op struct {
	call *Call
	kind opKind
	rec  store.CDR     // the call's record when the event happened
	done chan struct{} // closed once written or failed
	err  error         // set before done is closed
}

// submit queues an event and makes sure the writer runs. The caller holds
// c.mu (or c is not shared yet), so a call's events queue in order.
func (r *Recorder) submit(c *Call, kind opKind, rec store.CDR) *op {
	o := &op{call: c, kind: kind, rec: rec, done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) >= maxPending {
		o.err = ErrBacklog
		c.log.Error("cdr: write dropped", "op", kind.String(), "error", ErrBacklog)
		close(o.done)
		return o
	}
	r.queue = append(r.queue, o)
	if !r.busy {
		r.busy = true
		r.idle = make(chan struct{})
	}
	if !r.running {
		r.running = true
		go r.drain()
		return o
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return o
}

const (
	// gather is how long the writer lets events accumulate before a
	// transaction that would carry only a few: one commit for many events
	// costs the store far less than one each, for at most this much delay.
	gather = time.Millisecond
	// gatherEnough is the batch size that is written without waiting.
	gatherEnough = 32
	// writerIdle is how long the writer goroutine waits for work before
	// it exits; kept alive under load it keeps its grown stack.
	writerIdle = time.Second
)

// drain is the writer: it commits the queue in batches, waits for more,
// and exits after writerIdle with nothing to do.
func (r *Recorder) drain() {
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			if r.busy {
				r.busy = false
				r.queue = nil // let a burst's backing array go
				close(r.idle)
			}
			r.mu.Unlock()
			idle.Reset(writerIdle)
			select {
			case <-r.wake:
				continue
			case <-idle.C:
			}
			r.mu.Lock()
			if len(r.queue) == 0 {
				r.running = false
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			continue
		}
		if len(r.queue) < gatherEnough {
			r.mu.Unlock()
			time.Sleep(gather)
			r.mu.Lock()
		}
		n := min(len(r.queue), maxBatch)
		batch := append([]*op(nil), r.queue[:n]...)
		r.queue = append(r.queue[:0], r.queue[n:]...)
		r.mu.Unlock()
		r.write(batch)
	}
}

// write commits a batch in one transaction. If the transaction fails for
// another reason than the store being too slow, the events are retried one
// by one, so that one bad event does not lose the others.
func (r *Recorder) write(batch []*op) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	var inserted []*Call // rows this transaction created, to forget on rollback
	err := r.st.BatchCDRs(ctx, func(w store.CDRWriter) error {
		inserted = inserted[:0]
		for _, o := range batch {
			o.err = o.apply(ctx, w, &inserted)
			if o.err != nil && !errors.Is(o.err, store.ErrNotFound) {
				return o.err
			}
		}
		return nil
	})
	timedOut := ctx.Err() != nil
	cancel()
	if err != nil {
		for _, c := range inserted {
			c.id.Store(0)
		}
		for _, o := range batch {
			o.err = err
			if len(batch) > 1 && !timedOut {
				ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
				o.err = o.apply(ctx, r.st, nil)
				cancel()
			}
		}
	}
	for _, o := range batch {
		if o.err != nil {
			o.call.log.Error("cdr: write failed", "op", o.kind.String(), "cdr", o.call.id.Load(), "error", o.err)
		}
		close(o.done)
	}
}

// apply writes one event through w. A call whose row does not exist (its
// start write failed) gets it inserted whole, with everything known so far.
func (o *op) apply(ctx context.Context, w store.CDRWriter, inserted *[]*Call) error {
	c := o.call
	id := c.id.Load()
	if id == 0 {
		var err error
		if id, err = w.StartCDR(ctx, o.rec); err != nil {
			return err
		}
		c.id.Store(id)
		if inserted != nil {
			*inserted = append(*inserted, c)
		}
		if o.kind == opStart || o.kind == opAnswer {
			return nil
		}
		if o.kind == opRate && !o.rec.Active {
			// The end write was lost too: the row just inserted is
			// still marked active.
			if err := w.EndCDR(ctx, id, o.rec); err != nil {
				return err
			}
		}
	}
	switch o.kind {
	case opAnswer:
		return w.AnswerCDR(ctx, id, o.rec.Answer, o.rec.Codec)
	case opEnd:
		return w.EndCDR(ctx, id, o.rec)
	case opRate:
		return w.RateCDR(ctx, id, o.rec.Rating)
	}
	return nil
}
