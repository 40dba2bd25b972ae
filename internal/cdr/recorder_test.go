package cdr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

// clock is a fake clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRecorder(st store.CDRs, clk *clock) (*cdr.Recorder, *syncBuffer) {
	var logs syncBuffer
	return cdr.NewRecorder(cdr.Config{
		Store: st, Now: clk.Now, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		WriteTimeout: 200 * time.Millisecond,
	}), &logs
}

func TestRecorderDurations(t *testing.T) {
	tests := []struct {
		name        string
		answerAfter time.Duration // 0: never answered
		endAfter    time.Duration
		disposition string
		cause       int
		wantDisp    string
		duration    int
		billsec     int
	}{
		{"answered", 4500 * time.Millisecond, 65900 * time.Millisecond, store.DispositionAnswered, 200, store.DispositionAnswered, 65, 61},
		{"answered, derived", 2 * time.Second, 10 * time.Second, "", 200, store.DispositionAnswered, 10, 8},
		{"hung up at once", time.Second, 1999 * time.Millisecond, "", 200, store.DispositionAnswered, 1, 0},
		{"busy", 0, 3 * time.Second, store.DispositionBusy, 486, store.DispositionBusy, 3, 0},
		{"no answer, derived", 0, 30 * time.Second, "", 480, store.DispositionNoAnswer, 30, 0},
		{"cancelled", 0, 12500 * time.Millisecond, store.DispositionCancelled, 487, store.DispositionCancelled, 12, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t)
			clk := &clock{t: t0}
			r, logs := newRecorder(s, clk)
			c := r.Start(context.Background(), cdr.CallInfo{CallID: "cid", Caller: "alice", Callee: "bob", Dialed: "1002"})
			if c.ID() == 0 {
				t.Fatalf("start not written: %s", logs)
			}
			if recs := list(t, s, store.CDRFilter{}); len(recs) != 1 || !recs[0].Active || recs[0].Caller != "alice" {
				t.Fatalf("row after start: %+v", recs)
			}
			if tc.answerAfter > 0 {
				clk.Advance(tc.answerAfter)
				c.Answered("PCMU")
				if recs := list(t, s, store.CDRFilter{}); !recs[0].Active || !recs[0].Answer.Equal(t0.Add(tc.answerAfter)) || recs[0].Codec != "PCMU" {
					t.Fatalf("row after answer: %+v", recs[0])
				}
				clk.Advance(tc.endAfter - tc.answerAfter)
			} else {
				clk.Advance(tc.endAfter)
			}
			legs := []store.LegStats{{Leg: "caller", PacketsIn: 10}, {Leg: "callee", PacketsOut: 10}}
			got := c.End(tc.disposition, tc.cause, legs)
			if got.Duration != tc.duration || got.Billsec != tc.billsec || got.Disposition != tc.wantDisp || got.Cause != tc.cause || got.Active {
				t.Fatalf("End = %+v; want duration %d billsec %d %s", got, tc.duration, tc.billsec, tc.wantDisp)
			}
			recs := list(t, s, store.CDRFilter{})
			stored := recs[0]
			// The store keeps milliseconds.
			if stored.Duration != tc.duration || stored.Billsec != tc.billsec || stored.Disposition != tc.wantDisp ||
				stored.Active || !stored.End.Equal(t0.Add(tc.endAfter)) || !reflect.DeepEqual(stored.Legs, legs) {
				t.Fatalf("stored = %+v", stored)
			}
			if logs.String() != "" {
				t.Fatalf("unexpected logs: %s", logs)
			}
		})
	}
}

