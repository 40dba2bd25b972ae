package call

import (
	"strings"

	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/store"
)

// Destination classes: numbers whose calls cost real money (international,
// premium rate) are what a stolen password is used for, so a user needs an
// explicit permission for each class (store.Policy.Allow). Emergency
// numbers are never refused.

// Classes lists the dialed-number prefixes of each class.
type Classes struct {
	International, Premium []string
	Emergency              []string // whole numbers
}

// emergency reports whether a dialed user part is an emergency number.
func (c Classes) emergency(dialed string) bool {
	n, ok := dialplan.Clean(dialed)
	if !ok {
		return false
	}
	for _, e := range c.Emergency {
		if n == e {
			return true
		}
	}
	return false
}

// forbidden returns the first class of dialed the policy does not allow,
// "" when the call may go ahead.
func (c Classes) forbidden(dialed string, p store.Policy) string {
	n, ok := dialplan.Clean(dialed)
	if !ok || c.emergency(dialed) {
		return ""
	}
	for _, cl := range []struct {
		name     string
		prefixes []string
	}{{store.ClassPremium, c.Premium}, {store.ClassInternational, c.International}} {
		for _, pre := range cl.prefixes {
			if strings.HasPrefix(n, pre) && !p.Allows(cl.name) {
				return cl.name
			}
		}
	}
	return ""
}
