package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUserCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	steps := []struct {
		args []string
		code int
		out  string // substring of stdout (or stderr when code != 0)
	}{
		{[]string{"user", "add", "alice", "--password", "secret1", "--ext", "1001", "--data", data, "--domain", "kaopu.test"}, 0, "added user alice ext 1001 (realm kaopu.test)"},
		{[]string{"user", "add", "--data", data, "--password", "secret2", "bob"}, 0, "added user bob"},
		{[]string{"user", "add", "carol", "--data", data}, 2, "--password is required"},
		{[]string{"user", "add", "alice", "--password", "secret1", "--data", data}, 1, "already exists"},
		{[]string{"user", "add", "dave", "--password", "secret1", "--ext", "1001", "--data", data}, 1, "already exists"},
		{[]string{"user", "add", "bad name", "--password", "secret1", "--data", data}, 1, "user name must be"},
		{[]string{"user", "add", "erin", "--password", "short", "--data", data}, 1, "password must be"},
		{[]string{"user", "passwd", "alice", "--password", "secret9", "--data", data}, 0, "password of alice changed"},
		{[]string{"user", "passwd", "nobody", "--password", "secret9", "--data", data}, 1, "not found"},
		{[]string{"user", "del", "bob", "--data", data}, 0, "deleted user bob"},
		{[]string{"user", "del", "bob", "--data", data}, 1, "not found"},
		{[]string{"user", "frobnicate", "--data", data}, 2, "unknown subcommand"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "", s.args...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		if code != s.code || !strings.Contains(text, s.out) {
			t.Fatalf("kaopu %s: exit %d, output %q/%q; want exit %d and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}
	_, out, _ := run(t, "", "user", "list", "--data", data)
	if !strings.Contains(out, "alice") || !strings.Contains(out, "1001") || strings.Contains(out, "bob") {
		t.Fatalf("list = %q", out)
	}
	// The realm stays the one first used, without --domain.
	if _, out, _ := run(t, "", "user", "add", "frank", "--password", "secret1", "--data", data); !strings.Contains(out, "realm kaopu.test") {
		t.Fatalf("realm not kept: %q", out)
	}
}

func TestUserImport(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	csv := filepath.Join(t.TempDir(), "u.csv")
	os.WriteFile(csv, []byte("# name,password,ext\nu1,password1,2001\nu2,password2\n"), 0o600)
	if code, out, errOut := run(t, "", "user", "import", csv, "--data", data, "--domain", "kaopu.test"); code != 0 || !strings.Contains(out, "imported 2 users") {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	// All or nothing: a bad line imports nobody.
	if code, _, errOut := run(t, "u3,password3\nu4,x\n", "user", "import", "-", "--data", data); code != 1 || !strings.Contains(errOut, "line 2") {
		t.Fatalf("bad import: %d %q", code, errOut)
	}
	if _, out, _ := run(t, "", "user", "list", "--data", data); strings.Contains(out, "u3") {
		t.Fatal("partial import happened")
	}
}

func TestServeRejectsBadFlags(t *testing.T) {
	code, _, errOut := run(t, "", "serve", "--data", t.TempDir(), "--sip", "nonsense", "--http", "off")
	if code != 2 || !strings.Contains(errOut, "sip.listen") {
		t.Fatalf("exit %d, %q; want 2 naming sip.listen", code, errOut)
	}
	code, _, errOut = run(t, "", "serve", "--log-format", "xml")
	if code != 2 || !strings.Contains(errOut, "log.format") {
		t.Fatalf("exit %d, %q; want 2 naming log.format", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errOut := run(t, ""); code != 2 || !strings.Contains(errOut, "kaopu serve") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
	if code, out, _ := run(t, "", "version"); code != 0 || !strings.HasPrefix(out, "kaopu ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestUserPolicyAndBanCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"user", "add", "alice", "--password", "secret1", "--allow", "international", "--data", data}, 0, "added user alice"},
		{[]string{"user", "set", "alice", "--media-encryption", "required", "--signalling", "tls_required", "--max-concurrent", "-1", "--data", data}, 0,
			"policy of alice: media-encryption=required signalling=tls_required allow=international max-concurrent=-1"},
		{[]string{"user", "set", "alice", "--allow", "none", "--media-encryption", "default", "--data", data}, 0,
			"policy of alice: signalling=tls_required max-concurrent=-1"},
		{[]string{"user", "set", "alice", "--allow", "moon", "--data", data}, 1, `destination class "moon"`},
		{[]string{"user", "set", "alice", "--signalling", "pigeon", "--data", data}, 1, `signalling "pigeon"`},
		{[]string{"user", "set", "nobody", "--signalling", "any", "--data", data}, 1, "not found"},
		// A new password keeps the policy.
		{[]string{"user", "passwd", "alice", "--password", "secret2", "--data", data}, 0, "password of alice changed"},
		{[]string{"user", "list", "--data", data}, 0, "signalling=tls_required max-concurrent=-1"},

		{[]string{"ban", "add", "192.0.2.9", "--for", "2h", "--reason", "test", "--data", data}, 0, "banned 192.0.2.9 until"},
		{[]string{"ban", "add", "not-an-ip", "--data", data}, 2, "not an IP address"},
		{[]string{"ban", "list", "--data", data}, 0, "192.0.2.9"},
		{[]string{"ban", "del", "192.0.2.9", "--data", data}, 0, "lifted the ban of 192.0.2.9"},
		{[]string{"ban", "del", "192.0.2.9", "--data", data}, 1, "is not banned"},
		{[]string{"ban", "flush", "--data", data}, 2, "unknown subcommand"},
	}
	for _, s := range steps {
		code, out, errOut := run(t, "", s.args...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		if code != s.code || !strings.Contains(text, s.out) {
			t.Fatalf("kaopu %s: exit %d, output %q/%q; want exit %d and %q", strings.Join(s.args, " "), code, out, errOut, s.code, s.out)
		}
	}
	if _, out, _ := run(t, "", "ban", "list", "--data", data); strings.Contains(out, "192.0.2.9") {
		t.Fatalf("lifted ban still listed: %q", out)
	}
}
