package ivr

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/media/wav"
)

// Rate is the sample rate of prompts and of the endpoint's audio.
const Rate = 8000

// Audio is 8 kHz mono 16-bit PCM.
type Audio []int16

// Duration is how long a plays.
func (a Audio) Duration() time.Duration { return time.Duration(len(a)) * time.Second / Rate }

//go:embed prompts/en/*.wav
var builtin embed.FS

// Library holds prompts by name. It is read-only once loaded, so one
// Library serves every call.
type Library struct {
	prompts map[string]Audio
}

// Builtin loads the English prompts embedded in the binary
// (internal/ivr/prompts/en, made by scripts/prompts.sh).
func Builtin() (*Library, error) {
	sub, err := fs.Sub(builtin, "prompts/en")
	if err != nil {
		return nil, err
	}
	return Load(sub)
}

// Load reads every NAME.wav at the top of fsys: 16-bit PCM, mono, 8 kHz
// (a file at another rate or with more channels is refused, so a prompt
// never plays at the wrong speed).
func Load(fsys fs.FS) (*Library, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	l := &Library{prompts: map[string]Audio{}}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".wav" {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		pcm, rate, err := wav.Read(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("prompt %s: %w", e.Name(), err)
		}
		if rate != Rate || !mono(b) {
			return nil, fmt.Errorf("prompt %s: %d Hz, want mono %d Hz (scripts/prompts.sh)", e.Name(), rate, Rate)
		}
		l.prompts[strings.TrimSuffix(e.Name(), ".wav")] = pcm
	}
	return l, nil
}

// mono reports whether a WAV file's fmt chunk (right after the RIFF
// header in the files sox writes) says one channel.
func mono(b []byte) bool {
	return len(b) >= 24 && string(b[12:16]) == "fmt " && b[22] == 1 && b[23] == 0
}

// Get returns the prompt of that name.
func (l *Library) Get(name string) (Audio, error) {
	a, ok := l.prompts[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoPrompt, name)
	}
	return a, nil
}

// Names lists the prompts (for tests and the docs).
func (l *Library) Names() []string {
	out := make([]string, 0, len(l.prompts))
	for n := range l.prompts {
		out = append(out, n)
	}
	return out
}

// Say concatenates the named prompts, with a short pause between words.
func (l *Library) Say(names ...string) (Audio, error) {
	var out Audio
	gap := make(Audio, Rate*40/1000)
	for i, n := range names {
		a, err := l.Get(n)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, gap...)
		}
		out = append(out, a...)
	}
	return out, nil
}

// NumberWords returns the prompt names that say n in English words, as
// prompts.sh names them: 123 is "1 hundred 20 3", 2005 "2 thousand 5",
// 0 "0". Negative numbers are said as their absolute value.
func NumberWords(n int64) []string {
	if n < 0 {
		n = -n
	}
	if n == 0 {
		return []string{"0"}
	}
	var out []string
	for _, g := range []struct {
		size int64
		word string
	}{{1_000_000, "million"}, {1000, "thousand"}} {
		if n >= g.size {
			out = append(out, NumberWords(n/g.size)...)
			out = append(out, g.word)
			n %= g.size
		}
	}
	if n >= 100 {
		out = append(out, fmt.Sprint(n/100), "hundred")
		n %= 100
	}
	switch {
	case n == 0:
	case n < 20:
		out = append(out, fmt.Sprint(n))
	default:
		out = append(out, fmt.Sprint(n/10*10))
		if n%10 != 0 {
			out = append(out, fmt.Sprint(n%10))
		}
	}
	return out
}

// DigitWords returns the prompt names that read s digit by digit (a card
// or phone number); characters other than 0-9, * and # are skipped.
func DigitWords(s string) []string {
	var out []string
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			out = append(out, string(r))
		case r == '*':
			out = append(out, "star")
		case r == '#':
			out = append(out, "hash")
		}
	}
	return out
}

// currencyWords names the unit of the currencies prompts.sh has words
// for; any other is said as "units".
var currencyWords = map[string]string{"EUR": "euros", "USD": "dollars", "GBP": "pounds"}

// MoneyWords returns the prompt names that say an amount of micro-units
// (10^-6) of currency, rounded down to the cent: "12 euros and 50 cents".
func MoneyWords(micros int64, currency string) []string {
	if micros < 0 {
		micros = 0
	}
	units, cents := micros/1_000_000, micros%1_000_000/10_000
	unit, ok := currencyWords[strings.ToUpper(currency)]
	if !ok {
		unit = "units"
	}
	out := append(NumberWords(units), unit)
	if cents > 0 {
		word := "cents"
		if cents == 1 {
			word = "cent"
		}
		out = append(out, "and")
		out = append(out, NumberWords(cents)...)
		out = append(out, word)
	}
	return out
}

// Tone is a sine beep of freq Hz lasting d, at about -10 dBFS, with 5 ms
// ramps so it starts and stops without a click.
func Tone(freq float64, d time.Duration) Audio {
	n := int(d * Rate / time.Second)
	out := make(Audio, n)
	ramp := Rate * 5 / 1000
	for i := range out {
		g := 1.0
		if i < ramp {
			g = float64(i) / float64(ramp)
		} else if n-i < ramp {
			g = float64(n-i) / float64(ramp)
		}
		out[i] = int16(g * 10000 * math.Sin(2*math.Pi*freq*float64(i)/Rate))
	}
	return out
}

// Silence is d of silence.
func Silence(d time.Duration) Audio { return make(Audio, int(d*Rate/time.Second)) }
