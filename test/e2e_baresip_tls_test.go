package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// TestBaresipCallOverTLS: bob's baresip registers over TLS (the server's
// generated certificate, unverified); alice's, over UDP, calls him. The
// INVITE reaches bob over TLS on the very connection he registered on
// (connection reuse: no new connection toward the phone), our Contact on
// that leg names the TLS listener, he answers, and each side hears the
// other's tone.
func TestBaresipCallOverTLS(t *testing.T) {
	const callLength = 4 * time.Second
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	dir := t.TempDir()
	wav := func(name string, freq float64) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, harness.ToneWAV(freq, 8000, callLength+3*time.Second, toneLevel), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-2",
		Server: srv.SIPSAddr(), Transport: "tls", AnswerMode: "auto", AudioSource: wav("bob-1000hz.wav", bobTone)})
	alice := harness.StartBaresip(t, harness.BaresipOptions{User: "alice", Password: "alice-secret-1",
		Server: srv.SIPAddr(), AudioSource: wav("alice-440hz.wav", aliceTone)})
	for _, b := range []*harness.Baresip{bob, alice} {
		if err := b.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.WaitLog(5*time.Second, `msg="binding added" aor=bob .*transport=TLS`); err != nil {
		t.Fatal(err)
	}

	if err := alice.Dial("sip:bob@" + srv.Domain); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitOutput(10*time.Second, `Call established: sip:bob@`); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := bob.WaitOutput(2*time.Second, `Call established: sip:alice@`); err != nil {
		t.Fatalf("bob: %v", err)
	}
	time.Sleep(callLength)
	if err := alice.Hangup(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*harness.Baresip{alice, bob} {
		if _, err := b.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.WaitLog(5*time.Second, `msg="call ended"`, `from=alice to=bob status=200 reason="caller hung up"`); err != nil {
		t.Fatal(err)
	}

	t.Run("INVITE over the registered TLS connection", func(t *testing.T) {
		var regFrom string // bob's end of the connection his REGISTERs used
		var invite *harness.SIPEvent
		for _, e := range bob.Events() {
			e := e
			switch {
			case e.Sent && strings.HasPrefix(e.StartLine, "REGISTER "):
				if e.Transport != "TLS" {
					t.Errorf("bob's REGISTER went over %s, want TLS", e.Transport)
				}
				regFrom = e.Src
			case !e.Sent && strings.HasPrefix(e.StartLine, "INVITE ") && invite == nil:
				invite = &e
			}
		}
		if invite == nil {
			t.Fatal("bob's trace shows no INVITE received")
		}
		if invite.Transport != "TLS" || invite.Dst != regFrom || invite.Src != srv.SIPSAddr() {
			t.Errorf("INVITE reached bob over %s %s -> %s; want TLS from %s to %s, the connection he registered on",
				invite.Transport, invite.Src, invite.Dst, srv.SIPSAddr(), regFrom)
		}
		if c := invite.Get("Contact"); !strings.Contains(c, srv.SIPSAddr()+";transport=tls") {
			t.Errorf("INVITE to bob has Contact %q, want the TLS listener %s;transport=tls", c, srv.SIPSAddr())
		}
	})

	alice.Stop()
	bob.Stop()
	t.Run("alice hears bob", func(t *testing.T) {
		checkHeard(t, alice, bobTone, aliceTone, callLength)
	})
	t.Run("bob hears alice", func(t *testing.T) {
		checkHeard(t, bob, aliceTone, bobTone, callLength)
	})
}
