package voicemail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/media/wav"
	"github.com/kaopu/kaopu/internal/store"
)

func TestPIN(t *testing.T) {
	h, err := HashPIN("bob", "4321")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pin, hash string
		want            bool
	}{
		{"bob", "4321", h, true},
		{"bob", "4322", h, false},
		{"alice", "4321", h, false}, // a hash copied to another mailbox
		{"bob", "", h, false},
		{"bob", "4321", "", false},
		{"bob", "4321", "pbkdf2-sha256$x$y$z", false},
	} {
		if got := CheckPIN(c.user, c.pin, c.hash); got != c.want {
			t.Errorf("CheckPIN(%q, %q) = %v, want %v", c.user, c.pin, got, c.want)
		}
	}
	for pin, want := range map[string]bool{"1234": true, "123": false, "12345678901234": false, "12a4": false} {
		if ValidPIN(pin) != want {
			t.Errorf("ValidPIN(%q) != %v", pin, want)
		}
	}
}

func TestSummary(t *testing.T) {
	for _, c := range []struct {
		s    Summary
		body string
	}{
		{Summary{2, 1}, "Messages-Waiting: yes\r\nMessage-Account: sip:bob@example.com\r\nVoice-Message: 2/1 (0/0)\r\n"},
		{Summary{0, 3}, "Messages-Waiting: no\r\nMessage-Account: sip:bob@example.com\r\nVoice-Message: 0/3 (0/0)\r\n"},
	} {
		body := c.s.Body("sip:bob@example.com")
		if string(body) != c.body {
			t.Errorf("%+v: body %q, want %q", c.s, body, c.body)
		}
		got, waiting, err := ParseSummary(body)
		if err != nil || got != c.s || waiting != c.s.Waiting() {
			t.Errorf("parse %q: %+v %v %v", body, got, waiting, err)
		}
	}
	// RFC 3842 §5.2's example, with other message classes and headers.
	rfc := "Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 4/8 (1/2)\r\n" +
		"Fax-Message: 2/1\r\n\r\nTo: <alice@atlanta.example.com>\r\nFrom: <bob@biloxi.example.com>\r\n"
	if got, waiting, err := ParseSummary([]byte(rfc)); err != nil || got != (Summary{4, 8}) || !waiting {
		t.Errorf("RFC example: %+v %v %v", got, waiting, err)
	}
	for _, bad := range []string{"", "Voice-Message: 1/2\r\n", "Messages-Waiting: maybe\r\n",
		"Messages-Waiting: yes\r\nVoice-Message: x/2\r\n", "Messages-Waiting: no\r\nVoice-Message: 12\r\n",
		"Messages-Waiting: no\r\nVoice-Message: -1/0\r\n"} {
		if _, _, err := ParseSummary([]byte(bad)); !errors.Is(err, ErrSummary) {
			t.Errorf("ParseSummary(%q): %v, want ErrSummary", bad, err)
		}
	}
}

func FuzzParseSummary(f *testing.F) {
	f.Add([]byte("Messages-Waiting: yes\r\nVoice-Message: 4/8 (1/2)\r\n"))
	f.Add([]byte("Messages-Waiting: no\r\n"))
	f.Add([]byte("messages-waiting:yes\nvoice-message:0/0"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, waiting, err := ParseSummary(body)
		if err != nil {
			return
		}
		if s.New < 0 || s.Old < 0 {
			t.Fatalf("negative counts %+v", s)
		}
		// What parses formats back to the same counts.
		s2, _, err := ParseSummary(s.Body(""))
		if err != nil || s2 != s {
			t.Fatalf("round trip %+v -> %+v, %v", s, s2, err)
		}
		_ = waiting
	})
}

