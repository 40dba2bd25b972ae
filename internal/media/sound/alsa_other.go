//go:build soundcard && !linux

package sound

func quietALSA() {}
