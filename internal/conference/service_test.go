package conference

import (
	"context"
	"testing"

	"github.com/kaopu/kaopu/internal/ivr"
	"github.com/kaopu/kaopu/internal/store"
)

type fakeRooms struct {
	rooms   []store.Conference
	version int64
	lists   int
}

func (f *fakeRooms) ListConferences(context.Context) ([]store.Conference, error) {
	f.lists++
	return f.rooms, nil
}

func (f *fakeRooms) ConferencesVersion(context.Context) (int64, error) { return f.version, nil }

// TestServiceRoomsAndAdmit: rooms are read when the version moves (and
// only then); Admit answers 404 for a number that is no room, 486 for a
// full room and 0 otherwise.
func TestServiceRoomsAndAdmit(t *testing.T) {
	prompts, err := ivr.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRooms{version: 1, rooms: []store.Conference{{Number: "7000", Max: 1}, {Number: "7001"}}}
	s, err := New(Config{Rooms: f, Prompts: prompts})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, ok := s.Room("7000"); ok {
		t.Fatal("a room before Load")
	}
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	s.Load(ctx)
	if f.lists != 1 {
		t.Fatalf("rooms listed %d times for one version", f.lists)
	}
	if code, _ := s.Admit("7000"); code != 0 {
		t.Fatalf("empty room: %d", code)
	}
	if code, _ := s.Admit("7999"); code != 404 {
		t.Fatalf("no room: %d", code)
	}
	// One in 7000 (at most one): the next is refused; 7001 has no limit.
	r := newRoom("7000", mixRate)
	s.live["7000"] = r
	p := newParticipant("a", 8000, mixRate)
	r.add(p, nil)
	defer r.remove(p, nil)
	if code, reason := s.Admit("7000"); code != 486 || reason != "Busy Here" {
		t.Fatalf("full room: %d %s", code, reason)
	}
	if code, _ := s.Admit("7001"); code != 0 {
		t.Fatalf("room without a limit: %d", code)
	}
	// A deleted room is gone once the version moves.
	f.rooms, f.version = f.rooms[:1], 2
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Room("7001"); ok {
		t.Fatal("deleted room still answered")
	}
}
