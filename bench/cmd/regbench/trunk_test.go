package main

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A histogram as kaopu's /metrics gives it, read back through the
// bench's parser: the step's delta and its quantiles.
func TestBillingHistQuantile(t *testing.T) {
	before := map[string]float64{
		`kaopu_billing_start_seconds_bucket{le="0.0001"}`: 10,
		`kaopu_billing_start_seconds_bucket{le="0.0005"}`: 10,
		`kaopu_billing_start_seconds_bucket{le="0.001"}`:  10,
		`kaopu_billing_start_seconds_bucket{le="+Inf"}`:   10,
		`kaopu_billing_start_seconds_sum`:                 0.0005,
		`kaopu_billing_start_seconds_count`:               10,
		`go_goroutines`:                                   7,
	}
	after := map[string]float64{
		// 900 more ≤ 100 µs, 90 in (100, 500] µs, 9 in (0.5, 1] ms, 1 over.
		`kaopu_billing_start_seconds_bucket{le="0.0001"}`: 910,
		`kaopu_billing_start_seconds_bucket{le="0.0005"}`: 1000,
		`kaopu_billing_start_seconds_bucket{le="0.001"}`:  1009,
		`kaopu_billing_start_seconds_bucket{le="+Inf"}`:   1010,
		`kaopu_billing_start_seconds_sum`:                 0.1005,
		`kaopu_billing_start_seconds_count`:               1010,
	}
	h := billingHist(after).minus(billingHist(before))
	if h.count() != 1000 {
		t.Fatalf("count %d, want 1000", h.count())
	}
	if m := h.mean(); math.Abs(m-0.0001) > 1e-12 {
		t.Errorf("mean %v, want 0.0001", m)
	}
	// Rank 990 of 1000 falls in (100, 500] µs at 90/90 -> 500 µs.
	if q := h.quantile(0.99); math.Abs(q-0.0005) > 1e-12 {
		t.Errorf("p99 %v, want 0.0005", q)
	}
	// Rank 500 in the first bucket [0, 100] µs at 500/900.
	if q := h.quantile(0.5); math.Abs(q-0.0001*500/900) > 1e-12 {
		t.Errorf("p50 %v, want %v", q, 0.0001*500/900)
	}
	// Rank 999.9 falls in the +Inf bucket.
	if q := h.quantile(0.9999); !math.IsInf(q, 1) || fmtMs(q) != "inf" {
		t.Errorf("p99.99 %v, want +Inf", q)
	}
	if q := (hist{}).quantile(0.99); !math.IsNaN(q) || fmtMs(q) != "n/a" {
		t.Errorf("empty p99 %v, want NaN", q)
	}
	if got := fmtMs(0.00012345); got != "0.123" {
		t.Errorf("fmtMs %q", got)
	}
}

// The deck has n distinct prefixes and the dialed number's longest
// prefix in it is the one writeDeck names.
func TestWriteDeck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deck.csv")
	const number = "442079460000"
	hit, err := writeDeck(path, 5000, number)
	if err != nil {
		t.Fatal(err)
	}
	if hit != "44207946" {
		t.Fatalf("hit %q", hit)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := map[string]bool{}
	longest := ""
	for first := true; sc.Scan(); first = false {
		if first {
			continue // header
		}
		fs := strings.Split(sc.Text(), ",")
		if len(fs) != 6 {
			t.Fatalf("line %q", sc.Text())
		}
		p := fs[0]
		if seen[p] {
			t.Fatalf("prefix %s twice", p)
		}
		seen[p] = true
		if strings.HasPrefix(number, p) && len(p) > len(longest) {
			longest = p
		}
	}
	if len(seen) != 5000 {
		t.Errorf("%d prefixes, want 5000", len(seen))
	}
	if longest != hit {
		t.Errorf("longest prefix of %s in the deck %q, want %q", number, longest, hit)
	}
}
