package sqlite

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestConferences(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	v0, err := s.ConferencesVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	room := store.Conference{Number: "7000", Name: "team", PIN: "1234", Max: 5, Created: time.Unix(100, 0)}
	if err := s.AddConference(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := s.AddConference(ctx, room); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate room: %v", err)
	}
	open := store.Conference{Number: "6999", Created: time.Unix(200, 0)}
	if err := s.AddConference(ctx, open); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConference(ctx, "7000")
	if err != nil || !reflect.DeepEqual(got, room) {
		t.Fatalf("GetConference: %+v, %v; want %+v", got, err, room)
	}
	if _, err := s.GetConference(ctx, "1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetConference of no room: %v", err)
	}
	all, err := s.ListConferences(ctx)
	if err != nil || !reflect.DeepEqual(all, []store.Conference{open, room}) {
		t.Fatalf("ListConferences: %+v, %v", all, err)
	}
	v1, _ := s.ConferencesVersion(ctx)
	if v1 == v0 {
		t.Fatal("version did not move on add")
	}
	if err := s.DeleteConference(ctx, "7000"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConference(ctx, "7000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if v2, _ := s.ConferencesVersion(ctx); v2 == v1 {
		t.Fatal("version did not move on delete")
	}
}
