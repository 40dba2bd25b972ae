package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
	"github.com/kaopu/kaopu/internal/voicemail"
)

// TestVoicemail: mailboxes are turned on (by name or extension, with a
// PIN checked for form) and off, voicemail: targets are accepted where
// numbers of ours are, messages are listed, exported and deleted, and
// voicemail.access is a number in use.
func TestVoicemail(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	wav := filepath.Join(t.TempDir(), "m.wav")
	step := func(args []string, code int, want string) {
		t.Helper()
		c, out, errOut := run(t, "", append(args, "--data", data)...)
		text := out
		if code != 0 {
			text = errOut
		}
		if c != code || !strings.Contains(text, want) {
			t.Fatalf("kaopu %s: exit %d, output %q/%q; want exit %d and %q", strings.Join(args, " "), c, out, errOut, code, want)
		}
	}
	step([]string{"user", "add", "bob", "--password", "bob-secret-1", "--ext", "1002"}, 0, "")
	step([]string{"voicemail", "on", "1002", "--pin", "12"}, 2, "--pin")
	step([]string{"voicemail", "on", "1002", "--pin", "4321"}, 0, "voicemail on for bob (PIN set)")
	step([]string{"voicemail", "on", "nobody"}, 1, "no such user")
	step([]string{"voicemail", "off", "bob"}, 0, "voicemail off for bob (PIN set)")
	step([]string{"did", "add", "+442071230000", "--to", "voicemail:bob"}, 0, "-> voicemail:bob")
	step([]string{"did", "add", "+442071230001", "--to", "voicemail:"}, 0, "-> voicemail:")
	step([]string{"did", "add", "+442071230002", "--to", "voicemail:zed"}, 1, "no such user")
	step([]string{"group", "add", "600", "--members", "bob", "--fallback", "voicemail:bob"}, 0, "added ring group 600")

	// A message as the server leaves one.
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "kaopu.db"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.AddMessage(context.Background(), store.VoiceMessage{Mailbox: "bob", CallerNumber: "+15551230000",
		CallerName: "Carrier", Received: time.Now(), Duration: 1500 * time.Millisecond, WAV: []byte("RIFF-test")})
	st.Close()
	if err != nil || id != 1 {
		t.Fatalf("message %d: %v", id, err)
	}
	mb, _ := func() (store.Mailbox, error) {
		st, _ := sqlite.Open(context.Background(), filepath.Join(data, "kaopu.db"))
		defer st.Close()
		return st.GetMailbox(context.Background(), "bob")
	}()
	if mb.Enabled || !voicemail.CheckPIN("bob", "4321", mb.PINHash) {
		t.Errorf("mailbox %+v: want off, PIN 4321 kept", mb)
	}
	step([]string{"voicemail", "list"}, 0, "+15551230000")
	step([]string{"voicemail", "list", "1002"}, 0, "1.5s")
	step([]string{"voicemail", "export", "1", wav}, 0, "written to")
	step([]string{"voicemail", "export", "x", wav}, 2, "not a message ID")
	step([]string{"voicemail", "del", "1"}, 0, "deleted message 1")
	step([]string{"voicemail", "del", "1"}, 1, "not found")
	step([]string{"voicemail", "frobnicate"}, 2, "unknown subcommand")
	// *97, the default voicemail.access, is one of our numbers.
	step([]string{"did", "add", "+442071230003", "--to", "*97"}, 0, "-> *97")
	step([]string{"did", "add", "+442071230004", "--to", "*96"}, 1, "no such user")
}
