package rating

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// MaxPrefix is the longest prefix a deck accepts: an E.164 number has at
// most 15 digits.
const MaxPrefix = 15

// ErrCSV marks a malformed rate deck file.
var ErrCSV = errors.New("bad rate deck")

// ParseCSV reads a rate deck (see the package documentation for the
// format). A duplicate prefix with the same effective-from is an error, as
// is any bad line: nothing is returned then.
func ParseCSV(r io.Reader) ([]store.Rate, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	type key struct {
		prefix string
		eff    int64
	}
	seen := map[key]int{}
	var out []store.Rate
	for n := 0; ; n++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCSV, err)
		}
		line, _ := cr.FieldPos(0)
		if n == 0 && isHeader(rec) {
			continue
		}
		rt, err := parseRow(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrCSV, line, err)
		}
		k := key{rt.Prefix, rt.EffectiveFrom.Unix()}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: line %d: prefix %s repeats line %d with the same effective-from", ErrCSV, line, rt.Prefix, prev)
		}
		seen[k] = line
		out = append(out, rt)
	}
	return out, nil
}

// isHeader reports whether a first line names the columns rather than
// holding a rate: its prefix cell is not a number.
func isHeader(rec []string) bool {
	if len(rec) == 0 {
		return false
	}
	_, err := ParsePrefix(rec[0])
	return err != nil && strings.IndexFunc(rec[0], func(r rune) bool { return r >= '0' && r <= '9' }) < 0
}

func parseRow(rec []string) (store.Rate, error) {
	var rt store.Rate
	if len(rec) < 6 || len(rec) > 7 {
		return rt, fmt.Errorf("%d fields; want prefix, destination, rate, connect fee, initial, increment[, effective from]", len(rec))
	}
	var err error
	if rt.Prefix, err = ParsePrefix(rec[0]); err != nil {
		return rt, err
	}
	rt.Destination = strings.TrimSpace(rec[1])
	if rt.PerMinute, err = money.Parse(rec[2]); err != nil || rt.PerMinute < 0 {
		return rt, fmt.Errorf("rate %q: want a decimal amount >= 0", rec[2])
	}
	if strings.TrimSpace(rec[3]) != "" {
		if rt.ConnectFee, err = money.Parse(rec[3]); err != nil || rt.ConnectFee < 0 {
			return rt, fmt.Errorf("connect fee %q: want a decimal amount >= 0", rec[3])
		}
	}
	if rt.Initial, err = strconv.Atoi(strings.TrimSpace(rec[4])); err != nil || rt.Initial < 0 || rt.Initial > 86400 {
		return rt, fmt.Errorf("initial increment %q: want seconds, 0 to 86400", rec[4])
	}
	if rt.Increment, err = strconv.Atoi(strings.TrimSpace(rec[5])); err != nil || rt.Increment < 1 || rt.Increment > 86400 {
		return rt, fmt.Errorf("increment %q: want seconds, 1 to 86400", rec[5])
	}
	if len(rec) == 7 && strings.TrimSpace(rec[6]) != "" {
		if rt.EffectiveFrom, err = ParseEffective(rec[6]); err != nil {
			return rt, err
		}
	}
	return rt, nil
}

// ParsePrefix checks a prefix: 1 to MaxPrefix digits, a leading '+' dropped.
func ParsePrefix(s string) (string, error) {
	p := strings.TrimPrefix(strings.TrimSpace(s), "+")
	if p == "" || len(p) > MaxPrefix || strings.Trim(p, "0123456789") != "" {
		return "", fmt.Errorf("prefix %q: want 1 to %d digits", s, MaxPrefix)
	}
	return p, nil
}

// ParseEffective reads an effective-from time: YYYY-MM-DD (midnight UTC)
// or RFC 3339.
func ParseEffective(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("effective from %q: want YYYY-MM-DD or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}
