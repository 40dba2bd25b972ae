package harness

import (
	"os/exec"
	"testing"
)

// RequireTool returns the path of the executable name, or fails the test
// naming the Debian package that provides it.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: install it with `apt-get install -y %s` "+
			"(or run `make test-deps`)", name, debianPackage)
	}
	return p
}
