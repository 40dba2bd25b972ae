//go:build !opus

package codec

// tagged lists the codecs of optional build tags: none in this build (the
// opus tag adds Opus, see opus.go).
func tagged() []Info { return nil }
