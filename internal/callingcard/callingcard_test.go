package callingcard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/wav"
	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/store"
)

// testPrompts is a library in which every prompt is one sample whose value
// identifies it, so a fake Media can tell which words were played.
func testPrompts(t *testing.T) (*ivr.Library, map[int16]string) {
	t.Helper()
	names := append([]string{}, promptNames...)
	names = append(names, "hundred", "thousand", "million", "and", "cents", "cent", "euros", "dollars", "pounds", "units")
	for n := range 20 {
		names = append(names, fmt.Sprint(n))
	}
	for n := 20; n < 100; n += 10 {
		names = append(names, fmt.Sprint(n))
	}
	fsys := fstest.MapFS{}
	ids := map[int16]string{}
	for i, n := range names {
		id := int16(i + 1)
		ids[id] = n
		fsys[n+".wav"] = &fstest.MapFile{Data: append(wav.Header(8000, 2), byte(id), byte(id>>8))}
	}
	l, err := ivr.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return l, ids
}

// fakeMedia answers CollectDigits from a script and writes down the
// words played.
type fakeMedia struct {
	ids     map[int16]string
	mu      sync.Mutex
	inputs  []string // one per CollectDigits; "" is a timeout
	played  []string
	cleared int
	hangup  context.CancelFunc // called when the script runs out
}

func (f *fakeMedia) words(as []ivr.Audio) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range as {
		for _, s := range a {
			if s != 0 {
				f.played = append(f.played, f.ids[s])
			}
		}
	}
}

func (f *fakeMedia) Play(ctx context.Context, p ...ivr.Audio) error {
	f.words(p)
	return ctx.Err()
}

func (f *fakeMedia) PlayInterruptible(ctx context.Context, p ...ivr.Audio) (bool, error) {
	f.words(p)
	return false, ctx.Err()
}

func (f *fakeMedia) CollectDigits(ctx context.Context, max int, term rune, _ time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.inputs) == 0 {
		f.hangup()
		return "", ivr.ErrClosed
	}
	in := f.inputs[0]
	f.inputs = f.inputs[1:]
	if in == "" {
		return "", ivr.ErrTimeout
	}
	if i := strings.IndexRune(in, term); i >= 0 {
		in = in[:i]
	}
	if max > 0 && len(in) > max {
		in = in[:max]
	}
	return in, nil
}

func (f *fakeMedia) ClearDigits() { f.cleared++ }

type fakeCards map[string]Card // "number/pin" -> card

func (f fakeCards) Check(_ context.Context, number, pin string) (Card, error) {
	c, ok := f[number+"/"+pin]
	if !ok {
		return Card{}, ErrInvalid
	}
	return c, nil
}

// fakeBilling: 0.25 per minute to +49, nothing else; the longest call
// is what the balance pays for, per second; every reservation is kept to
// check that it was ended once.
type fakeBilling struct {
	mu   sync.Mutex
	resv []*fakeResv
}

type fakeResv struct {
	card, dest string
	max        time.Duration
	ends       []time.Duration
	cdrIDs     []int64
}

func (f *fakeBilling) Reserve(_ context.Context, c Card, e164, _ string) (Reservation, error) {
	if !strings.HasPrefix(e164, "+49") {
		return nil, ErrNoRate
	}
	secs := int64(c.Balance) * 60 / 250_000
	if secs <= 0 {
		return nil, ErrNoCredit
	}
	r := &fakeResv{card: c.Number, dest: e164, max: time.Duration(secs) * time.Second}
	f.mu.Lock()
	f.resv = append(f.resv, r)
	f.mu.Unlock()
	return r, nil
}

func (r *fakeResv) Max() time.Duration { return r.max }

func (r *fakeResv) End(_ context.Context, talk time.Duration, cdrID int64) (store.CDRRating, error) {
	r.ends = append(r.ends, talk)
	r.cdrIDs = append(r.cdrIDs, cdrID)
	return store.CDRRating{Account: "card-" + r.card, Billed: int(talk.Seconds()),
		Cost: money.Amount(int64(talk.Seconds()) * 250_000 / 60)}, nil
}

// fakeRecord is the call layer's record of a call.
type fakeRecord struct {
	id    int64
	rated []store.CDRRating
}

func (f *fakeRecord) ID() int64              { return f.id }
func (f *fakeRecord) Rate(r store.CDRRating) { f.rated = append(f.rated, r) }

type bridgeRec struct {
	res  BridgeResult
	err  error
	reqs []BridgeRequest
}

func (b *bridgeRec) Bridge(_ context.Context, r BridgeRequest) (BridgeResult, error) {
	b.reqs = append(b.reqs, r)
	return b.res, b.err
}

func normalize(d string) (string, bool) {
	if strings.HasPrefix(d, "00") && len(d) > 4 {
		return "+" + d[2:], true
	}
	return "", false
}

var (
	now   = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	card1 = Card{Number: "123456789012", Account: "card-123456789012", Balance: 12_500_000, Currency: "EUR", State: StateActive, Expires: now.Add(24 * time.Hour)}
)

