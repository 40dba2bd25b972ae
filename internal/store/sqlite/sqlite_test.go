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

func TestUserPolicy(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	p := store.Policy{MediaEncryption: "required", Signalling: "tls_required",
		Allow: []string{store.ClassInternational, store.ClassPremium}, MaxConcurrent: -1, MaxPerMinute: 50}
	if err := s.AddUsers(ctx, []store.User{{Name: "carol", Realm: "r", Created: time.Unix(1, 0), Policy: p}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, "carol")
	if err != nil || got.Policy.MediaEncryption != "required" || got.Policy.Signalling != "tls_required" ||
		len(got.Policy.Allow) != 2 || !got.Policy.Allows(store.ClassPremium) || got.Policy.MaxConcurrent != -1 || got.Policy.MaxPerMinute != 50 {
		t.Fatalf("GetUser = %+v, %v", got.Policy, err)
	}
	got.Policy = store.Policy{}
	if err := s.UpdateUser(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUser(ctx, "carol"); !got.Policy.IsZero() {
		t.Fatalf("policy after reset = %+v", got.Policy)
	}
}

func TestBans(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	v0, _ := s.BansVersion(ctx)
	now := time.Unix(1_700_000_000, 0)
	b := store.Ban{Addr: "192.0.2.7", Until: now.Add(time.Hour), Reason: "auth failures", Offences: 1, Created: now}
	if err := s.PutBan(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Offences, b.Until = 2, now.Add(2*time.Hour)
	if err := s.PutBan(ctx, b); err != nil { // a second offence replaces the row
		t.Fatal(err)
	}
	old := store.Ban{Addr: "192.0.2.8", Until: now.Add(-time.Minute), Reason: "scanner", Offences: 1, Created: now}
	if err := s.PutBan(ctx, old); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if v1, _ := other.BansVersion(ctx); v1 == v0 {
		t.Fatal("bans version did not change")
	}
	list, err := other.ListBans(ctx)
	if err != nil || len(list) != 2 || list[0].Offences != 2 || !list[0].Until.Equal(now.Add(2*time.Hour)) || list[0].Reason != "auth failures" {
		t.Fatalf("ListBans = %+v, %v", list, err)
	}
	if n, err := s.DeleteExpiredBans(ctx, now); n != 1 || err != nil {
		t.Fatalf("DeleteExpiredBans = %d, %v", n, err)
	}
	if err := other.DeleteBan(ctx, "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteBan(ctx, "192.0.2.7"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list, _ := s.ListBans(ctx); len(list) != 0 {
		t.Fatalf("left %+v", list)
	}
}
