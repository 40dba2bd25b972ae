package call

import (
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

func TestGroupSteps(t *testing.T) {
	members := []string{"alice", "bob", "102"}
	for _, tc := range []struct {
		name string
		g    store.Group
		want []groupStep
	}{
		{"ringall rings everyone at once for the ring time",
			store.Group{Members: members, Strategy: store.StrategyRingAll, RingTime: 20 * time.Second},
			[]groupStep{{members, 20 * time.Second}}},
		{"no strategy is ringall",
			store.Group{Members: members},
			[]groupStep{{members, 30 * time.Second}}},
		{"hunt rings one member at a time, in order, each for the ring time",
			store.Group{Members: members, Strategy: store.StrategyHunt, RingTime: 5 * time.Second},
			[]groupStep{{[]string{"alice"}, 5 * time.Second}, {[]string{"bob"}, 5 * time.Second}, {[]string{"102"}, 5 * time.Second}}},
		{"hunt without a ring time takes the no-answer timeout",
			store.Group{Members: members[:1], Strategy: store.StrategyHunt},
			[]groupStep{{[]string{"alice"}, 30 * time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := groupSteps(tc.g, 30*time.Second); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("steps %+v, want %+v", got, tc.want)
			}
		})
	}
}
