package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConf: rooms are added with their flags checked, listed without
// their PINs, refused over a user's extension, accepted as a DID's
// target, and deleted.
func TestConf(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	steps := []struct {
		args []string
		code int
		out  string // substring of stdout (or stderr when code != 0)
	}{
		{[]string{"user", "add", "alice", "--password", "alice-secret-1", "--ext", "1001"}, 0, ""},
		{[]string{"conf", "add", "7000", "--pin", "4321", "--max", "5", "--name", "team"}, 0, "added conference room 7000"},
		{[]string{"conf", "add", "7001"}, 0, "added conference room 7001"},
		{[]string{"conf", "add", "7000"}, 1, "already exists"},
		{[]string{"conf", "add", "1001"}, 1, "1001 is already a user's number"},
		{[]string{"conf", "add", "70a"}, 2, "1-20 digits"},
		{[]string{"conf", "add", "7002", "--pin", "12#"}, 2, "--pin"},
		{[]string{"conf", "add", "7002", "--max", "-1"}, 2, "--max -1"},
		{[]string{"conf", "list"}, 0, "7000    team  yes  5"},
		{[]string{"did", "add", "+442071230000", "--to", "7001"}, 0, "-> 7001"},
		{[]string{"did", "add", "+442071230001", "--to", "7009"}, 1, "no such user"},
		{[]string{"conf", "del", "7001"}, 0, "deleted conference room 7001"},
		{[]string{"conf", "del", "7001"}, 1, "not found"},
		{[]string{"conf", "frobnicate"}, 2, "unknown subcommand"},
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
	_, out, _ := run(t, "", "conf", "list", "--data", data)
	if strings.Contains(out, "4321") || strings.Contains(out, "7001") {
		t.Errorf("conf list shows a PIN or a deleted room:\n%s", out)
	}
}
