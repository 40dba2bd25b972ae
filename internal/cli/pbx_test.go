package cli

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// toneWAV writes a second of a 16 kHz mono WAV file (a rate menus do not
// play: the import converts it).
func toneWAV(t *testing.T) string {
	t.Helper()
	const rate, n = 16000, 16000
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, 36+2*n)
	b = append(b, "WAVEfmt "...)
	for _, v := range []uint32{16} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, 2*rate)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, 2*n)
	b = append(b, make([]byte, 2*n)...)
	path := filepath.Join(t.TempDir(), "menu.wav")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGroupAndIVRCommands: groups and menus are checked against the
// users and each other, and DIDs may name them.
func TestGroupAndIVRCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	prompt := toneWAV(t)
	bad := filepath.Join(t.TempDir(), "bad.wav")
	os.WriteFile(bad, []byte("not a wav"), 0o600)
	importCSV := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(importCSV, []byte("erin,erin-secret-55,801\nfrank,frank-secret-66,7000\n"), 0o600)
	steps := []struct {
		args []string
		code int
		out  string // substring of stdout (or stderr when code != 0)
	}{
		{[]string{"user", "add", "alice", "--password", "alice-secret-1", "--ext", "101"}, 0, ""},
		{[]string{"user", "add", "bob", "--password", "bob-secret-22", "--ext", "102"}, 0, ""},
		{[]string{"group", "add", "600", "--members", "alice,102", "--strategy", "hunt", "--ring-time", "15s"}, 0, "added ring group 600 (hunt): alice, 102"},
		{[]string{"group", "add", "601", "--members", "carol"}, 1, "--members carol: no such user or extension"},
		{[]string{"group", "add", "602", "--members", "alice", "--strategy", "random"}, 2, `--strategy "random"`},
		{[]string{"group", "add", "101", "--members", "bob"}, 1, "already a user's number"},
		{[]string{"group", "add", "600", "--members", "bob"}, 1, "already a group's number"},
		{[]string{"group", "add", "603", "--members", "bob", "--fallback", "999"}, 1, "--fallback 999: no such"},
		{[]string{"group", "add", "604", "--members", "bob", "--fallback", "600"}, 0, "added ring group 604 (ringall)"},
		{[]string{"group", "list"}, 0, "600     hunt      15s   alice,102"},
		{[]string{"ivr", "add", "700", "--prompt", prompt, "--option", "1=alice", "--option", "2=600", "--default", "604"}, 0, "added IVR menu 700 (prompt 1s, 2 option(s))"},
		{[]string{"ivr", "add", "701", "--prompt", bad}, 1, "not a RIFF WAVE file"},
		{[]string{"ivr", "add", "701", "--prompt", prompt, "--option", "12=alice"}, 2, "want KEY=NUMBER"},
		{[]string{"ivr", "add", "701", "--prompt", prompt, "--option", "3=nobody"}, 1, "--option 3 nobody: no such"},
		{[]string{"ivr", "add", "600", "--prompt", prompt}, 1, "already a group's number"},
		{[]string{"ivr", "add", "701", "--prompt", prompt, "--option", "0=701", "--option", "9=700", "--extension-dialing"}, 0, "added IVR menu 701"},
		{[]string{"ivr", "list"}, 0, "1=alice 2=600"},
		{[]string{"conf", "add", "7000"}, 0, ""},
		{[]string{"group", "add", "7000", "--members", "bob"}, 1, "already a conference room's number"},
		{[]string{"ivr", "add", "702", "--prompt", prompt, "--option", "5=7000"}, 0, "added IVR menu 702"},
		{[]string{"trunk", "add", "carrier", "--address", "192.0.2.1"}, 0, ""},
		{[]string{"did", "add", "+442071230001", "--to", "600"}, 0, "added DID +442071230001 -> 600"},
		{[]string{"did", "add", "+442071230002", "--to", "700"}, 0, "added DID +442071230002 -> 700"},
		{[]string{"did", "add", "+442071230003", "--to", "888"}, 1, "--to 888: no such"},
		{[]string{"user", "add", "carol", "--password", "carol-secret-3", "--ext", "600"}, 1, "600 is already a group's number"},
		{[]string{"user", "add", "700", "--password", "carol-secret-3"}, 1, "700 is already a menu's number"},
		{[]string{"user", "add", "dave", "--password", "dave-secret-44", "--ext", "7000"}, 1, "7000 is already a conference room's number"},
		{[]string{"user", "import", importCSV}, 1, "line 2: 7000 is already a conference room's number"},
		{[]string{"conf", "add", "600"}, 1, "600 is already a group's number"},
		{[]string{"conf", "add", "102"}, 1, "102 is already a user's number"},
		{[]string{"group", "del", "604"}, 0, "deleted ring group 604"},
		{[]string{"ivr", "del", "701"}, 0, "deleted IVR menu 701"},
		{[]string{"ivr", "del", "701"}, 1, "not found"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "", append(s.args, "--data", data)...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		if code != s.code || !strings.Contains(text, s.out) {
			t.Fatalf("kaopu %s: exit %d, output %q/%q; want exit %d and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}
}
