package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	v0, _ := s.UsersVersion(ctx)
	u := store.User{Name: "alice", Ext: "1001", Realm: "r", HA1MD5: "m", HA1SHA256: "s", Created: time.Unix(1, 0)}
	if err := s.AddUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, u); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.AddUser(ctx, store.User{Name: "1001", Realm: "r", Created: time.Unix(1, 0)}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a user name equal to another user's extension: %v, want ErrExists", err)
	}
	if err := s.AddUser(ctx, store.User{Name: "bob", Ext: "1001", Realm: "r", Created: time.Unix(1, 0)}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate extension: %v", err)
	}
	// Another process (the CLI) sees and bumps the same version.
	other, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if v1, _ := other.UsersVersion(ctx); v1 == v0 {
		t.Fatal("users version did not change on insert")
	}
	u.HA1MD5 = "m2"
	if err := other.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil || got.HA1MD5 != "m2" || got.Ext != "1001" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestBindings(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	now := time.Now()
	b := store.Binding{AOR: "alice", Contact: "sip:alice@10.0.0.1", Source: "1.2.3.4:5", Transport: "TCP",
		CallID: "c", CSeq: 3, Expires: now.Add(time.Hour), Updated: now}
	old := b
	old.Contact, old.Expires = "sip:alice@10.0.0.2", now.Add(-time.Second)
	if err := s.ApplyBindings(ctx, []store.BindingOp{{Binding: b}, {Binding: old}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadBindings(ctx, now)
	if err != nil || len(got) != 1 || got[0].Contact != b.Contact || got[0].Transport != "TCP" || got[0].CSeq != 3 {
		t.Fatalf("LoadBindings = %+v, %v (want only the unexpired one)", got, err)
	}
	if err := s.ApplyBindings(ctx, []store.BindingOp{{Delete: true, Binding: store.Binding{AOR: "alice"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadBindings(ctx, now); len(got) != 0 {
		t.Fatalf("after delete-all: %d bindings", len(got))
	}
}
