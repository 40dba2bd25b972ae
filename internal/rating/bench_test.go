package rating

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkLookup rates random numbers against a 100,000-prefix deck and
// reports the p99 of single lookups as p99-ns/op (each timed on its own,
// so it includes the clock's cost: an upper bound).
func BenchmarkLookup(b *testing.B) {
	rows := SyntheticDeck(100_000, 7)
	d, err := NewDeck("bench", "EUR", rows)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	numbers := make([]string, 4096)
	for i := range numbers {
		// Half the numbers extend a deck prefix, half are random.
		if i%2 == 0 {
			numbers[i] = rows[rng.IntN(len(rows))].Prefix + fmt.Sprint(rng.IntN(1_000_000))
		} else {
			numbers[i] = fmt.Sprint(1_000_000_000 + rng.Int64N(9_000_000_000))
		}
	}
	now := time.Now()
	samples := make([]float64, 0, b.N)
	hits := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, ok := d.Lookup(numbers[i%len(numbers)], now); ok {
			hits++
		}
		samples = append(samples, float64(time.Since(t0).Nanoseconds()))
	}
	b.StopTimer()
	if hits == 0 {
		b.Fatal("no lookup matched")
	}
	slices.Sort(samples)
	b.ReportMetric(samples[len(samples)*99/100], "p99-ns/op")
}

func BenchmarkNewDeck100k(b *testing.B) {
	rows := SyntheticDeck(100_000, 7)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewDeck("bench", "EUR", rows); err != nil {
			b.Fatal(err)
		}
	}
}
