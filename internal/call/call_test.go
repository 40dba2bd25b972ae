package call

import (
	"context"
	"testing"

	"github.com/emiago/sipgo"
)

func TestWithoutOption(t *testing.T) {
	tests := []struct{ in, tag, want string }{
		{"100rel, timer, replaces", "100rel", "timer, replaces"},
		{"100REL", "100rel", ""},
		{"timer", "timer", ""},
		{" path ,100rel", "100rel", "path"},
		{"", "100rel", ""},
	}
	for _, tc := range tests {
		if got := withoutOption(tc.in, tc.tag); got != tc.want {
			t.Errorf("withoutOption(%q, %q) = %q, want %q", tc.in, tc.tag, got, tc.want)
		}
	}
}

func TestBetterFinal(t *testing.T) {
	// RFC 3261 §16.7: 6xx beats busy beats other 4xx beats 5xx.
	order := []int{503, 404, 486, 603}
	best := 0
	for _, c := range order {
		if !betterFinal(c, best) {
			t.Fatalf("%d should beat %d", c, best)
		}
		best = c
	}
	if betterFinal(500, 486) || betterFinal(404, 486) {
		t.Fatal("a worse final replaced 486")
	}
}

func TestCodecOf(t *testing.T) {
	body := []byte("v=0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
	if got := codecOf(body); got != "PCMA" {
		t.Fatalf("codecOf = %q, want PCMA", got)
	}
}

// TestWaitAnswerSurvivesSipgoPanic: a panic inside sipgo's WaitAnswer (its
// CANCEL path dereferences a missing response) becomes the branch's error.
func TestWaitAnswerSurvivesSipgoPanic(t *testing.T) {
	var cs *sipgo.DialogClientSession // WaitAnswer on nil panics like the bug
	if err := waitAnswer(context.Background(), cs, sipgo.AnswerOptions{}); err == nil {
		t.Fatal("no error from a panicking WaitAnswer")
	}
}
