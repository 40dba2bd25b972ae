package call

// Failover between the servers of one destination (RFC 3263 §4.3): a
// trunk's servers, or the servers DNS located for another domain. The
// servers are tried one at a time, in order; the next is tried only when
// the last one could not be reached, stayed silent or answered 503.
// Trunk calls (ringServers) and calls to other domains (ringRemote) share
// this, so both follow one rule.

import "github.com/kaopu/kaopu/internal/store"

// nextServer reports whether a try's outcome sends the call on to the
// next server (RFC 3263 §4.3): no request could be sent or the
// transport failed before any final response (best 0), no response at
// all within the setup time (silent), or 503. An answer,
// the caller's CANCEL, the no-answer timeout and every other final
// response (busy, 404, 480, even 500) end the tries: the server was
// reached and decided.
func nextServer(r forked) bool {
	if r.winner != nil || r.callerGone || r.noAnswer {
		return false
	}
	return r.silent || r.best == 0 || r.best == 503
}

// tryInOrder tries servers one after the other with try until one's
// outcome is not a reason to go on (nextServer), and returns that
// outcome, or the last server's when all failed. Before each further
// server, two checks may end the tries: callerGone (the caller cancelled
// between two tries) makes the last outcome the caller's 487; more false
// (the caller's media went to this server) keeps it as it is. moved is
// told each switch, after the failed try's done.
func tryInOrder(servers []store.Binding, try func(store.Binding) forked, callerGone, more func() bool, moved func(failed, next store.Binding, r forked)) forked {
	var r forked
	for i, b := range servers {
		r = try(b)
		if !nextServer(r) || i+1 == len(servers) || more != nil && !more() {
			return r
		}
		if callerGone != nil && callerGone() {
			r.callerGone = true
			return r
		}
		r.done()
		if moved != nil {
			moved(b, servers[i+1], r)
		}
	}
	return r
}

// tryServers sends the call to servers one at a time (tryInOrder), each
// with spec (spec.setup is how long a server may stay silent); what
// names the kind of destination in the log ("trunk", "domain") and who
// the destination.
func (m *Manager) tryServers(c *Call, servers []store.Binding, spec legSpec, more func() bool, what, who string) forked {
	try := func(b store.Binding) forked { return m.fork(c, []store.Binding{b}, spec) }
	gone := func() bool { return c.ctx.Err() != nil || c.in.Context().Err() != nil }
	moved := func(failed, next store.Binding, r forked) {
		c.Log.Warn(what+" server failed; trying the next", what, who, "server", failed.Transport+":"+failed.Source,
			"status", r.best, "silent", r.silent, "unreached", r.unreached, "next", next.Transport+":"+next.Source)
	}
	return tryInOrder(servers, try, gone, more, moved)
}
