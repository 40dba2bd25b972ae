package money

import (
	"errors"
	"math"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
		str  string // String()
		two  string // Format(2)
	}{
		{"0", 0, "0", "0.00"},
		{"12", 12_000_000, "12", "12.00"},
		{"0.0125", 12_500, "0.0125", "0.0125"},
		{"-3.5", -3_500_000, "-3.5", "-3.50"},
		{"+.25", 250_000, "0.25", "0.25"},
		{"5.", 5_000_000, "5", "5.00"},
		{" 1.000001 ", 1_000_001, "1.000001", "1.000001"},
		{"1.50000000", 1_500_000, "1.5", "1.50"},
		{"-0.000001", -1, "-0.000001", "-0.000001"},
		{"9223372036854.775807", math.MaxInt64, "9223372036854.775807", "9223372036854.775807"},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.str {
			t.Errorf("String(%d) = %q, want %q", got, s, tc.str)
		}
		if s := got.Format(2); s != tc.two {
			t.Errorf("Format(%d, 2) = %q, want %q", got, s, tc.two)
		}
		if back, err := Parse(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q: %d, %v", got.String(), back, err)
		}
	}
	bad := []struct {
		in  string
		err error
	}{
		{"", ErrSyntax}, {".", ErrSyntax}, {"-", ErrSyntax}, {"1e3", ErrSyntax}, {"1,5", ErrSyntax},
		{"€1", ErrSyntax}, {"--1", ErrSyntax}, {"1.2.3", ErrSyntax}, {"0x10", ErrSyntax}, {"NaN", ErrSyntax},
		{"0.0000001", ErrPrecise}, {"1.1234567", ErrPrecise},
		{"9223372036854.775808", ErrOverflow}, {"99999999999999999999", ErrOverflow},
	}
	for _, tc := range bad {
		if got, err := Parse(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("Parse(%q) = %d, %v; want %v", tc.in, got, err, tc.err)
		}
	}
}

func TestMulDivRoundsHalfUpOnce(t *testing.T) {
	tests := []struct {
		a        string
		num, den int64
		want     string
	}{
		// 0.0125/min for 30 s: 0.00625 exactly.
		{"0.0125", 30, 60, "0.00625"},
		// 0.000001 × 1/2 = 0.0000005: a half rounds up.
		{"0.000001", 1, 2, "0.000001"},
		// 0.000001 × 49/100 = 0.00000049: down.
		{"0.000001", 49, 100, "0"},
		// 0.000001 × 1/3 = 0.000000333: down.
		{"0.000001", 1, 3, "0"},
		// 0.000002 × 1/3 = 0.000000666: up.
		{"0.000002", 1, 3, "0.000001"},
		// 0.1 per minute for 7 s: 0.011666… → 0.011667.
		{"0.1", 7, 60, "0.011667"},
		// negative: half away from zero.
		{"-0.000001", 1, 2, "-0.000001"},
		// large product that overflows 64 bits in the middle: 9e12 × 60 / 60.
		{"9000000000000", 60, 60, "9000000000000"},
	}
	for _, tc := range tests {
		got, err := MulDiv(MustParse(tc.a), tc.num, tc.den)
		if err != nil || got != MustParse(tc.want) {
			t.Errorf("MulDiv(%s, %d, %d) = %s, %v; want %s", tc.a, tc.num, tc.den, got, err, tc.want)
		}
	}
	if _, err := MulDiv(MustParse("9200000000000"), 61, 60); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflow not reported: %v", err)
	}
	if _, err := MulDiv(1, 1, 0); err == nil {
		t.Error("division by zero accepted")
	}
}

func TestParseCurrency(t *testing.T) {
	if c, err := ParseCurrency(" eur"); err != nil || c != "EUR" {
		t.Fatalf("eur: %q %v", c, err)
	}
	for _, bad := range []string{"", "EU", "EURO", "E1R", "€"} {
		if _, err := ParseCurrency(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "0.0125", "-3.5", "1e3", "9223372036854.775807", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if b, err := Parse(a.String()); err != nil || b != a {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, a, a.String(), b, err)
		}
	})
}
