package sqlite

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestGroupsAndMenus(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	v0, err := s.PBXVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := store.Group{Number: "600", Members: []string{"alice", "bob", "102"}, Strategy: store.StrategyHunt,
		RingTime: 15 * time.Second, Fallback: "700", Created: time.Unix(100, 0)}
	if err := s.AddGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.AddGroup(ctx, g); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate group: %v", err)
	}
	m := store.Menu{Number: "700", Prompt: []byte("RIFF..."), Options: map[string]string{"1": "alice", "2": "600"},
		Timeout: 5 * time.Second, Retries: 2, Default: "600", ExtensionDialing: true, Created: time.Unix(200, 0)}
	if err := s.AddMenu(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMenu(ctx, store.Menu{Number: "600", Prompt: []byte("x")}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a menu on a group's number: %v", err)
	}
	if err := s.AddGroup(ctx, store.Group{Number: "700", Members: []string{"a"}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a group on a menu's number: %v", err)
	}
	gs, err := s.ListGroups(ctx)
	if err != nil || len(gs) != 1 || !reflect.DeepEqual(gs[0], g) {
		t.Fatalf("groups %+v, %v; want %+v", gs, err, g)
	}
	ms, err := s.ListMenus(ctx)
	if err != nil || len(ms) != 1 || !reflect.DeepEqual(ms[0], m) {
		t.Fatalf("menus %+v, %v; want %+v", ms, err, m)
	}
	v1, _ := s.PBXVersion(ctx)
	if v1 == v0 {
		t.Error("version did not move with the inserts")
	}
	if err := s.DeleteGroup(ctx, "600"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMenu(ctx, "700"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMenu(ctx, "700"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if v2, _ := s.PBXVersion(ctx); v2 == v1 {
		t.Error("version did not move with the deletes")
	}
}
