package cdr_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

// These tests run the SQLite store's CDR methods (internal/store/sqlite),
// the store this package writes through.

func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func list(t *testing.T, s store.CDRs, f store.CDRFilter) []store.CDR {
	t.Helper()
	recs, err := s.ListCDRs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)

	// An answered call: start, answer, end.
	id1, err := s.StartCDR(ctx, store.CDR{CallID: "c1@x", Caller: "alice", Callee: "bob", Dialed: "1002", Start: at(0).Add(250 * time.Millisecond)})
	if err != nil || id1 == 0 {
		t.Fatalf("StartCDR = %d, %v", id1, err)
	}
	got := list(t, s, store.CDRFilter{})
	want := store.CDR{ID: id1, CallID: "c1@x", Caller: "alice", Callee: "bob", Dialed: "1002", Start: at(0).Add(250 * time.Millisecond), Active: true}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("after start: %+v\nwant %+v", got, want)
	}
	if err := s.AnswerCDR(ctx, id1, at(5), "PCMU"); err != nil {
		t.Fatal(err)
	}
	legs := []store.LegStats{
		{Leg: "caller", PacketsIn: 3000, PacketsOut: 2990, BytesIn: 516000, BytesOut: 514280, Lost: 2, JitterMs: 1.375, StrangersDropped: 7},
		{Leg: "callee", PacketsIn: 2990, PacketsOut: 3000, BytesIn: 514280, BytesOut: 516000, Lost: -1, JitterMs: 0.5},
	}
	if err := s.EndCDR(ctx, id1, store.CDR{End: at(65), Duration: 64, Billsec: 60, Disposition: store.DispositionAnswered, Cause: 200, Legs: legs}); err != nil {
		t.Fatal(err)
	}

	// A second call, never answered.
	id2, err := s.StartCDR(ctx, store.CDR{CallID: "c2@x", Caller: "bob", Callee: "carol", Dialed: "carol", Start: at(100)})
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id1 {
		t.Fatal("same id twice")
	}
	if err := s.EndCDR(ctx, id2, store.CDR{End: at(130), Duration: 30, Disposition: store.DispositionNoAnswer, Cause: 480}); err != nil {
		t.Fatal(err)
	}

	got = list(t, s, store.CDRFilter{})
	want1 := store.CDR{ID: id1, CallID: "c1@x", Caller: "alice", Callee: "bob", Dialed: "1002",
		Start: at(0).Add(250 * time.Millisecond), Answer: at(5), End: at(65), Duration: 64, Billsec: 60,
		Disposition: store.DispositionAnswered, Cause: 200, Codec: "PCMU", Legs: legs}
	want2 := store.CDR{ID: id2, CallID: "c2@x", Caller: "bob", Callee: "carol", Dialed: "carol",
		Start: at(100), End: at(130), Duration: 30, Disposition: store.DispositionNoAnswer, Cause: 480}
	if !reflect.DeepEqual(got, []store.CDR{want1, want2}) {
		t.Fatalf("list:\n got %+v\nwant %+v", got, []store.CDR{want1, want2})
	}

	if err := s.AnswerCDR(ctx, 999, at(1), "PCMU"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AnswerCDR(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.EndCDR(ctx, 999, store.CDR{End: at(1)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EndCDR(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.StartCDR(ctx, store.CDR{CallID: "no-start"}); err == nil {
		t.Fatal("StartCDR without a start time succeeded")
	}
}

func TestStoreEndKeepsOrRepairsAnswer(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	// The answer write was lost: End brings the answer time and codec.
	id, _ := s.StartCDR(ctx, store.CDR{CallID: "a", Start: at(0)})
	if err := s.EndCDR(ctx, id, store.CDR{Answer: at(2), Codec: "G722", End: at(12), Duration: 12, Billsec: 10, Disposition: store.DispositionAnswered, Cause: 200}); err != nil {
		t.Fatal(err)
	}
	// The answer was written: an End without them keeps them.
	id2, _ := s.StartCDR(ctx, store.CDR{CallID: "b", Start: at(1), Flags: "transferred"})
	s.AnswerCDR(ctx, id2, at(3), "PCMA")
	s.EndCDR(ctx, id2, store.CDR{End: at(4), Duration: 3, Billsec: 1, Disposition: store.DispositionAnswered, Cause: 200})
	got := list(t, s, store.CDRFilter{})
	if got[0].Answer != at(2) || got[0].Codec != "G722" {
		t.Errorf("repaired answer: %v %q", got[0].Answer, got[0].Codec)
	}
	if got[1].Answer != at(3) || got[1].Codec != "PCMA" || got[1].Flags != "transferred" {
		t.Errorf("kept answer: %v %q %q", got[1].Answer, got[1].Codec, got[1].Flags)
	}
}

func TestStoreListFilter(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	// Inserted out of order: the list comes back by start time.
	for _, sec := range []int{300, 0, 200, 100, 86400} {
		if _, err := s.StartCDR(ctx, store.CDR{CallID: time.Duration(sec).String(), Start: at(sec)}); err != nil {
			t.Fatal(err)
		}
	}
	starts := func(recs []store.CDR) []int {
		var out []int
		for _, r := range recs {
			out = append(out, int(r.Start.Sub(t0)/time.Second))
		}
		return out
	}
	tests := []struct {
		name string
		f    store.CDRFilter
		want []int
	}{
		{"all", store.CDRFilter{}, []int{0, 100, 200, 300, 86400}},
		{"from inclusive", store.CDRFilter{From: at(100)}, []int{100, 200, 300, 86400}},
		{"to exclusive", store.CDRFilter{To: at(200)}, []int{0, 100}},
		{"range", store.CDRFilter{From: at(100), To: at(301)}, []int{100, 200, 300}},
		{"next day", store.CDRFilter{From: t0.AddDate(0, 0, 1)}, []int{86400}},
		{"limit keeps the latest", store.CDRFilter{Limit: 2}, []int{300, 86400}},
		{"limit within range", store.CDRFilter{To: at(250), Limit: 2}, []int{100, 200}},
		{"empty range", store.CDRFilter{From: at(1), To: at(99)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := starts(list(t, s, tc.f)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStoreCloseActive(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	ended, _ := s.StartCDR(ctx, store.CDR{CallID: "ended", Start: at(0)})
	s.EndCDR(ctx, ended, store.CDR{End: at(10), Duration: 10, Disposition: store.DispositionBusy, Cause: 486})
	ringing, _ := s.StartCDR(ctx, store.CDR{CallID: "ringing", Start: at(20)})
	talking, _ := s.StartCDR(ctx, store.CDR{CallID: "talking", Start: at(30), Flags: "transferred"})
	s.AnswerCDR(ctx, talking, at(40), "PCMU")

	n, err := s.CloseActiveCDRs(ctx, at(100).Add(900*time.Millisecond), "crash-recovered")
	if err != nil || n != 2 {
		t.Fatalf("CloseActiveCDRs = %d, %v; want 2", n, err)
	}
	got := list(t, s, store.CDRFilter{})
	want := []store.CDR{
		{ID: ended, CallID: "ended", Start: at(0), End: at(10), Duration: 10, Disposition: store.DispositionBusy, Cause: 486},
		{ID: ringing, CallID: "ringing", Start: at(20), End: at(100).Add(900 * time.Millisecond), Duration: 80,
			Disposition: store.DispositionFailed, Flags: "crash-recovered"},
		{ID: talking, CallID: "talking", Start: at(30), Answer: at(40), End: at(100).Add(900 * time.Millisecond),
			Duration: 70, Billsec: 60, Disposition: store.DispositionAnswered, Codec: "PCMU", Flags: "transferred,crash-recovered"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after close:\n got %+v\nwant %+v", got, want)
	}
	if n, err := s.CloseActiveCDRs(ctx, at(200), "crash-recovered"); n != 0 || err != nil {
		t.Fatalf("second CloseActiveCDRs = %d, %v; want 0", n, err)
	}
}

func TestStoreBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	var id int64
	err := s.BatchCDRs(ctx, func(w store.CDRWriter) error {
		var err error
		if id, err = w.StartCDR(ctx, store.CDR{CallID: "a", Start: at(0)}); err != nil {
			return err
		}
		if err := w.AnswerCDR(ctx, id, at(1), "PCMU"); err != nil {
			return err
		}
		if _, err := w.StartCDR(ctx, store.CDR{CallID: "b", Start: at(2)}); err != nil {
			return err
		}
		if err := w.AnswerCDR(ctx, 999, at(1), "PCMU"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AnswerCDR(unknown) in a batch = %v", err)
		}
		return w.EndCDR(ctx, id, store.CDR{End: at(3), Duration: 3, Billsec: 2, Disposition: store.DispositionAnswered, Cause: 200})
	})
	if err != nil {
		t.Fatal(err)
	}
	got := list(t, s, store.CDRFilter{})
	if len(got) != 2 || got[0].ID != id || got[0].Codec != "PCMU" || got[0].Active || got[0].Billsec != 2 || !got[1].Active {
		t.Fatalf("after batch: %+v", got)
	}
	// A failing batch writes nothing.
	boom := errors.New("boom")
	err = s.BatchCDRs(ctx, func(w store.CDRWriter) error {
		if _, err := w.StartCDR(ctx, store.CDR{CallID: "c", Start: at(4)}); err != nil {
			return err
		}
		if err := w.EndCDR(ctx, got[1].ID, store.CDR{End: at(5), Disposition: store.DispositionFailed}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("batch error = %v", err)
	}
	if after := list(t, s, store.CDRFilter{}); !reflect.DeepEqual(after, got) {
		t.Fatalf("a rolled back batch left %+v", after)
	}
}

// TestSetCallee: the member of a ring group who answered replaces the
// group's number as the callee when the record ends; the dialed number
// stays what the caller dialed.
func TestSetCallee(t *testing.T) {
	s, _ := openStore(t)
	r := cdr.NewRecorder(cdr.Config{Store: s})
	c := r.Start(context.Background(), cdr.CallInfo{CallID: "g@x", Caller: "alice", Callee: "600", Dialed: "600"})
	c.Answered("PCMU")
	c.SetCallee("bob")
	c.End(store.DispositionAnswered, 200, nil)
	c.SetCallee("carol") // after the end: ignored
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := list(t, s, store.CDRFilter{})
	if len(got) != 1 || got[0].Callee != "bob" || got[0].Dialed != "600" || got[0].Active {
		t.Fatalf("records %+v: want one, ended, callee bob, dialed 600", got)
	}
}
