package server

import "testing"

func TestEventPackage(t *testing.T) {
	for in, want := range map[string]string{
		"message-summary":            "message-summary",
		"Message-Summary;id=12":      "message-summary",
		"  message-summary ; id=1  ": "message-summary",
		"presence":                   "presence",
		"":                           "",
	} {
		if got := eventPackage(in); got != want {
			t.Errorf("eventPackage(%q) = %q, want %q", in, got, want)
		}
	}
}
