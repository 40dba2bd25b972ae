package cdr_test

import (
	"testing"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/store"
)

func TestDispositionFor(t *testing.T) {
	tests := []struct {
		status              int
		answered, cancelled bool
		want                string
	}{
		{200, true, false, store.DispositionAnswered},
		{200, false, false, store.DispositionAnswered}, // a 2xx is an answer
		{0, true, false, store.DispositionAnswered},    // ended by BYE after the answer
		{487, true, true, store.DispositionAnswered},   // CANCEL raced the 200: answered wins
		{487, false, false, store.DispositionCancelled},
		{0, false, true, store.DispositionCancelled},
		{486, false, true, store.DispositionCancelled}, // the caller's CANCEL came first
		{486, false, false, store.DispositionBusy},
		{600, false, false, store.DispositionBusy},
		{603, false, false, store.DispositionBusy},
		{408, false, false, store.DispositionNoAnswer},
		{480, false, false, store.DispositionNoAnswer},
		{404, false, false, store.DispositionFailed},
		{403, false, false, store.DispositionFailed},
		{488, false, false, store.DispositionFailed},
		{500, false, false, store.DispositionFailed},
		{503, false, false, store.DispositionFailed},
		{0, false, false, store.DispositionFailed},
	}
	for _, tc := range tests {
		if got := cdr.DispositionFor(tc.status, tc.answered, tc.cancelled); got != tc.want {
			t.Errorf("DispositionFor(%d, answered=%v, cancelled=%v) = %q, want %q", tc.status, tc.answered, tc.cancelled, got, tc.want)
		}
	}
}