func TestServe(t *testing.T) {
	lib, ids := testPrompts(t)
	src := netip.MustParseAddr("192.0.2.7")
	cards := fakeCards{
		"123456789012/1234": card1,
		"111/1":             {Number: "111", Balance: 5_000_000, Currency: "EUR", State: StateActive, Expires: now},
		"222/2":             {Number: "222", Balance: 5_000_000, Currency: "EUR", State: StateBlocked},
		"333/3":             {Number: "333", Balance: 0, Currency: "EUR", State: StateActive},
		"444/4":             {Number: "444", Balance: 3_000, Currency: "USD", State: StateActive},
	}
	welcome := "welcome enter_card enter_pin"
	cases := []struct {
		name     string
		inputs   []string
		bridge   *BridgeResult // nil: no Bridger
		want     Result
		played   string
		failures int
		// reserved lists each reservation as destination:talk ended with.
		reserved string
	}{
		{
			name:   "connected and charged",
			inputs: []string{"123456789012#", "1234#", "004930123456#"},
			bridge: &BridgeResult{Status: 200, Talk: 61 * time.Second, Released: true},
			want:   Result{Outcome: OutcomeConnected, Card: "123456789012", Destination: "+4930123456", Max: 50 * time.Minute, Status: 200, Talk: 61 * time.Second, Cost: 254_166},
			// 12.50 at 0.25/min: 50 minutes.
			played:   welcome + " balance 12 euros and 50 cents enter_destination minutes_to 50 minutes connecting",
			reserved: "+4930123456:[1m1s]",
		},
		{
			name:     "three wrong PINs hang up and are reported",
			inputs:   []string{"123456789012#", "9999#", "123456789012#", "0000#", "5#", "5#"},
			want:     Result{Outcome: OutcomeBadPIN, Failures: 3},
			played:   welcome + " invalid enter_card enter_pin invalid enter_card enter_pin invalid too_many goodbye",
			failures: 3,
		},
		{
			name:     "a wrong PIN then the right one",
			inputs:   []string{"123456789012#", "4321#", "123456789012#", "1234#", "004930123456#"},
			bridge:   &BridgeResult{Status: 486},
			want:     Result{Outcome: OutcomeNotConnected, Card: "123456789012", Destination: "+4930123456", Max: 50 * time.Minute, Status: 486, Failures: 1},
			played:   welcome + " invalid enter_card enter_pin balance 12 euros and 50 cents enter_destination minutes_to 50 minutes connecting busy goodbye",
			failures: 1,
			reserved: "+4930123456:[0s]",
		},
		{
			name:   "expired",
			inputs: []string{"111#", "1#"},
			want:   Result{Outcome: OutcomeRefused, Card: "111"},
			played: welcome + " expired goodbye",
		},
		{
			name:   "blocked",
			inputs: []string{"222#", "2#"},
			want:   Result{Outcome: OutcomeRefused, Card: "222"},
			played: welcome + " unusable goodbye",
		},
		{
			name:   "no balance",
			inputs: []string{"333#", "3#"},
			want:   Result{Outcome: OutcomeRefused, Card: "333"},
			played: welcome + " empty goodbye",
		},
		{
			name:   "not enough for a minute",
			inputs: []string{"444#", "4#", "0049301#"},
			bridge: &BridgeResult{Status: 200},
			want:   Result{Outcome: OutcomeRefused, Card: "444", Destination: "+49301"},
			// 0.003 dollars: 0 dollars (cents round down), 0 seconds at 0.25/min.
			played: welcome + " balance 0 dollars enter_destination empty goodbye",
		},
		{
			name:     "no rate, not a number, then a good one; unreachable",
			inputs:   []string{"123456789012#", "1234#", "00331234#", "12#", "0049301#"},
			bridge:   &BridgeResult{Status: 503},
			want:     Result{Outcome: OutcomeNotConnected, Card: "123456789012", Destination: "+49301", Max: 50 * time.Minute, Status: 503},
			played:   welcome + " balance 12 euros and 50 cents enter_destination no_rate enter_destination unreachable enter_destination minutes_to 50 minutes connecting unreachable goodbye",
			reserved: "+49301:[0s]",
		},
		{
			name:     "no bridge wired",
			inputs:   []string{"123456789012#", "1234#", "0049301#"},
			want:     Result{Outcome: OutcomeNotConnected, Card: "123456789012", Destination: "+49301", Max: 50 * time.Minute, Status: 503},
			played:   welcome + " balance 12 euros and 50 cents enter_destination minutes_to 50 minutes connecting unreachable goodbye",
			reserved: "+49301:[0s]",
		},
		{
			name:   "silence three times",
			inputs: []string{"", "", ""},
			want:   Result{Outcome: OutcomeNoInput},
			played: "welcome enter_card enter_card enter_card goodbye",
		},
		{
			name:   "caller hangs up during the PIN",
			inputs: []string{"123456789012#"},
			want:   Result{Outcome: OutcomeHangup},
			played: welcome,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := &fakeMedia{ids: ids, inputs: c.inputs, hangup: cancel}
			var failed []netip.Addr
			fb := &fakeBilling{}
			cfg := Config{Prompts: lib, Cards: cards, Billing: fb, Normalize: normalize,
				OnFailure: func(a netip.Addr) { failed = append(failed, a) }, Now: func() time.Time { return now }}
			var br *bridgeRec
			if c.bridge != nil {
				br = &bridgeRec{res: *c.bridge}
				cfg.Bridge = br
			}
			app, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := &fakeRecord{id: 77}
			got := app.Serve(ctx, Call{ID: "call-1", Source: src, Media: m, Record: rec})
			if got != c.want {
				t.Errorf("result\n got %+v\nwant %+v", got, c.want)
			}
			if p := strings.Join(m.played, " "); p != c.played {
				t.Errorf("played\n got %s\nwant %s", p, c.played)
			}
			if len(failed) != c.failures {
				t.Errorf("%d failures reported, want %d", len(failed), c.failures)
			}
			for _, a := range failed {
				if a != src {
					t.Errorf("failure reported for %v", a)
				}
			}
			var resv []string
			for _, r := range fb.resv {
				if r.card != got.Card {
					t.Errorf("reservation on card %s", r.card)
				}
				resv = append(resv, fmt.Sprintf("%s:%v", r.dest, r.ends))
				// The debit names the call's record, whose rating is
				// the charge's.
				if len(r.cdrIDs) != 1 || r.cdrIDs[0] != 77 {
					t.Errorf("reservation ended with records %v, want [77]", r.cdrIDs)
				}
				if len(rec.rated) != 1 || rec.rated[0].Cost != got.Cost || rec.rated[0].Account != "card-"+r.card {
					t.Errorf("record rated %+v, want once with cost %s", rec.rated, got.Cost)
				}
			}
			if len(fb.resv) == 0 && len(rec.rated) != 0 {
				t.Errorf("record rated %+v without a reservation", rec.rated)
			}
			if g := strings.Join(resv, " "); g != c.reserved {
				t.Errorf("reservations %q, want %q", g, c.reserved)
			}
			if br != nil && len(br.reqs) == 1 {
				r := br.reqs[0]
				if r.CallID != "call-1" || r.Card.Number != got.Card || r.Destination != got.Destination {
					t.Errorf("bridge request %+v", r)
				}
				if c.want.Card == card1.Number && r.MaxDuration != 50*time.Minute {
					t.Errorf("max duration %v, want 50m", r.MaxDuration)
				}
			}
		})
	}
}

