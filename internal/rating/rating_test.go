package rating

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

func rate(perMin, fee string, initial, inc int) store.Rate {
	return store.Rate{PerMinute: money.MustParse(perMin), ConnectFee: money.MustParse(fee), Initial: initial, Increment: inc}
}

// TestCost is a table of calls whose costs were worked out by hand.
func TestCost(t *testing.T) {
	tests := []struct {
		name    string
		r       store.Rate
		billsec int
		billed  int
		cost    string
	}{
		// 60/60 at 0.02/min: every started minute is a minute.
		{"60/60 0s costs nothing", rate("0.02", "0", 60, 60), 0, 0, "0"},
		{"60/60 1s", rate("0.02", "0", 60, 60), 1, 60, "0.02"},    // 0.02 × 60/60
		{"60/60 60s", rate("0.02", "0", 60, 60), 60, 60, "0.02"},  // 0.02 × 60/60
		{"60/60 61s", rate("0.02", "0", 60, 60), 61, 120, "0.04"}, // 0.02 × 120/60
		// 30/6 at 0.10/min with a 0.05 connect fee.
		{"30/6 0s: no connect fee", rate("0.10", "0.05", 30, 6), 0, 0, "0"},
		{"30/6 1s", rate("0.10", "0.05", 30, 6), 1, 30, "0.10"},   // 0.05 + 0.10 × 30/60 = 0.05 + 0.05
		{"30/6 30s", rate("0.10", "0.05", 30, 6), 30, 30, "0.10"}, // same block
		{"30/6 31s", rate("0.10", "0.05", 30, 6), 31, 36, "0.11"}, // 0.05 + 0.10 × 36/60 = 0.05 + 0.06
		{"30/6 37s", rate("0.10", "0.05", 30, 6), 37, 42, "0.12"}, // 0.05 + 0.10 × 42/60 = 0.05 + 0.07
		// 1/1 at 0.0125/min: per second, rounded half up to 10^-6.
		{"1/1 7s", rate("0.0125", "0", 1, 1), 7, 7, "0.001458"},       // 0.0125 × 7/60 = 0.00145833… → 0.001458
		{"1/1 8s", rate("0.0125", "0", 1, 1), 8, 8, "0.001667"},       // 0.0125 × 8/60 = 0.00166666… → 0.001667
		{"1/1 30s", rate("0.0125", "0", 1, 1), 30, 30, "0.00625"},     // exact
		{"1/1 90s", rate("0.0125", "0", 1, 1), 90, 90, "0.01875"},     // exact
		{"1/1 half up", rate("0.00003", "0", 1, 1), 1, 1, "0.000001"}, // 0.00003/60 = 0.0000005 → up
		// 0/60: no minimum block; 60/1: a minute minimum then per second.
		{"0/60 1s", rate("0.06", "0", 0, 60), 1, 60, "0.06"},
		{"0/60 61s", rate("0.06", "0", 0, 60), 61, 120, "0.12"},
		{"60/1 59s", rate("0.06", "0", 60, 1), 59, 60, "0.06"},
		{"60/1 61s", rate("0.06", "0", 60, 1), 61, 61, "0.061"}, // 0.06 × 61/60
		{"free with fee", rate("0", "0.15", 60, 60), 3600, 3600, "0.15"},
	}
	for _, tc := range tests {
		billed, cost, err := Cost(tc.r, tc.billsec)
		if err != nil || billed != tc.billed || cost != money.MustParse(tc.cost) {
			t.Errorf("%s: Cost = %d s, %s, %v; want %d s, %s", tc.name, billed, cost, err, tc.billed, tc.cost)
		}
	}
}

