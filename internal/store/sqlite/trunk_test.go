package sqlite

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestTrunksRoutesDIDs(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	v0, err := s.TrunksVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := store.Trunk{Name: "carrier", Address: "sip.example.net", Transport: "tls", Auth: store.TrunkAuthRegister,
		Username: "u", Password: "p@ss,word", Networks: []string{"192.0.2.0/24", "198.51.100.7/32"}, Channels: 30,
		Codecs: []string{"PCMA", "PCMU"}, CallerID: "+442071234567", SendPAI: true, HonourPrivacy: true,
		NumberFormat: "digits", Media: store.TrunkMediaSRTP, Qualify: 15 * time.Second, Expires: time.Hour, Enabled: true, Created: time.Unix(100, 0),
		TLSVerify: true, TLSCA: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
	if err := s.AddTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTrunk(ctx, tr); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate trunk: %v", err)
	}
	got, err := s.GetTrunk(ctx, "carrier")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tr) {
		t.Fatalf("trunk round trip:\n got %+v\nwant %+v", got, tr)
	}
	tr.Enabled, tr.Channels, tr.Networks, tr.Media = false, 2, nil, store.TrunkMediaBestEffort
	tr.TLSVerify, tr.TLSCA = false, ""
	if err := s.UpdateTrunk(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetTrunk(ctx, "carrier"); got.Enabled || got.Channels != 2 || got.Networks != nil || got.Password != "p@ss,word" ||
		got.Media != store.TrunkMediaBestEffort || got.TLSVerify || got.TLSCA != "" {
		t.Fatalf("after update: %+v", got)
	}
	if err := s.UpdateTrunk(ctx, store.Trunk{Name: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := s.AddTrunk(ctx, store.Trunk{Name: "backup", Address: "10.0.0.1:5060", Transport: "udp", Auth: "ip", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	// A trunk written before migration 0007 (no media column given) is plain RTP.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO trunks (name, address, created_unix) VALUES ('old', '10.0.0.2', 1)`); err != nil {
		t.Fatal(err)
	}
	// ... and, written before migration 0009, does not verify TLS.
	if old, err := s.GetTrunk(ctx, "old"); err != nil || old.Media != store.TrunkMediaRTP || old.TLSVerify || old.TLSCA != "" {
		t.Fatalf("trunk without media: %+v, %v", old, err)
	}
	if err := s.DeleteTrunk(ctx, "old"); err != nil {
		t.Fatal(err)
	}

	if err := s.AddRoute(ctx, store.Route{Name: "uk", Pattern: "0044", Trunks: []string{"carrier", "missing"}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("route to a missing trunk: %v", err)
	}
	routes := []store.Route{
		{Name: "z-any", Pattern: "_X.", Trunks: []string{"backup"}, Priority: 100, Created: time.Unix(3, 0)},
		{Name: "uk", Pattern: "_0044.", Trunks: []string{"carrier", "backup"}, Strip: 1, Prepend: "9", Priority: 10, Created: time.Unix(2, 0)},
		{Name: "a-any", Pattern: "_X.", Trunks: []string{"backup"}, Priority: 100, Created: time.Unix(3, 0)},
	}
	for _, r := range routes {
		if err := s.AddRoute(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddRoute(ctx, routes[0]); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate route: %v", err)
	}
	list, err := s.ListRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Route{routes[1], routes[2], routes[0]} // priority, then name
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("routes:\n got %+v\nwant %+v", list, want)
	}

	if err := s.AddDID(ctx, store.DID{Number: "+442070000001", Target: "alice", Trunk: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DID on a missing trunk: %v", err)
	}
	d := store.DID{Number: "+442070000001", Target: "alice", Trunk: "carrier", Created: time.Unix(5, 0)}
	if err := s.AddDID(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDID(ctx, d); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate DID: %v", err)
	}
	if dids, _ := s.ListDIDs(ctx); !reflect.DeepEqual(dids, []store.DID{d}) {
		t.Fatalf("DIDs: %+v", dids)
	}

	// A trunk in use by a route or a DID stays.
	if err := s.DeleteTrunk(ctx, "carrier"); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("delete a trunk in use: %v", err)
	}
	if err := s.DeleteRoute(ctx, "uk"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoute(ctx, "uk"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete a missing route: %v", err)
	}
	if err := s.DeleteTrunk(ctx, "carrier"); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("delete a trunk a DID uses: %v", err)
	}
	if err := s.DeleteDID(ctx, d.Number); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTrunk(ctx, "carrier"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTrunk(ctx, "carrier"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete a missing trunk: %v", err)
	}

	// Every change moved the version, as another process sees it.
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	v1, _ := s2.TrunksVersion(ctx)
	if v1 <= v0 {
		t.Fatalf("version %d -> %d", v0, v1)
	}
	if err := s2.AddDID(ctx, store.DID{Number: "100", Target: "bob"}); err != nil {
		t.Fatal(err)
	}
	if v2, _ := s.TrunksVersion(ctx); v2 <= v1 {
		t.Fatalf("version after another process's change: %d -> %d", v1, v2)
	}
}
