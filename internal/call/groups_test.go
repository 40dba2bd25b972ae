package call

import (
	"io"
	"log/slog"
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

type users map[string]string // login -> user

func (u users) CanonicalUser(login string) (string, bool) { n, ok := u[login]; return n, ok }

type bindings map[string][]store.Binding

func (b bindings) Lookup(aor string) []store.Binding { return b[aor] }

// TestStepTargets: a step rings the contacts of its members that are
// users and registered, each user once, never the caller.
func TestStepTargets(t *testing.T) {
	m := &Manager{
		users: users{"alice": "alice", "bob": "bob", "102": "bob", "carol": "carol", "dave": "dave", "103": "carol"},
		loc: bindings{
			"alice": {{AOR: "alice", Contact: "sip:alice@192.0.2.1", Transport: "UDP"}},
			"bob":   {{AOR: "bob", Contact: "sip:bob@192.0.2.2", Transport: "UDP"}, {AOR: "bob", Contact: "sips:bob@192.0.2.3", Transport: "TLS"}},
			"carol": {{AOR: "carol", Contact: "sip:carol@192.0.2.4", Transport: "UDP"}},
		},
	}
	c := &Call{Caller: "alice", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	seen := map[string]bool{}
	targets, names := m.stepTargets(c, "600", []string{"alice", "bob", "102", "nobody", "dave"}, false, seen)
	if !reflect.DeepEqual(names, []string{"bob"}) || len(targets) != 2 {
		t.Errorf("step 1 rings %v (%d contacts), want bob's two: not the caller, bob once, no unknown or unregistered member", names, len(targets))
	}
	// A later step (hunt) does not ring bob again.
	targets, names = m.stepTargets(c, "600", []string{"102", "103"}, false, seen)
	if !reflect.DeepEqual(names, []string{"carol"}) || len(targets) != 1 || targets[0].AOR != "carol" {
		t.Errorf("step 2 rings %v %v, want carol only", names, targets)
	}
	// A sips call rings only contacts over TLS.
	targets, names = m.stepTargets(c, "600", []string{"bob", "carol"}, true, map[string]bool{})
	if !reflect.DeepEqual(names, []string{"bob"}) || len(targets) != 1 || targets[0].Transport != "TLS" {
		t.Errorf("sips step rings %v %v, want bob's TLS contact", names, targets)
	}
}
