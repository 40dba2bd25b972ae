//go:build !soundcard

package sound

// openSystem fails: the default build has no sound library (see doc.go).
func openSystem() (system, error) { return nil, ErrNotBuilt }
