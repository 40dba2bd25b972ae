package wav

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	samples := []int16{0, 1, -1, 32767, -32768, 1234}
	var b bytes.Buffer
	b.Write(Header(8000, uint32(2*len(samples))))
	binary.Write(&b, binary.LittleEndian, samples)
	got, rate, err := Read(&b)
	if err != nil || rate != 8000 {
		t.Fatalf("rate %d, %v", rate, err)
	}
	if len(got) != len(samples) {
		t.Fatalf("%d samples, want %d", len(got), len(samples))
	}
	for i := range got {
		if got[i] != samples[i] {
			t.Fatalf("sample %d = %d, want %d", i, got[i], samples[i])
		}
	}
}

func TestRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not riff":  []byte("RIFX\x00\x00\x00\x00WAVE"),
		"no data":   Header(8000, 0)[:36],
		"8-bit pcm": func() []byte { h := Header(8000, 0); h[34] = 8; return h }(),
	} {
		if _, _, err := Read(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
