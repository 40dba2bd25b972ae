//go:build !soundcard

package sound

import (
	"errors"
	"testing"
)

// TestOpenWithoutTag: the pure-Go build says it has no sound card support
// and how to get it.
func TestOpenWithoutTag(t *testing.T) {
	c, err := Open()
	if !errors.Is(err, ErrNotBuilt) || c != nil {
		t.Fatalf("Open() = %v, %v; want ErrNotBuilt", c, err)
	}
}