func TestRecorder(t *testing.T) {
	tone := ivr.Tone(440, 20*time.Millisecond)
	quiet := make([]int16, 160)
	t.Run("silence ends it, trailing silence trimmed", func(t *testing.T) {
		r := newRecorder(10*time.Second, time.Second)
		for range 100 { // 2 s of voice
			r.Heard(tone)
		}
		for range 60 { // 1.2 s of silence: ends after 1 s
			r.Heard(quiet)
		}
		select {
		case <-r.done:
		default:
			t.Fatal("not finished after 1 s of silence")
		}
		if got := r.message().Duration(); got != 2250*time.Millisecond {
			t.Errorf("message %v, want 2.25 s (voice and a quarter second)", got)
		}
	})
	t.Run("length limit", func(t *testing.T) {
		r := newRecorder(time.Second, 0)
		for range 70 {
			r.Heard(tone)
		}
		select {
		case <-r.done:
		default:
			t.Fatal("not finished at the limit")
		}
		if got := r.message().Duration(); got != time.Second {
			t.Errorf("message %v, want 1 s", got)
		}
	})
	t.Run("wav", func(t *testing.T) {
		a := ivr.Tone(1000, 100*time.Millisecond)
		pcm, rate, err := wav.Read(bytes.NewReader(encodeWAV(a)))
		if err != nil || rate != ivr.Rate || !reflect.DeepEqual(ivr.Audio(pcm), a) {
			t.Fatalf("round trip: %d samples at %d, %v", len(pcm), rate, err)
		}
	})
}

func TestBrowserKeys(t *testing.T) {
	msgs := []store.VoiceMessage{{ID: 1, Heard: true}, {ID: 2}, {ID: 3, Heard: true}, {ID: 4}}
	b := newBrowser(msgs)
	order := func() []int64 {
		var ids []int64
		for _, m := range b.msgs {
			ids = append(ids, m.ID)
		}
		return ids
	}
	if got := order(); !reflect.DeepEqual(got, []int64{2, 4, 1, 3}) {
		t.Fatalf("order %v: new first, oldest first", got)
	}
	steps := []struct {
		key  string
		want step
		cur  int64
	}{
		{"1", step{play: true}, 2},
		{"4", step{play: true}, 2}, // no previous: the first again
		{"6", step{play: true}, 4},
		{"2", step{play: true}, 1},
		{"4", step{play: true}, 4},
		{"7", step{remove: 4, say: []string{"vm_deleted"}, play: true}, 1},
		{"9", step{say: []string{"vm_saved"}, play: true}, 3},
		{"6", step{say: []string{"vm_no_more"}}, 3},
		{"9", step{say: []string{"vm_saved", "vm_no_more"}}, 3},
		{"5", step{}, 3},
		{"7", step{remove: 3, say: []string{"vm_deleted", "vm_no_more"}}, 1},
		{"4", step{play: true}, 2},
		{"7", step{remove: 2, say: []string{"vm_deleted"}, play: true}, 1},
		{"7", step{remove: 1, say: []string{"vm_deleted", "vm_no_more"}, exit: true}, 0},
	}
	for i, s := range steps {
		got := b.key(s.key)
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d key %s: %+v, want %+v", i, s.key, got, s.want)
		}
		if len(b.msgs) > 0 && b.current().ID != s.cur {
			t.Fatalf("step %d key %s: on message %d, want %d", i, s.key, b.current().ID, s.cur)
		}
	}
	if b := newBrowser(msgs); !reflect.DeepEqual(b.key("#"), step{exit: true}) {
		t.Error("# does not exit")
	}
}

// fakeMedia plays nothing and hands out scripted keys; Connect feeds the
// recorder the audio in feed.
type fakeMedia struct {
	mu     sync.Mutex
	keys   []string // one per CollectDigits; "" times out
	played []int    // samples per play
	feed   [][]int16
	wait   chan struct{} // CollectDigits blocks on it once keys run out
}

func (f *fakeMedia) Play(ctx context.Context, p ...ivr.Audio) error {
	_, err := f.PlayInterruptible(ctx, p...)
	return err
}

func (f *fakeMedia) PlayInterruptible(ctx context.Context, p ...ivr.Audio) (bool, error) {
	n := 0
	for _, a := range p {
		n += len(a)
	}
	f.mu.Lock()
	f.played = append(f.played, n)
	f.mu.Unlock()
	return false, ctx.Err()
}

