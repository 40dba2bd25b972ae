package ivr

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kaopu/kaopu/internal/media/wav"
)

func TestBuiltinPrompts(t *testing.T) {
	l, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	// Every word the number and money sayers can ask for exists, and is
	// speech: between 0.1 and 6 seconds, not silent.
	words := []string{"hundred", "thousand", "million", "and", "cents", "cent", "euros", "dollars", "pounds", "units", "star", "hash"}
	for n := 0; n < 20; n++ {
		words = append(words, NumberWords(int64(n))...)
	}
	for n := 20; n < 100; n += 10 {
		words = append(words, NumberWords(int64(n))...)
	}
	for _, w := range words {
		a, err := l.Get(w)
		if err != nil {
			t.Fatal(err)
		}
		if d := a.Duration(); d < 100*time.Millisecond || d > 6*time.Second {
			t.Errorf("%s lasts %v", w, d)
		}
		var peak int16
		for _, s := range a {
			peak = max(peak, s, -s)
		}
		if peak < 5000 {
			t.Errorf("%s: peak %d, nearly silent", w, peak)
		}
	}
	if _, err := l.Get("nope"); !errors.Is(err, ErrNoPrompt) {
		t.Fatalf("missing prompt: %v", err)
	}
	a, err := l.Say("1", "2", "3")
	if err != nil {
		t.Fatal(err)
	}
	one, _ := l.Get("1")
	if len(a) <= 3*len(one)/2 {
		t.Fatalf("Say of three words is %d samples, one word %d", len(a), len(one))
	}
}

func TestLoadRefusesOtherRates(t *testing.T) {
	file := func(rate int) []byte {
		return append(wav.Header(rate, 4), 1, 0, 2, 0)
	}
	if _, err := Load(fstest.MapFS{"a.wav": {Data: file(8000)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fstest.MapFS{"a.wav": {Data: file(16000)}}); err == nil {
		t.Fatal("a 16 kHz prompt was accepted")
	}
}

func TestNumberWords(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {7, "7"}, {13, "13"}, {20, "20"}, {42, "40 2"}, {100, "1 hundred"},
		{123, "1 hundred 20 3"}, {1005, "1 thousand 5"}, {2019, "2 thousand 19"},
		{1_000_000, "1 million"}, {12_345_678, "12 million 3 hundred 40 5 thousand 6 hundred 70 8"},
		{-5, "5"},
	} {
		if got := strings.Join(NumberWords(c.n), " "); got != c.want {
			t.Errorf("%d: %q, want %q", c.n, got, c.want)
		}
	}
}

func TestMoneyAndDigitWords(t *testing.T) {
	for _, c := range []struct {
		micros   int64
		currency string
		want     string
	}{
		{12_500_000, "EUR", "12 euros and 50 cents"},
		{5_000_000, "usd", "5 dollars"},
		{10_000, "GBP", "0 pounds and 1 cent"},
		{19_999, "EUR", "0 euros and 1 cent"}, // rounded down to the cent
		{3_000_000, "CHF", "3 units"},
		{-1, "EUR", "0 euros"},
	} {
		if got := strings.Join(MoneyWords(c.micros, c.currency), " "); got != c.want {
			t.Errorf("%d %s: %q, want %q", c.micros, c.currency, got, c.want)
		}
	}
	if got := strings.Join(DigitWords("12*#x9"), " "); got != "1 2 star hash 9" {
		t.Errorf("digits: %q", got)
	}
}

func TestTone(t *testing.T) {
	a := Tone(1000, 500*time.Millisecond)
	if len(a) != 4000 {
		t.Fatalf("%d samples", len(a))
	}
	if p := power(a[400:3600], 1000); p < 0.9 {
		t.Fatalf("1 kHz share %.2f", p)
	}
	if p := power(a[400:3600], 440); p > 0.05 {
		t.Fatalf("440 Hz share %.2f", p)
	}
	if a[0] != 0 || len(Silence(time.Second)) != 8000 {
		t.Fatal("ramp or silence length")
	}
}
