package rating

import (
	"fmt"
	"sort"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// Deck is a rate deck ready for lookups. It is immutable, so safe for
// concurrent use.
type Deck struct {
	Name     string
	Currency string
	index    map[uint64]int32 // key(prefix) -> versions index
	versions [][]store.Rate   // per prefix, newest effective-from first
	lengths  uint16           // bit n set: some prefix has n digits
	rows     int
}

// key packs a prefix of up to 15 digits and its length into one word:
// "49" and "049" differ by their length.
func key(value uint64, n int) uint64 { return value<<4 | uint64(n) }

// NewDeck builds a deck from its rows. Rows must have valid prefixes
// (ParsePrefix) and increments >= 1; a prefix may repeat with different
// effective-from times.
func NewDeck(name, currency string, rows []store.Rate) (*Deck, error) {
	d := &Deck{Name: name, Currency: currency, index: make(map[uint64]int32, len(rows)), rows: len(rows)}
	for _, r := range rows {
		if _, err := ParsePrefix(r.Prefix); err != nil {
			return nil, fmt.Errorf("deck %s: %w", name, err)
		}
		if r.Increment < 1 || r.Initial < 0 {
			return nil, fmt.Errorf("deck %s: prefix %s: bad increments %d/%d", name, r.Prefix, r.Initial, r.Increment)
		}
		var v uint64
		for i := 0; i < len(r.Prefix); i++ {
			v = v*10 + uint64(r.Prefix[i]-'0')
		}
		k := key(v, len(r.Prefix))
		i, ok := d.index[k]
		if !ok {
			i = int32(len(d.versions))
			d.index[k] = i
			d.versions = append(d.versions, nil)
			d.lengths |= 1 << len(r.Prefix)
		}
		d.versions[i] = append(d.versions[i], r)
	}
	for _, vs := range d.versions {
		if len(vs) > 1 {
			sort.Slice(vs, func(a, b int) bool { return vs[a].EffectiveFrom.After(vs[b].EffectiveFrom) })
		}
	}
	return d, nil
}

// Len returns the number of rows, Prefixes the number of distinct prefixes.
func (d *Deck) Len() int      { return d.rows }
func (d *Deck) Prefixes() int { return len(d.versions) }

// Lookup returns the rate in effect at time at for number, E.164 digits
// with or without a leading '+': the row of the longest prefix of number
// that has a row in effect (the newest whose effective-from is not after
// at). false when no prefix matches or number is not all digits.
func (d *Deck) Lookup(number string, at time.Time) (store.Rate, bool) {
	if len(number) > 0 && number[0] == '+' {
		number = number[1:]
	}
	var keys [MaxPrefix + 1]uint64
	n := min(len(number), MaxPrefix)
	var v uint64
	for i := 0; i < n; i++ {
		c := number[i]
		if c < '0' || c > '9' {
			return store.Rate{}, false
		}
		v = v*10 + uint64(c-'0')
		keys[i+1] = key(v, i+1)
	}
	for i := n; i < len(number); i++ {
		if c := number[i]; c < '0' || c > '9' {
			return store.Rate{}, false
		}
	}
	for l := n; l >= 1; l-- {
		if d.lengths&(1<<l) == 0 {
			continue
		}
		i, ok := d.index[keys[l]]
		if !ok {
			continue
		}
		for _, r := range d.versions[i] {
			if !r.EffectiveFrom.After(at) {
				return r, true
			}
		}
	}
	return store.Rate{}, false
}