func (f *fakeMedia) CollectDigits(ctx context.Context, _ int, _ rune, _ time.Duration) (string, error) {
	f.mu.Lock()
	if len(f.keys) == 0 {
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-f.wait:
			return "", ivr.ErrClosed
		}
	}
	k := f.keys[0]
	f.keys = f.keys[1:]
	f.mu.Unlock()
	if k == "" {
		return "", ivr.ErrTimeout
	}
	return k, nil
}

func (f *fakeMedia) ClearDigits() {}

func (f *fakeMedia) Connect(fr ivr.Frames) {
	if fr == nil {
		return
	}
	for _, pcm := range f.feed {
		fr.Heard(pcm)
	}
}

type memStore struct {
	mu     sync.Mutex
	boxes  map[string]store.Mailbox
	msgs   map[int64]store.VoiceMessage
	nextID int64
}

func newMemStore() *memStore {
	return &memStore{boxes: map[string]store.Mailbox{}, msgs: map[int64]store.VoiceMessage{}}
}

func (s *memStore) GetMailbox(_ context.Context, u string) (store.Mailbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.boxes[u]
	if !ok {
		return m, store.ErrNotFound
	}
	return m, nil
}

func (s *memStore) AddMessage(_ context.Context, m store.VoiceMessage) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	m.ID = s.nextID
	s.msgs[m.ID] = m
	return m.ID, nil
}

func (s *memStore) ListMessages(_ context.Context, box string) ([]store.VoiceMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.VoiceMessage
	for id := int64(1); id <= s.nextID; id++ {
		if m, ok := s.msgs[id]; ok && (box == "" || m.Mailbox == box) {
			m.WAV = nil
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memStore) GetMessage(_ context.Context, id int64) (store.VoiceMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return m, store.ErrNotFound
	}
	return m, nil
}

func (s *memStore) SetHeard(_ context.Context, id int64, heard bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return store.ErrNotFound
	}
	m.Heard = heard
	s.msgs[id] = m
	return nil
}

func (s *memStore) DeleteMessage(_ context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.msgs[id]; !ok {
		return store.ErrNotFound
	}
	delete(s.msgs, id)
	return nil
}

