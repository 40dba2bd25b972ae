//go:build soundcard

package sound

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestOpenDevice: on a Linux machine with no sound card and no sound
// server (as CI here), Open says so, naming the device that is missing;
// miniaudio's silent null device does not stand in. Where a card exists,
// a call's microphone and speaker open, run and close.
func TestOpenDevice(t *testing.T) {
	_, noCard := os.Stat("/dev/snd")
	_, noPulse := os.Stat(os.Getenv("XDG_RUNTIME_DIR") + "/pulse/native")
	bare := runtime.GOOS == "linux" && noCard != nil && noPulse != nil && os.Getenv("PULSE_SERVER") == ""
	card, err := Open()
	if bare {
		if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "no ") {
			t.Fatalf("Open() on a machine without sound = %v, %v; want ErrNoDevice", card, err)
		}
		t.Logf("Open: %v", err)
		return
	}
	if err != nil {
		t.Skipf("this machine may have sound but Open failed: %v", err)
	}
	defer card.Close()
	src, sink := card.Source(), card.Sink()
	if err := src.Open(16000); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := sink.Open(16000); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	frame := make([]int16, 320)
	src.Read(frame)
	if err := sink.Write(frame); err != nil {
		t.Fatal(err)
	}
}
