//go:build !opus

package codec

import "testing"

// TestNoOpusWithoutTag: the pure-Go build has no Opus to offer.
func TestNoOpusWithoutTag(t *testing.T) {
	if _, ok := Lookup("opus"); ok {
		t.Error("Lookup(opus) succeeded in the pure-Go build")
	}
	for _, c := range All() {
		if c.Channels > 1 || c.ClockRate == 48000 {
			t.Errorf("pure-Go build lists %+v", c)
		}
	}
}
