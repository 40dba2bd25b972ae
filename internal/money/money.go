package money

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Amount is an exact amount of money in micro-units (10^-6) of a currency.
type Amount int64

// Scale is the number of micro-units in one unit of currency.
const Scale = 1_000_000

// Places is how many decimals an Amount holds.
const Places = 6

// Errors of Parse and MulDiv.
var (
	ErrSyntax   = errors.New("not a decimal amount")
	ErrPrecise  = errors.New("more than 6 decimals")
	ErrOverflow = errors.New("amount out of range")
)

// Units returns n whole units of currency.
func Units(n int64) Amount { return Amount(n * Scale) }

// Parse reads a decimal amount such as "12", "-3.5", "0.0125" or "+.25".
// No exponent, thousands separator or currency sign is accepted, and at
// most Places decimals.
func Parse(s string) (Amount, error) {
	in := s
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" && frac == "" || !digits(whole) || !digits(frac) || (dot && frac == "" && whole == "") {
		return 0, fmt.Errorf("%q: %w", in, ErrSyntax)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > Places {
		return 0, fmt.Errorf("%q: %w", in, ErrPrecise)
	}
	var w uint64
	if whole != "" {
		var err error
		if w, err = strconv.ParseUint(whole, 10, 64); err != nil || w > math.MaxInt64/Scale {
			return 0, fmt.Errorf("%q: %w", in, ErrOverflow)
		}
	}
	var f uint64
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", Places-len(frac)), 10, 64)
	}
	v := int64(w*Scale + f)
	if v < 0 {
		return 0, fmt.Errorf("%q: %w", in, ErrOverflow)
	}
	if neg {
		v = -v
	}
	return Amount(v), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string) Amount {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// String is the shortest exact decimal form: "12", "-3.5", "0.0125".
func (a Amount) String() string { return a.Format(0) }

// Format writes a with at least minPlaces decimals (up to Places), and
// more when they are not zero: Format(2) of 12.5 is "12.50", of 0.0125
// "0.0125". Nothing is ever rounded away.
func (a Amount) Format(minPlaces int) string {
	minPlaces = max(0, min(minPlaces, Places))
	u := uint64(a)
	sign := ""
	if a < 0 {
		sign, u = "-", uint64(-int64(a)) // MinInt64 wraps to itself, read as uint64 it is right
	}
	whole, frac := u/Scale, u%Scale
	fs := fmt.Sprintf("%06d", frac)
	fs = strings.TrimRight(fs, "0")
	if len(fs) < minPlaces {
		fs += strings.Repeat("0", minPlaces-len(fs))
	}
	if fs == "" {
		return sign + strconv.FormatUint(whole, 10)
	}
	return sign + strconv.FormatUint(whole, 10) + "." + fs
}

// MulDiv returns a × num / den exactly, rounded half up (half away from
// zero for negative results) to the micro-unit. den must be positive and
// num not negative; ErrOverflow when the result does not fit.
func MulDiv(a Amount, num, den int64) (Amount, error) {
	if den <= 0 || num < 0 {
		return 0, fmt.Errorf("muldiv %d/%d: %w", num, den, ErrSyntax)
	}
	neg := a < 0
	ua := uint64(a)
	if neg {
		ua = uint64(-int64(a))
	}
	hi, lo := bits.Mul64(ua, uint64(num))
	if hi >= uint64(den) {
		return 0, ErrOverflow
	}
	q, r := bits.Div64(hi, lo, uint64(den))
	if r >= uint64(den)-r { // r >= den/2, exactly: a half rounds up
		q++
	}
	if q > math.MaxInt64 {
		return 0, ErrOverflow
	}
	if neg {
		return -Amount(q), nil
	}
	return Amount(q), nil
}

// ParseCurrency checks an ISO 4217 style code: three letters, returned in
// upper case.
func ParseCurrency(s string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if len(c) != 3 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", fmt.Errorf("currency %q: want a three-letter code such as EUR", s)
	}
	return c, nil
}
