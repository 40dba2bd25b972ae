package cdr_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

var rating = store.CDRRating{Account: "acme", Destination: "Germany mobile", Rate: money.MustParse("0.1"),
	Billed: 36, Cost: money.MustParse("0.11"), Currency: "EUR"}

func TestRecorderRate(t *testing.T) {
	t.Run("after end", func(t *testing.T) {
		s, _ := openStore(t)
		clk := &clock{t: t0}
		r, _ := newRecorder(s, clk)
		c := r.Start(context.Background(), cdr.CallInfo{CallID: "x", Caller: "alice"})
		clk.Advance(time.Second)
		c.Answered("PCMU")
		clk.Advance(31 * time.Second)
		c.End("", 200, nil)
		c.Rate(rating)
		r.Flush(context.Background())
		got := list(t, s, store.CDRFilter{})
		if len(got) != 1 || got[0].Rating != rating || got[0].Billsec != 31 || got[0].Active {
			t.Fatalf("stored %+v", got)
		}
		if c.Record().Rating != rating {
			t.Fatalf("record %+v", c.Record())
		}
	})
	t.Run("start and end lost: the rate writes the whole closed row", func(t *testing.T) {
		s, _ := openStore(t)
		f := &faultyStore{CDRs: s, fail: map[string]int{"start": 2}}
		clk := &clock{t: t0}
		r, _ := newRecorder(f, clk)
		c := r.Start(context.Background(), cdr.CallInfo{CallID: "x"})
		clk.Advance(5 * time.Second)
		c.End("", 486, nil)
		c.Rate(store.CDRRating{Account: "acme", Destination: "Germany", Rate: money.MustParse("0.02"), Currency: "EUR"})
		r.Flush(context.Background())
		got := list(t, s, store.CDRFilter{})
		if len(got) != 1 || got[0].Active || got[0].Cause != 486 || got[0].Rating.Destination != "Germany" || got[0].Duration != 5 {
			t.Fatalf("stored %+v", got)
		}
	})
	t.Run("nil call", func(t *testing.T) {
		var c *cdr.Call
		c.Rate(rating) // must not panic
	})
}

func TestExportRating(t *testing.T) {
	recs := []store.CDR{
		{ID: 1, CallID: "a", Start: t0, Billsec: 31, Rating: rating},
		{ID: 2, CallID: "b", Start: t0},
	}
	var b strings.Builder
	if err := cdr.WriteCSV(&b, recs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	want := map[string]string{"account": "acme", "destination": "Germany mobile", "rate": "0.1", "billed": "36", "cost": "0.11", "currency": "EUR"}
	for k, v := range want {
		if _, ok := col[k]; !ok {
			t.Fatalf("no %s column in %q", k, rows[0])
		}
		if got := rows[1][col[k]]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
		if got := rows[2][col[k]]; got != "" {
			t.Errorf("unrated %s = %q, want empty", k, got)
		}
	}
	b.Reset()
	if err := cdr.WriteJSON(&b, recs); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatal(err)
	}
	// Money is a decimal string in JSON, never a float.
	if got[0]["cost"] != "0.11" || got[0]["rate"] != "0.1" || got[0]["billed"] != float64(36) || got[0]["currency"] != "EUR" ||
		got[1]["cost"] != nil || got[1]["rate"] != nil {
		t.Fatalf("json %v", got)
	}
}