func TestRecorderCallOrdering(t *testing.T) {
	s, _ := openStore(t)
	clk := &clock{t: t0}
	r, _ := newRecorder(s, clk)
	c := r.Start(context.Background(), cdr.CallInfo{CallID: "x"})
	clk.Advance(time.Second)
	c.Answered("PCMU")
	clk.Advance(time.Second)
	c.Answered("G722") // a second answer (another fork) does not count
	clk.Advance(time.Second)
	first := c.End(store.DispositionAnswered, 200, nil)
	clk.Advance(time.Second)
	again := c.End(store.DispositionFailed, 500, nil) // only the first End counts
	c.Answered("PCMA")                                // nor an answer after it
	if !reflect.DeepEqual(first, again) || first.Codec != "PCMU" || first.Billsec != 2 || first.Duration != 3 {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	if got := list(t, s, store.CDRFilter{})[0]; got.Disposition != store.DispositionAnswered || got.Codec != "PCMU" || got.Cause != 200 {
		t.Fatalf("stored %+v", got)
	}
}

func TestRecorderIgnoresCancelledContext(t *testing.T) {
	s, _ := openStore(t)
	r, logs := newRecorder(s, &clock{t: t0})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the INVITE's transaction is already gone
	if c := r.Start(ctx, cdr.CallInfo{CallID: "x"}); c.ID() == 0 {
		t.Fatalf("start not written with a cancelled context: %s", logs)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *cdr.Recorder
	c := r.Start(context.Background(), cdr.CallInfo{CallID: "x"})
	c.Answered("PCMU")
	if got := c.End("", 200, nil); c.ID() != 0 || !reflect.DeepEqual(got, store.CDR{}) {
		t.Fatalf("nil recorder recorded %+v", got)
	}
}

// faultyStore fails or hangs chosen writes, can hold its first batch until
// released, and counts the writes of each batch.
type faultyStore struct {
	store.CDRs
	gate chan struct{} // if set, the first BatchCDRs waits for it to close
	held bool          // the first BatchCDRs is waiting on gate

	mu      sync.Mutex
	fail    map[string]int // "start", "start:CALLID", "answer", "end" -> failures left; -1 hangs
	batches []int          // writes attempted per batch
}

func (f *faultyStore) fault(ctx context.Context, keys ...string) error {
	f.mu.Lock()
	n := 0
	for _, k := range keys {
		if n = f.fail[k]; n != 0 {
			if n > 0 {
				f.fail[k] = n - 1
			}
			break
		}
	}
	f.mu.Unlock()
	switch {
	case n < 0:
		<-ctx.Done()
		return ctx.Err()
	case n > 0:
		return errors.New("disk on fire")
	}
	return nil
}

func (f *faultyStore) BatchCDRs(ctx context.Context, fn func(w store.CDRWriter) error) error {
	f.mu.Lock()
	first := f.batches == nil && !f.held
	f.held = f.held || (first && f.gate != nil)
	f.mu.Unlock()
	if first && f.gate != nil {
		<-f.gate
	}
	return f.CDRs.BatchCDRs(ctx, func(w store.CDRWriter) error {
		f.mu.Lock()
		f.batches = append(f.batches, 0)
		n := &f.batches[len(f.batches)-1]
		f.mu.Unlock()
		return fn(faultyWriter{f, w, n})
	})
}

func (f *faultyStore) StartCDR(ctx context.Context, c store.CDR) (int64, error) {
	return faultyWriter{f, f.CDRs, nil}.StartCDR(ctx, c)
}

func (f *faultyStore) AnswerCDR(ctx context.Context, id int64, at time.Time, codec string) error {
	return faultyWriter{f, f.CDRs, nil}.AnswerCDR(ctx, id, at, codec)
}

func (f *faultyStore) EndCDR(ctx context.Context, id int64, c store.CDR) error {
	return faultyWriter{f, f.CDRs, nil}.EndCDR(ctx, id, c)
}

func (f *faultyStore) RateCDR(ctx context.Context, id int64, r store.CDRRating) error {
	return faultyWriter{f, f.CDRs, nil}.RateCDR(ctx, id, r)
}

// faultyWriter injects faults into w; n, if set, counts the batch's writes.
type faultyWriter struct {
	f *faultyStore
	w store.CDRWriter
	n *int
}

func (fw faultyWriter) count() {
	if fw.n != nil {
		fw.f.mu.Lock()
		*fw.n++
		fw.f.mu.Unlock()
	}
}

func (fw faultyWriter) StartCDR(ctx context.Context, c store.CDR) (int64, error) {
	fw.count()
	if err := fw.f.fault(ctx, "start:"+c.CallID, "start"); err != nil {
		return 0, err
	}
	return fw.w.StartCDR(ctx, c)
}

func (fw faultyWriter) AnswerCDR(ctx context.Context, id int64, at time.Time, codec string) error {
	fw.count()
	if err := fw.f.fault(ctx, "answer"); err != nil {
		return err
	}
	return fw.w.AnswerCDR(ctx, id, at, codec)
}

func (fw faultyWriter) EndCDR(ctx context.Context, id int64, c store.CDR) error {
	fw.count()
	if err := fw.f.fault(ctx, "end"); err != nil {
		return err
	}
	return fw.w.EndCDR(ctx, id, c)
}

func TestRecorderSurvivesStoreFailures(t *testing.T) {
	t.Run("start fails: the answer writes the row", func(t *testing.T) {
		s, _ := openStore(t)
		f := &faultyStore{CDRs: s, fail: map[string]int{"start": 1}}
		clk := &clock{t: t0}
		r, logs := newRecorder(f, clk)
		c := r.Start(context.Background(), cdr.CallInfo{CallID: "x", Caller: "alice"})
		if c.ID() != 0 || !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), "call_id=x") {
			t.Fatalf("id %d, logs %q", c.ID(), logs)
		}
		clk.Advance(2 * time.Second)
		c.Answered("PCMU")
		clk.Advance(10 * time.Second)
		c.End(store.DispositionAnswered, 200, nil)
		got := list(t, s, store.CDRFilter{})
		if len(got) != 1 || got[0].Caller != "alice" || got[0].Billsec != 10 || got[0].Duration != 12 || got[0].Active {
			t.Fatalf("stored %+v", got)
		}
	})
	t.Run("start and answer fail: the end writes the whole row", func(t *testing.T) {
		s, _ := openStore(t)
		f := &faultyStore{CDRs: s, fail: map[string]int{"start": 2}}
		clk := &clock{t: t0}
		r, _ := newRecorder(f, clk)
		c := r.Start(context.Background(), cdr.CallInfo{CallID: "x"})
		clk.Advance(time.Second)
		c.Answered("PCMU")
		clk.Advance(5 * time.Second)
		c.End("", 200, nil)
		got := list(t, s, store.CDRFilter{})
		if len(got) != 1 || got[0].Codec != "PCMU" || got[0].Billsec != 5 || got[0].Duration != 6 || got[0].Active ||
			got[0].Disposition != store.DispositionAnswered {
			t.Fatalf("stored %+v", got)
		}
	})
	t.Run("answer fails: the end repairs it", func(t *testing.T) {
		s, _ := openStore(t)
		f := &faultyStore{CDRs: s, fail: map[string]int{"answer": 1}}
		clk := &clock{t: t0}
		r, logs := newRecorder(f, clk)
		c := r.Start(context.Background(), cdr.CallInfo{CallID: "x"})
		clk.Advance(time.Second)
		c.Answered("G722")
		clk.Advance(3 * time.Second)
		c.End("", 200, nil)
		got := list(t, s, store.CDRFilter{})
		if !got[0].Answer.Equal(t0.Add(time.Second)) || got[0].Codec != "G722" || got[0].Billsec != 3 {
			t.Fatalf("stored %+v", got[0])
		}
		if !strings.Contains(logs.String(), "op=answer") {
			t.Fatalf("logs %q", logs)
		}
	})
	t.Run("a hung store delays the call by the write timeout only", func(t *testing.T) {
		s, _ := openStore(t)
		f := &faultyStore{CDRs: s, fail: map[string]int{"end": -1}}
		r, logs := newRecorder(f, &clock{t: t0})
		c := r.Start(context.Background(), cdr.CallInfo{CallID: "x"})
		began := time.Now()
		c.End("", 486, nil)
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("End took %v with a 200ms write timeout", d)
		}
		r.Flush(context.Background())
		if !strings.Contains(logs.String(), "deadline exceeded") {
			t.Fatalf("logs %q", logs)
		}
	})
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRecorderGroupCommit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fail   map[string]int
		second func(n int) bool // writes attempted in the second transaction
	}{
		// The four starts that queued up, and maybe the first answer.
		{"one transaction for what queued up", nil, func(n int) bool { return n == 4 || n == 5 }},
		// c2's insert fails inside the batch, after c1's: the transaction
		// rolls back, then each event is retried on its own; c2's fails
		// again, and its answer writes its row. Nothing is written twice.
		{"a failure rolls back and retries one by one", map[string]int{"start:c2": 2}, func(n int) bool { return n == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			f := &faultyStore{CDRs: s, gate: make(chan struct{}), fail: tc.fail}
			clk := &clock{t: t0}
			var logs syncBuffer
			r := cdr.NewRecorder(cdr.Config{Store: f, Now: clk.Now, Log: slog.New(slog.NewTextHandler(&logs, nil)), WriteTimeout: 10 * time.Second})
			calls := make([]*cdr.Call, 5)
			var wg sync.WaitGroup
			start := func(i int) {
				defer wg.Done()
				c := r.Start(ctx, cdr.CallInfo{CallID: fmt.Sprintf("c%d", i)})
				c.Answered("PCMU")
				calls[i] = c
			}
			// The first call's start holds the writer (its transaction waits
			// on the gate) while four more calls start.
			wg.Add(1)
			go start(0)
			waitFor(t, "the first batch", func() bool {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.held
			})
			for i := 1; i < 5; i++ {
				wg.Add(1)
				go start(i)
				waitFor(t, "a start to queue", func() bool { return r.Pending() == i })
			}
			close(f.gate)
			wg.Wait()
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			batches := f.batches
			f.mu.Unlock()
			if len(batches) < 2 || batches[0] != 1 || !tc.second(batches[1]) {
				t.Errorf("writes per transaction: %v", batches)
			}
			recs := list(t, s, store.CDRFilter{})
			if len(recs) != 5 {
				t.Fatalf("%d rows, want 5: %+v", len(recs), recs)
			}
			for i, c := range calls {
				found := 0
				for _, rec := range recs {
					if rec.CallID == fmt.Sprintf("c%d", i) {
						found++
						if rec.ID != c.ID() || rec.Codec != "PCMU" || !rec.Active {
							t.Errorf("call %d: row %+v, Call.ID %d", i, rec, c.ID())
						}
					}
				}
				if found != 1 {
					t.Errorf("call %d has %d rows", i, found)
				}
			}
			if failed := strings.Contains(logs.String(), "call_id=c2 op=start"); failed != (tc.fail != nil) {
				t.Errorf("logs: %s", logs.String())
			}
		})
	}
}

