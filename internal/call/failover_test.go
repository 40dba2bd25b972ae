package call

import (
	"slices"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/kaopu/kaopu/internal/store"
)

// fakeServers plays servers for tryInOrder: each source's outcome, the
// order they were tried in, and which tries were released (done).
type fakeServers struct {
	outcome  map[string]forked
	tried    []string
	released []string
	moves    []string
}

func servers(sources ...string) []store.Binding {
	var out []store.Binding
	for _, s := range sources {
		out = append(out, store.Binding{Source: s, Transport: "UDP"})
	}
	return out
}

func (f *fakeServers) try(b store.Binding) forked {
	f.tried = append(f.tried, b.Source)
	r := f.outcome[b.Source]
	r.done = func() { f.released = append(f.released, b.Source) }
	return r
}

func (f *fakeServers) moved(failed, next store.Binding, r forked) {
	f.moves = append(f.moves, failed.Source+">"+next.Source)
}

// TestTryInOrder: the RFC 3263 §4.3 rule trunk servers and other
// domains' servers share: the next server after a transport error, no
// response within the setup time, or 503; any other outcome (an answer,
// another final response, the caller's CANCEL, the no-answer timeout)
// ends the tries with that server's outcome; when all fail, the last
// server's outcome is the call's.
func TestTryInOrder(t *testing.T) {
	won := &sipgo.DialogClientSession{}
	final := func(code int) forked { return forked{best: code, bestReason: "x"} }
	tests := []struct {
		name      string
		outcome   map[string]forked
		wantTried []string
		want      forked // of the result: winner, best, flags
	}{
		{"first answers", map[string]forked{"a": {winner: won}},
			[]string{"a"}, forked{winner: won}},
		{"503 then answer", map[string]forked{"a": final(503), "b": {winner: won}},
			[]string{"a", "b"}, forked{winner: won}},
		{"unreachable then answer", map[string]forked{"a": {unreached: true}, "b": {winner: won}},
			[]string{"a", "b"}, forked{winner: won}},
		{"transport error after sending then answer", map[string]forked{"a": {}, "b": {winner: won}},
			[]string{"a", "b"}, forked{winner: won}},
		{"silent then 503 then answer", map[string]forked{"a": {silent: true}, "b": final(503), "c": {winner: won}},
			[]string{"a", "b", "c"}, forked{winner: won}},
		{"486 is the caller's", map[string]forked{"a": final(486), "b": {winner: won}},
			[]string{"a"}, final(486)},
		{"404 is the caller's", map[string]forked{"a": final(404), "b": {winner: won}},
			[]string{"a"}, final(404)},
		{"500 is not 503: the caller's", map[string]forked{"a": final(500), "b": {winner: won}},
			[]string{"a"}, final(500)},
		{"408 from the server is an answer", map[string]forked{"a": final(408), "b": {winner: won}},
			[]string{"a"}, final(408)},
		{"503 then 486", map[string]forked{"a": final(503), "b": final(486), "c": {winner: won}},
			[]string{"a", "b"}, final(486)},
		{"caller cancelled while the first rang", map[string]forked{"a": {callerGone: true}, "b": {winner: won}},
			[]string{"a"}, forked{callerGone: true}},
		{"no answer in time is the caller's", map[string]forked{"a": {noAnswer: true}, "b": {winner: won}},
			[]string{"a"}, forked{noAnswer: true}},
		{"all 503: the last", map[string]forked{"a": final(503), "b": final(503), "c": final(503)},
			[]string{"a", "b", "c"}, final(503)},
		{"all fail, the last silent", map[string]forked{"a": final(503), "b": {unreached: true}, "c": {silent: true}},
			[]string{"a", "b", "c"}, forked{silent: true}},
		{"all fail, the last unreachable", map[string]forked{"a": {silent: true}, "b": final(503), "c": {unreached: true}},
			[]string{"a", "b", "c"}, forked{unreached: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeServers{outcome: tc.outcome}
			r := tryInOrder(servers("a", "b", "c"), f.try, func() bool { return false }, nil, f.moved)
			if !slices.Equal(f.tried, tc.wantTried) {
				t.Fatalf("tried %v, want %v", f.tried, tc.wantTried)
			}
			if r.winner != tc.want.winner || r.best != tc.want.best || r.callerGone != tc.want.callerGone ||
				r.noAnswer != tc.want.noAnswer || r.silent != tc.want.silent || r.unreached != tc.want.unreached {
				t.Fatalf("result %+v, want %+v", r, tc.want)
			}
			// Every try but the result's was released before the next,
			// and each switch was told; the result's is the caller's to
			// release (its winner's dialog lives on).
			n := len(f.tried)
			if want := f.tried[:n-1]; !slices.Equal(f.released, want) {
				t.Fatalf("released %v before the next, want %v", f.released, want)
			}
			if len(f.moves) != n-1 {
				t.Fatalf("moves %v for %d tries", f.moves, n)
			}
			r.done()
			if f.released[len(f.released)-1] != f.tried[n-1] {
				t.Fatalf("the result's done releases %v", f.released)
			}
		})
	}
}

// TestTryInOrderStops: the caller's CANCEL between two tries, or a
// server that took the caller's media (more false), ends the tries; only
// the first is the caller's 487.
func TestTryInOrderStops(t *testing.T) {
	f := &fakeServers{outcome: map[string]forked{"a": {best: 503}, "b": {best: 503}, "c": {winner: &sipgo.DialogClientSession{}}}}
	calls := 0
	gone := func() bool { calls++; return calls == 2 } // gone after b's 503
	r := tryInOrder(servers("a", "b", "c"), f.try, gone, nil, f.moved)
	if !slices.Equal(f.tried, []string{"a", "b"}) || !r.callerGone || r.winner != nil {
		t.Fatalf("cancel between tries: tried %v, result %+v", f.tried, r)
	}
	r.done()

	f = &fakeServers{outcome: map[string]forked{"a": {best: 503}, "b": {winner: &sipgo.DialogClientSession{}}}}
	r = tryInOrder(servers("a", "b"), f.try, func() bool { return false }, func() bool { return false }, f.moved)
	if !slices.Equal(f.tried, []string{"a"}) || r.callerGone || r.best != 503 {
		t.Fatalf("more false: tried %v, result %+v", f.tried, r)
	}
}

// TestNextServer: which outcomes move on (RFC 3263 §4.3).
func TestNextServer(t *testing.T) {
	for _, tc := range []struct {
		r    forked
		want bool
	}{
		{forked{unreached: true}, true},
		{forked{silent: true}, true},
		{forked{}, true}, // the transport failed before any final response
		{forked{best: 503}, true},
		{forked{best: 500}, false},
		{forked{best: 480}, false},
		{forked{best: 603}, false},
		{forked{winner: &sipgo.DialogClientSession{}}, false},
		{forked{callerGone: true}, false},
		{forked{callerGone: true, best: 503}, false},
		{forked{noAnswer: true}, false},
	} {
		if got := nextServer(tc.r); got != tc.want {
			t.Errorf("nextServer(%+v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}