func TestMaxSeconds(t *testing.T) {
	tests := []struct {
		name  string
		r     store.Rate
		avail string
		want  int
	}{
		{"60/60 two whole minutes", rate("0.02", "0", 60, 60), "0.05", 120}, // 3 min would be 0.06
		{"60/60 exactly one", rate("0.02", "0", 60, 60), "0.02", 60},
		{"60/60 not one", rate("0.02", "0", 60, 60), "0.019999", 0},
		{"30/6 with fee", rate("0.10", "0.05", 30, 6), "0.11", 36}, // 0.06 left after the fee buys 36 s
		{"30/6 first block unaffordable", rate("0.10", "0.05", 30, 6), "0.0999", 0},
		{"1/1 rounding-aware", rate("0.0125", "0", 1, 1), "0.001458", 7}, // 8 s costs 0.001667
		{"free, fee affordable", rate("0", "0.01", 60, 60), "0.01", Unlimited},
		{"free, fee not", rate("0", "0.01", 60, 60), "0", 0},
		{"negative balance", rate("0.01", "0", 1, 1), "-1", 0},
		{"huge balance", rate("0.01", "0", 1, 1), "9000000000000", Unlimited},
	}
	for _, tc := range tests {
		if got := MaxSeconds(tc.r, money.MustParse(tc.avail)); got != tc.want {
			t.Errorf("%s: MaxSeconds = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestMaxSecondsInvertsCost checks on random rates that MaxSeconds is the
// longest affordable call: it costs at most the money, one second more
// costs more.
func TestMaxSecondsInvertsCost(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	incs := [][2]int{{60, 60}, {30, 6}, {1, 1}, {0, 60}, {60, 1}, {45, 15}, {0, 1}}
	for i := 0; i < 20000; i++ {
		in := incs[rng.IntN(len(incs))]
		r := store.Rate{PerMinute: money.Amount(1 + rng.Int64N(2_000_000)), ConnectFee: money.Amount(rng.Int64N(3) * rng.Int64N(100_000)),
			Initial: in[0], Increment: in[1]}
		avail := money.Amount(rng.Int64N(20_000_000))
		s := MaxSeconds(r, avail)
		if s > 0 {
			if _, c, _ := Cost(r, s); c > avail {
				t.Fatalf("%+v avail %s: %d s costs %s", r, avail, s, c)
			}
			if Billed(r, s) != s {
				t.Fatalf("%+v: %d s is not on an increment boundary", r, s)
			}
		}
		if _, c, _ := Cost(r, s+1); c <= avail {
			t.Fatalf("%+v avail %s: max %d s but %d s costs only %s", r, avail, s, s+1, c)
		}
	}
}

func TestParseCSV(t *testing.T) {
	in := `prefix,destination,rate,connect,initial,increment,effective
# a comment
+49, Germany, 0.02, 0, 60, 60
4915,Germany mobile,0.10,0.05,30,6
4915,Germany mobile,0.08,,30,6,2025-01-01
"33","France, fixed",0.0125,0,1,1,2025-06-01T12:00:00+02:00
`
	got, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Rate{
		{Prefix: "49", Destination: "Germany", PerMinute: money.MustParse("0.02"), Initial: 60, Increment: 60},
		{Prefix: "4915", Destination: "Germany mobile", PerMinute: money.MustParse("0.10"), ConnectFee: money.MustParse("0.05"), Initial: 30, Increment: 6},
		{Prefix: "4915", Destination: "Germany mobile", PerMinute: money.MustParse("0.08"), Initial: 30, Increment: 6,
			EffectiveFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Prefix: "33", Destination: "France, fixed", PerMinute: money.MustParse("0.0125"), Initial: 1, Increment: 1,
			EffectiveFrom: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// No header is fine too.
	if got, err := ParseCSV(strings.NewReader("1,USA,0.01,0,6,6\n")); err != nil || len(got) != 1 {
		t.Fatalf("headerless: %+v %v", got, err)
	}
	bad := map[string]string{
		"short row":       "49,Germany,0.02,0,60\n",
		"float exponent":  "49,Germany,2e-2,0,60,60\n",
		"negative rate":   "49,Germany,-0.02,0,60,60\n",
		"zero increment":  "49,Germany,0.02,0,60,0\n",
		"letters":         "49a,Germany,0.02,0,60,60\n",
		"too long":        "1234567890123456,X,0.02,0,60,60\n",
		"bad date":        "49,Germany,0.02,0,60,60,tomorrow\n",
		"duplicate":       "49,Germany,0.02,0,60,60\n49,Germany,0.03,0,60,60\n",
		"7 decimals":      "49,Germany,0.0000001,0,60,60\n",
		"second header":   "prefix,a,b,c,d,e\nprefix,a,b,c,d,e\n",
		"header then bad": "prefix,a,b,c,d,e\n49,G,x,0,60,60\n",
	}
	for name, in := range bad {
		if got, err := ParseCSV(strings.NewReader(in)); !errors.Is(err, ErrCSV) || got != nil {
			t.Errorf("%s: %+v, %v; want ErrCSV", name, got, err)
		}
	}
	if _, err := ParseCSV(strings.NewReader("prefix,a\n49,G,x,0,60,60\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error does not name the line: %v", err)
	}
}

func TestLookup(t *testing.T) {
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	feb := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	rows := []store.Rate{
		{Prefix: "4", Destination: "Zone 4", Increment: 1},
		{Prefix: "49", Destination: "Germany", Increment: 1},
		{Prefix: "4915", Destination: "Germany mobile old", Increment: 1},
		{Prefix: "4915", Destination: "Germany mobile jan", Increment: 1, EffectiveFrom: jan},
		{Prefix: "491570", Destination: "Germany mobile premium from feb", Increment: 1, EffectiveFrom: feb},
		{Prefix: "049", Destination: "leading zero", Increment: 1},
		{Prefix: "123456789012345", Destination: "fifteen", Increment: 1},
	}
	d, err := NewDeck("t", "EUR", rows)
	if err != nil {
		t.Fatal(err)
	}
	dec := jan.Add(-time.Hour)
	tests := []struct {
		number string
		at     time.Time
		want   string // "" no match
	}{
		{"+4930123456", jan, "Germany"},
		{"4930123456", jan, "Germany"},
		{"41", jan, "Zone 4"},
		{"4915112345678", dec, "Germany mobile old"},
		{"4915112345678", jan, "Germany mobile jan"}, // newest row whose date has passed
		{"4915701234567", jan, "Germany mobile jan"}, // the longer prefix is not in effect yet
		{"4915701234567", feb, "Germany mobile premium from feb"},
		{"04912", jan, "leading zero"},
		{"0", jan, ""},
		{"33123", jan, ""},
		{"", jan, ""},
		{"+", jan, ""},
		{"49x1", jan, ""},
		{"4930 123", jan, ""},
		{"1234567890123456789", jan, "fifteen"}, // digits beyond 15 never match a longer prefix
	}
	for _, tc := range tests {
		r, ok := d.Lookup(tc.number, tc.at)
		if got := r.Destination; ok != (tc.want != "") || got != tc.want {
			t.Errorf("Lookup(%q, %s) = %q, %v; want %q", tc.number, tc.at.Format(time.DateOnly), got, ok, tc.want)
		}
	}
	if d.Len() != 7 || d.Prefixes() != 6 {
		t.Fatalf("len %d prefixes %d", d.Len(), d.Prefixes())
	}
	if _, err := NewDeck("t", "EUR", []store.Rate{{Prefix: "4a", Increment: 1}}); err == nil {
		t.Fatal("bad prefix accepted")
	}
}

// SyntheticDeck returns n distinct prefixes shaped like a carrier's deck:
// country codes followed by 2 to 7 further digits.
func SyntheticDeck(n int, seed uint64) []store.Rate {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	ccs := []string{"1", "7", "20", "27", "30", "31", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
		"51", "52", "54", "55", "56", "57", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92",
		"212", "213", "234", "254", "351", "352", "353", "358", "380", "420", "852", "880", "971", "972", "974", "998"}
	seen := make(map[string]bool, n)
	out := make([]store.Rate, 0, n)
	for _, cc := range ccs {
		seen[cc] = true
		out = append(out, store.Rate{Prefix: cc, Destination: "CC " + cc, PerMinute: money.Amount(10_000 + rng.Int64N(500_000)), Initial: 60, Increment: 60})
	}
	for len(out) < n {
		p := ccs[rng.IntN(len(ccs))] + fmt.Sprint(10_000_000 + rng.IntN(90_000_000))[:2+rng.IntN(5)]
		if seen[p] || len(p) > MaxPrefix {
			continue
		}
		seen[p] = true
		out = append(out, store.Rate{Prefix: p, Destination: "Dest " + p, PerMinute: money.Amount(1_000 + rng.Int64N(2_000_000)),
			ConnectFee: money.Amount(rng.Int64N(2) * 50_000), Initial: 30, Increment: 6})
	}
	return out
}
