package pbx

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/wav"
	"github.com/kaopu/kaopu/internal/store"
)

// stereoWAV is a WAV file of d of a freq Hz tone at rate, two channels.
func stereoWAV(rate int, freq float64, d time.Duration) []byte {
	n := int(d.Seconds() * float64(rate))
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + 4*n))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1))
	le(uint16(2))
	le(uint32(rate))
	le(uint32(4 * rate))
	le(uint16(4))
	le(uint16(16))
	b.WriteString("data")
	le(uint32(4 * n))
	for i := 0; i < n; i++ {
		s := int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		le(s)
		le(s)
	}
	return b.Bytes()
}

func TestConvertPrompt(t *testing.T) {
	out, d, err := ConvertPrompt(stereoWAV(44100, 440, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d < 1990*time.Millisecond || d > 2010*time.Millisecond {
		t.Errorf("duration %v, want 2s", d)
	}
	pcm, rate, err := wav.Read(bytes.NewReader(out))
	if err != nil || rate != 8000 {
		t.Fatalf("converted: %d Hz, %v", rate, err)
	}
	if out[22] != 1 {
		t.Errorf("converted file has %d channels, want 1", out[22])
	}
	// The tone is still there (peak near its amplitude), at 8 kHz.
	var peak int16
	for _, s := range pcm[800:] {
		peak = max(peak, s)
	}
	if peak < 7000 || peak > 9000 {
		t.Errorf("peak %d after resampling, want about 8000", peak)
	}
	if _, err := decodePrompt(out); err != nil {
		t.Errorf("the directory cannot read the converted prompt: %v", err)
	}
	for name, bad := range map[string][]byte{"not a WAV": []byte("hello"), "empty": wav.Header(8000, 0)} {
		if _, _, err := ConvertPrompt(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

type fakeStore struct {
	v      int64
	groups []store.Group
	menus  []store.Menu
}

func (f *fakeStore) ListGroups(context.Context) ([]store.Group, error) { return f.groups, nil }
func (f *fakeStore) ListMenus(context.Context) ([]store.Menu, error)   { return f.menus, nil }
func (f *fakeStore) PBXVersion(context.Context) (int64, error)         { return f.v, nil }

func TestDirectory(t *testing.T) {
	prompt, _, err := ConvertPrompt(stereoWAV(8000, 440, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStore{v: 1, groups: []store.Group{{Number: "600", Members: []string{"alice"}}},
		menus: []store.Menu{{Number: "700", Prompt: prompt, Options: map[string]string{"1": "600"}}, {Number: "701", Prompt: []byte("junk")}}}
	d := NewDirectory(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g, ok := d.Group("600"); !ok || g.Members[0] != "alice" {
		t.Errorf("group 600: %+v %v", g, ok)
	}
	if m, ok := d.Menu("700"); !ok || len(m.Prompt) != ivr.Rate || m.Options["1"] != "600" {
		t.Errorf("menu 700: %+v %v", m, ok)
	}
	if _, ok := d.Menu("701"); ok {
		t.Error("a menu with an unreadable prompt was loaded")
	}
	st.groups = nil // the version has not moved: nothing is read
	d.Load(context.Background())
	if _, ok := d.Group("600"); !ok {
		t.Error("reloaded without a version change")
	}
	st.v = 2
	d.Load(context.Background())
	if _, ok := d.Group("600"); ok {
		t.Error("a deleted group is still there after the version moved")
	}
}

// FuzzConvertPrompt: any file given to kaopu ivr add --prompt is refused
// or becomes a prompt the directory reads back, as long as it says.
func FuzzConvertPrompt(f *testing.F) {
	f.Add(stereoWAV(16000, 440, 50*time.Millisecond))
	f.Add(stereoWAV(8000, 1000, 20*time.Millisecond))
	f.Add(wav.Header(8000, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, d, err := ConvertPrompt(in)
		if err != nil {
			return
		}
		pcm, err := decodePrompt(out)
		if err != nil {
			t.Fatalf("converted prompt unreadable: %v", err)
		}
		if got := ivr.Audio(pcm).Duration(); got != d {
			t.Fatalf("prompt plays %v, ConvertPrompt said %v", got, d)
		}
	})
}
