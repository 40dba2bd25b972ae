package call

import (
	"testing"

	"github.com/kaopu/kaopu/internal/store"
)

func TestClasses(t *testing.T) {
	c := Classes{International: []string{"+", "00"}, Premium: []string{"0900", "+1900"}, Emergency: []string{"112", "911"}}
	none := store.Policy{}
	intl := store.Policy{Allow: []string{store.ClassInternational}}
	both := store.Policy{Allow: []string{store.ClassInternational, store.ClassPremium}}
	tests := []struct {
		dialed string
		p      store.Policy
		want   string
	}{
		{"alice", none, ""}, // a user name is no number
		{"1001", none, ""},  // national, not a class
		{"0044 20 7946 0000", none, store.ClassInternational}, // an escaped space (%20) is a separator
		{"0044-20-7946-0000", none, store.ClassInternational},
		{"+44(20)79460000", none, store.ClassInternational},
		{"+44(20)79460000", intl, ""},
		{"0900123456", intl, store.ClassPremium},
		{"0900123456", both, ""},
		{"+19005550100", intl, store.ClassPremium}, // premium and international: both needed
		{"+19005550100", both, ""},
		{"112", none, ""},
		{"911;phone-context=+1", none, ""},
		{"00911", none, store.ClassInternational}, // not an emergency number
		{"+", none, ""},
	}
	for _, tt := range tests {
		if got := c.forbidden(tt.dialed, tt.p); got != tt.want {
			t.Errorf("forbidden(%q, %v) = %q, want %q", tt.dialed, tt.p.Allow, got, tt.want)
		}
	}
}