func TestNewNeedsPrompts(t *testing.T) {
	l, err := ivr.Load(fstest.MapFS{"welcome.wav": {Data: append(wav.Header(8000, 2), 1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Prompts: l, Cards: fakeCards{}, Billing: &fakeBilling{}, Normalize: normalize})
	if !errors.Is(err, ivr.ErrNoPrompt) {
		t.Fatalf("missing prompts: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

// TestOneCallPerCard: while a card is in a call, a second call with it is
// refused; once the first ends, the card works again.
func TestOneCallPerCard(t *testing.T) {
	lib, ids := testPrompts(t)
	release := make(chan struct{})
	inBridge := make(chan struct{})
	br := bridgeFunc(func(ctx context.Context, r BridgeRequest) (BridgeResult, error) {
		close(inBridge)
		<-release
		return BridgeResult{Status: 200, Talk: time.Second, Released: true}, nil
	})
	app, err := New(Config{Prompts: lib, Cards: fakeCards{"123456789012/1234": card1}, Billing: &fakeBilling{},
		Normalize: normalize, Bridge: br, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	inputs := func() []string { return []string{"123456789012#", "1234#", "0049301#"} }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan Result)
	go func() {
		first <- app.Serve(ctx, Call{ID: "a", Media: &fakeMedia{ids: ids, inputs: inputs(), hangup: cancel}})
	}()
	<-inBridge
	m := &fakeMedia{ids: ids, inputs: inputs(), hangup: cancel}
	if r := app.Serve(ctx, Call{ID: "b", Media: m}); r.Outcome != OutcomeRefused || !strings.HasSuffix(strings.Join(m.played, " "), "unusable goodbye") {
		t.Fatalf("second call: %+v, played %v", r, m.played)
	}
	close(release)
	if r := <-first; r.Outcome != OutcomeConnected {
		t.Fatalf("first call: %+v", r)
	}
	m = &fakeMedia{ids: ids, inputs: inputs(), hangup: cancel}
	app.cfg.Bridge = bridgeFunc(func(context.Context, BridgeRequest) (BridgeResult, error) { return BridgeResult{Status: 200}, nil })
	if r := app.Serve(ctx, Call{ID: "c", Media: m}); r.Outcome != OutcomeConnected {
		t.Fatalf("after the first call ended: %+v", r)
	}
}

type bridgeFunc func(context.Context, BridgeRequest) (BridgeResult, error)

func (f bridgeFunc) Bridge(ctx context.Context, r BridgeRequest) (BridgeResult, error) {
	return f(ctx, r)
}
