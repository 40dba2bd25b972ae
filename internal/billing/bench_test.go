package billing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// syntheticRates is n distinct prefixes: country codes then 2 to 6 digits.
func syntheticRates(n int) []store.Rate {
	rng := rand.New(rand.NewPCG(5, 6))
	ccs := []string{"1", "7", "20", "30", "31", "33", "34", "39", "41", "43", "44", "46", "48", "49", "55", "61", "81", "86", "91", "234", "351", "380", "971"}
	seen := map[string]bool{}
	var out []store.Rate
	for _, cc := range ccs {
		seen[cc] = true
		out = append(out, store.Rate{Prefix: cc, Destination: "CC " + cc, PerMinute: money.MustParse("0.05"), Initial: 60, Increment: 60})
	}
	for len(out) < n {
		p := ccs[rng.IntN(len(ccs))] + fmt.Sprint(100_000_000 + rng.IntN(900_000_000))[1:3+rng.IntN(5)]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, store.Rate{Prefix: p, Destination: "D " + p, PerMinute: money.Amount(1_000 + rng.Int64N(500_000)),
			ConnectFee: money.Amount(rng.Int64N(2) * 10_000), Initial: 30, Increment: 6})
	}
	return out
}

// BenchmarkStart measures Biller.Start — the user's account, its balance
// under the account lock (both cached after each account's first call,
// see cache.go), the 100,000-prefix deck lookup and the reservation — on
// a SQLite store, with 1,000 other calls holding
// reservations on the same 100 accounts and the benchmark's goroutines
// starting calls in parallel. It reports the p99 of Start as p99-us/op.
// Each started call is ended unanswered (no ledger write), outside the
// timed part.
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	rows := syntheticRates(100_000)
	if err := s.ImportRates(ctx, store.RateDeck{Name: "big", Currency: "EUR", Created: t0}, rows, false); err != nil {
		b.Fatal(err)
	}
	const accounts, usersPer = 100, 10
	for a := range accounts {
		var users []string
		for u := range usersPer {
			users = append(users, fmt.Sprintf("u%d_%d", a, u))
		}
		addAccount(b, s, fmt.Sprintf("a%d", a), store.Prepaid, "1000000", "0", "big", "EUR", users...)
	}
	bl := New(Config{Store: s})
	// 1,000 live calls: every user has one up.
	for a := range accounts {
		for u := range usersPer {
			if _, err := bl.Start(ctx, fmt.Sprintf("u%d_%d", a, u), rows[(a*usersPer+u)%len(rows)].Prefix+"1234", "held"); err != nil {
				b.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	type job struct{ user, number string }
	jobs := make([]job, 4096)
	for i := range jobs {
		jobs[i] = job{fmt.Sprintf("u%d_%d", rng.IntN(accounts), rng.IntN(usersPer)), rows[rng.IntN(len(rows))].Prefix + fmt.Sprint(rng.IntN(1_000_000))}
	}
	var mu sync.Mutex
	var all []time.Duration
	var next int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			mu.Lock()
			j := jobs[next%int64(len(jobs))]
			next++
			mu.Unlock()
			t := time.Now()
			r, err := bl.Start(ctx, j.user, j.number, "bench")
			mine = append(mine, time.Since(t))
			if err != nil {
				b.Error(err)
				return
			}
			r.End(ctx, 0, 0)
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1000, "p99-us/op")
		b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1000, "p50-us/op")
	}
}
