package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestVoicemail(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	if _, err := s.GetMailbox(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no mailbox yet: %v", err)
	}
	mb := store.Mailbox{User: "bob", Enabled: true, PINHash: "h1", Created: time.Unix(100, 0)}
	if err := s.PutMailbox(ctx, mb); err != nil {
		t.Fatal(err)
	}
	// Replacing keeps the creation time and changes the rest.
	if err := s.PutMailbox(ctx, store.Mailbox{User: "bob", Enabled: false, Created: time.Unix(500, 0)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMailbox(ctx, "bob")
	if err != nil || got.Enabled || got.PINHash != "" || !got.Created.Equal(time.Unix(100, 0)) {
		t.Fatalf("mailbox %+v, %v", got, err)
	}
	if err := s.PutMailbox(ctx, store.Mailbox{User: "alice", Enabled: true, Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if all, err := s.ListMailboxes(ctx); err != nil || len(all) != 2 || all[0].User != "alice" {
		t.Fatalf("mailboxes %+v, %v", all, err)
	}

	wav := []byte("RIFF....WAVE")
	id1, err := s.AddMessage(ctx, store.VoiceMessage{Mailbox: "bob", CallerNumber: "alice", CallerName: "Alice",
		Received: time.Unix(1000, 0), Duration: 3500 * time.Millisecond, WAV: wav})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.AddMessage(ctx, store.VoiceMessage{Mailbox: "bob", CallerNumber: "anonymous", Received: time.Unix(900, 0),
		Duration: time.Second, WAV: wav})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddMessage(ctx, store.VoiceMessage{Mailbox: "alice", Received: time.Unix(950, 0), WAV: wav}); err != nil {
		t.Fatal(err)
	}
	ms, err := s.ListMessages(ctx, "bob")
	if err != nil || len(ms) != 2 || ms[0].ID != id2 || ms[1].ID != id1 || ms[0].WAV != nil {
		t.Fatalf("bob's messages %+v, %v", ms, err)
	}
	if all, _ := s.ListMessages(ctx, ""); len(all) != 3 {
		t.Fatalf("all messages: %d", len(all))
	}
	m, err := s.GetMessage(ctx, id1)
	if err != nil || string(m.WAV) != string(wav) || m.Duration != 3500*time.Millisecond || m.CallerName != "Alice" || m.Heard {
		t.Fatalf("message %+v, %v", m, err)
	}
	if err := s.SetHeard(ctx, id1, true); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.GetMessage(ctx, id1); !m.Heard {
		t.Fatal("not marked heard")
	}
	if err := s.DeleteMessage(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMessage(ctx, id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.SetHeard(ctx, id1, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("heard of a deleted message: %v", err)
	}
	if _, err := s.GetMessage(ctx, id1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get of a deleted message: %v", err)
	}
}