func TestRecover(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	clk := &clock{t: t0}
	r, _ := newRecorder(s, clk)
	done := r.Start(ctx, cdr.CallInfo{CallID: "done"})
	ringing := r.Start(ctx, cdr.CallInfo{CallID: "ringing"})
	talking := r.Start(ctx, cdr.CallInfo{CallID: "talking"})
	clk.Advance(3 * time.Second)
	talking.Answered("PCMU")
	clk.Advance(2 * time.Second)
	done.End("", 486, nil)
	_ = ringing
	// The server dies here (SIGKILL: nothing more is written) and comes
	// back 60 s later on the same database file.
	s.Close()
	s2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	clk.Advance(60 * time.Second)
	r2, logs := newRecorder(s2, clk)
	n, err := r2.Recover(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Recover = %d, %v; want 2", n, err)
	}
	if !strings.Contains(logs.String(), "count=2") {
		t.Fatalf("recovery not logged: %q", logs)
	}
	got := map[string]store.CDR{}
	for _, c := range list(t, s2, store.CDRFilter{}) {
		got[c.CallID] = c
	}
	if c := got["done"]; c.Flags != "" || c.Disposition != store.DispositionBusy || c.Duration != 5 {
		t.Errorf("ended call touched: %+v", c)
	}
	if c := got["ringing"]; c.Flags != cdr.FlagCrashRecovered || c.Disposition != store.DispositionFailed ||
		c.Active || c.Duration != 65 || c.Billsec != 0 || !c.End.Equal(clk.Now()) {
		t.Errorf("ringing call: %+v", c)
	}
	if c := got["talking"]; c.Flags != cdr.FlagCrashRecovered || c.Disposition != store.DispositionAnswered ||
		c.Active || c.Duration != 65 || c.Billsec != 62 || c.Codec != "PCMU" {
		t.Errorf("talking call: %+v", c)
	}
	if n, err := r2.Recover(ctx); n != 0 || err != nil {
		t.Fatalf("second Recover = %d, %v", n, err)
	}
}