func newService(t *testing.T, st Store, changed *[]string) *Service {
	t.Helper()
	lib, err := ivr.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Prompts: lib, MaxSilence: time.Second, DigitTimeout: time.Second,
		Users:    func(l string) (string, bool) { return map[string]string{"102": "bob"}[l], l == "102" },
		OnChange: func(mb string) { *changed = append(*changed, mb) }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func frames(a ivr.Audio) [][]int16 {
	var out [][]int16
	for i := 0; i+160 <= len(a); i += 160 {
		out = append(out, a[i:i+160])
	}
	return out
}

func TestDeposit(t *testing.T) {
	st := newMemStore()
	var changed []string
	s := newService(t, st, &changed)
	voice := append(ivr.Tone(440, 2*time.Second), ivr.Silence(1500*time.Millisecond)...)
	m := &fakeMedia{feed: frames(voice), wait: make(chan struct{})}
	id, err := s.Deposit(context.Background(), m, Deposit{Mailbox: "bob", Extension: "102", CallerNumber: "alice"})
	if err != nil || id == 0 {
		t.Fatalf("deposit: %d, %v", id, err)
	}
	msg, _ := st.GetMessage(context.Background(), id)
	if msg.Mailbox != "bob" || msg.CallerNumber != "alice" || msg.Duration != 2250*time.Millisecond || msg.Heard {
		t.Errorf("message %+v", msg)
	}
	if !reflect.DeepEqual(changed, []string{"bob"}) {
		t.Errorf("changes %v", changed)
	}
	// Greeting, beep, "recorded".
	if len(m.played) != 3 || m.played[1] != int(beepLen*ivr.Rate/time.Second) {
		t.Errorf("played %v", m.played)
	}

	// Under a second: nothing kept.
	short := &fakeMedia{feed: frames(append(ivr.Tone(440, 500*time.Millisecond), ivr.Silence(1500*time.Millisecond)...)), wait: make(chan struct{})}
	if id, err := s.Deposit(context.Background(), short, Deposit{Mailbox: "bob"}); id != 0 || err != nil {
		t.Errorf("short message kept: %d, %v", id, err)
	}
	// # ends the message (the fake feeds 3 s of voice with no silence).
	hash := &fakeMedia{keys: []string{"#"}, feed: frames(ivr.Tone(440, 3*time.Second)), wait: make(chan struct{})}
	id, err = s.Deposit(context.Background(), hash, Deposit{Mailbox: "bob", CallerNumber: "anonymous"})
	if err != nil || id == 0 {
		t.Fatalf("deposit ended by #: %d, %v", id, err)
	}
	if msg, _ := st.GetMessage(context.Background(), id); msg.Duration != 2800*time.Millisecond {
		t.Errorf("# message %v long, want 3 s less the key's 0.2 s", msg.Duration)
	}
}

func TestRetrieveAndLogin(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	var changed []string
	s := newService(t, st, &changed)
	wavb := encodeWAV(ivr.Tone(440, time.Second))
	for i, heard := range []bool{true, false, false} {
		st.AddMessage(ctx, store.VoiceMessage{Mailbox: "bob", CallerNumber: fmt.Sprint(200 + i), Heard: heard,
			Received: time.Unix(int64(1000+i), 0), WAV: wavb})
	}
	if sum, _ := s.Counts(ctx, "bob"); sum != (Summary{New: 2, Old: 1}) {
		t.Fatalf("counts %+v", sum)
	}
	// Play the first new message, delete it (the next plays), save it,
	// then exit on the old one.
	m := &fakeMedia{keys: []string{"7", "9", "#"}, wait: make(chan struct{})}
	if err := s.Retrieve(ctx, m, "bob", nil); err != nil {
		t.Fatal(err)
	}
	msgs, _ := st.ListMessages(ctx, "bob")
	if len(msgs) != 2 || msgs[0].CallerNumber != "200" || msgs[1].CallerNumber != "202" || !msgs[1].Heard {
		t.Fatalf("after retrieval: %+v", msgs)
	}
	if sum, _ := s.Counts(ctx, "bob"); sum != (Summary{Old: 2}) {
		t.Errorf("counts after retrieval %+v", sum)
	}
	if len(changed) < 3 {
		t.Errorf("changes %v: want heard, deleted, heard", changed)
	}
	// No key at all: the menu plays menuRepeats times, then goodbye.
	idle := &fakeMedia{keys: []string{"", "", ""}, wait: make(chan struct{})}
	if err := s.Retrieve(ctx, idle, "bob", nil); err != nil {
		t.Fatal(err)
	}
	if len(idle.keys) != 0 {
		t.Errorf("keys left %v", idle.keys)
	}

	h, _ := HashPIN("bob", "1234")
	st.boxes["bob"] = store.Mailbox{User: "bob", Enabled: true, PINHash: h}
	st.boxes["carol"] = store.Mailbox{User: "carol", Enabled: true}
	var fails int
	s.cfg.OnFailure = func(netip.Addr) { fails++ }
	src := netip.MustParseAddr("192.0.2.1")
	if user, ok := s.Login(ctx, &fakeMedia{keys: []string{"102", "9999", "102", "1234"}, wait: make(chan struct{})}, src, nil); !ok || user != "bob" || fails != 1 {
		t.Errorf("login: %q %v, %d failures", user, ok, fails)
	}
	if _, ok := s.Login(ctx, &fakeMedia{keys: []string{"103", "1234", "102", "", "102", "12345"}, wait: make(chan struct{})}, src, nil); ok || fails != 4 {
		t.Errorf("three wrong logins: %v, %d failures", ok, fails)
	}
}