// BenchmarkRecorderCall measures the three writes of one call (start,
// answer, end) on SQLite, with 64 calls at a time per CPU: the store cost
// each call adds at setup and teardown, with group commit at work.
func BenchmarkRecorderCall(b *testing.B) {
	s, err := sqlite.Open(context.Background(), b.TempDir()+"/k.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := cdr.NewRecorder(cdr.Config{Store: s})
	legs := []store.LegStats{{Leg: "caller", PacketsIn: 100}, {Leg: "callee", PacketsOut: 100}}
	b.ReportAllocs()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := r.Start(context.Background(), cdr.CallInfo{CallID: "bench", Caller: "alice", Callee: "bob", Dialed: "1002"})
			c.Answered("PCMU")
			c.End(store.DispositionAnswered, 200, legs)
		}
	})
}

func (fw faultyWriter) RateCDR(ctx context.Context, id int64, r store.CDRRating) error {
	fw.count()
	if err := fw.f.fault(ctx, "rate"); err != nil {
		return err
	}
	return fw.w.RateCDR(ctx, id, r)
}

// TestRecorderTrunkLeg: the outbound leg of a calling-card call — the
// caller answered by the service, the carrier a while later — reaches the
// store with End: the last trunk tried, the number and the carrier's
// answer; a trunk recorded after End is not.
func TestRecorderTrunkLeg(t *testing.T) {
	st, _ := openStore(t)
	clk := &clock{t: t0}
	r, _ := newRecorder(st, clk)
	c := r.Start(context.Background(), cdr.CallInfo{CallID: "card@x", Caller: "alice", Callee: "8800", Dialed: "8800"})
	clk.Advance(time.Second)
	c.Answered("PCMU") // the service answers
	clk.Advance(20 * time.Second)
	c.Trunk("first", "+4930123456")
	c.Trunk("carrier", "+4930123456") // the first failed over
	clk.Advance(3 * time.Second)
	c.TrunkAnswered()
	clk.Advance(time.Second)
	c.TrunkAnswered() // only the first counts
	clk.Advance(6 * time.Second)
	c.End("", 200, nil)
	c.Trunk("late", "+1")
	got := list(t, st, store.CDRFilter{})
	if len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	g := got[0]
	if g.Trunk != "carrier" || g.Number != "+4930123456" || !g.TrunkAnswer.Equal(at(24)) || !g.Answer.Equal(at(1)) || g.Billsec != 30 {
		t.Fatalf("record: trunk %q number %q trunk answer %v answer %v billsec %d", g.Trunk, g.Number, g.TrunkAnswer, g.Answer, g.Billsec)
	}
	if rec := c.Record(); rec.Trunk != "carrier" {
		t.Fatalf("a trunk recorded after End changed the record: %q", rec.Trunk)
	}
}
