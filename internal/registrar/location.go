package registrar

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

const shardCount = 64

type shard struct {
	mu sync.RWMutex
	m  map[string][]entry
}

// entry is a binding as the location table keeps it: about half the size
// of a store.Binding, which matters at 100,000 registrations.
type entry struct {
	contact, source, callID, userAgent string
	rare                               *rareFields // nil when all empty
	expires, updated                   int64       // unix nanoseconds
	cseq                               uint32
	transport                          string // interned constant: UDP, TCP, ...
}

type rareFields struct{ q, instance, regID, localAddr string }

var transports = map[string]string{"UDP": "UDP", "TCP": "TCP", "TLS": "TLS", "WS": "WS", "WSS": "WSS"}

func toEntry(b store.Binding) entry {
	e := entry{contact: b.Contact, source: b.Source, callID: b.CallID, userAgent: b.UserAgent,
		expires: b.Expires.UnixNano(), updated: b.Updated.UnixNano(), cseq: b.CSeq, transport: b.Transport}
	if t, ok := transports[b.Transport]; ok {
		e.transport = t
	}
	if b.Q != "" || b.Instance != "" || b.RegID != "" || b.LocalAddr != "" {
		e.rare = &rareFields{q: b.Q, instance: b.Instance, regID: b.RegID, localAddr: b.LocalAddr}
	}
	return e
}

func (e *entry) binding(aor string) store.Binding {
	b := store.Binding{AOR: aor, Contact: e.contact, Source: e.source, Transport: e.transport, CallID: e.callID,
		CSeq: e.cseq, Expires: time.Unix(0, e.expires), UserAgent: e.userAgent, Updated: time.Unix(0, e.updated)}
	if e.rare != nil {
		b.Q, b.Instance, b.RegID, b.LocalAddr = e.rare.q, e.rare.instance, e.rare.regID, e.rare.localAddr
	}
	return b
}

func bindings(aor string, es []entry) []store.Binding {
	out := make([]store.Binding, len(es))
	for i := range es {
		out[i] = es[i].binding(aor)
	}
	return out
}

// Location is the in-memory location service: address of record -> bindings.
// Every change is queued for the store and written in batches.
type Location struct {
	st     store.Bindings
	log    *slog.Logger
	now    func() time.Time
	seed   maphash.Seed
	shards [shardCount]shard
	count  atomic.Int64

	ops     chan store.BindingOp
	flushed chan struct{}
	closed  atomic.Bool
}

// NewLocation makes an empty location table persisting to st.
func NewLocation(st store.Bindings, log *slog.Logger, now func() time.Time) *Location {
	l := &Location{st: st, log: log, now: now, seed: maphash.MakeSeed(),
		ops: make(chan store.BindingOp, 16384), flushed: make(chan struct{})}
	for i := range l.shards {
		l.shards[i].m = make(map[string][]entry)
	}
	return l
}

func (l *Location) shard(aor string) *shard {
	return &l.shards[maphash.String(l.seed, aor)%shardCount]
}

// Load fills the table from the store (at start-up).
func (l *Location) Load(ctx context.Context) (int, error) {
	bs, err := l.st.LoadBindings(ctx, l.now())
	if err != nil {
		return 0, err
	}
	for _, b := range bs {
		s := l.shard(b.AOR)
		s.m[b.AOR] = append(s.m[b.AOR], toEntry(b))
	}
	l.count.Store(int64(len(bs)))
	return len(bs), nil
}

// Count returns the number of bindings held.
func (l *Location) Count() int { return int(l.count.Load()) }

// Lookup returns a copy of the unexpired bindings of aor.
func (l *Location) Lookup(aor string) []store.Binding {
	s := l.shard(aor)
	now := l.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	cur := s.m[aor]
	out := make([]store.Binding, 0, len(cur))
	for i := range cur {
		if cur[i].expires > now.UnixNano() {
			out = append(out, cur[i].binding(aor))
		}
	}
	return out
}

// Modify runs fn on aor's bindings under the shard lock. fn returns the new
// set, or an error to leave everything as it was. Changes are persisted.
func (l *Location) Modify(aor string, fn func(cur []store.Binding) ([]store.Binding, error)) ([]store.Binding, error) {
	s := l.shard(aor)
	s.mu.Lock()
	old := bindings(aor, s.m[aor])
	next, err := fn(old)
	if err != nil {
		s.mu.Unlock()
		return old, err
	}
	if len(next) == 0 {
		delete(s.m, aor)
	} else {
		es := make([]entry, len(next))
		for i, b := range next {
			es[i] = toEntry(b)
		}
		s.m[aor] = es
	}
	l.count.Add(int64(len(next) - len(old)))
	// Queue under the lock so two changes to one AOR reach the store in order.
	l.persist(aor, old, next)
	s.mu.Unlock()
	return next, nil
}

// persist queues the difference between old and next for the store and logs it.
func (l *Location) persist(aor string, old, next []store.Binding) {
	for _, o := range old {
		if indexOf(next, o.Contact) < 0 {
			l.queue(store.BindingOp{Delete: true, Binding: o})
			l.log.Info("binding removed", "aor", aor, "contact", o.Contact, "source", o.Source, "transport", o.Transport)
		}
	}
	for _, n := range next {
		i := indexOf(old, n.Contact)
		if i >= 0 && old[i] == n {
			continue
		}
		l.queue(store.BindingOp{Binding: n})
		if i < 0 {
			l.log.Info("binding added", "aor", aor, "contact", n.Contact, "source", n.Source,
				"transport", n.Transport, "expires", int(n.Expires.Sub(l.now()).Round(time.Second).Seconds()), "user_agent", n.UserAgent)
		} else if l.log.Enabled(context.Background(), slog.LevelDebug) {
			l.log.Debug("binding refreshed", "aor", aor, "contact", n.Contact, "source", n.Source, "transport", n.Transport)
		}
	}
}

func indexOf(bs []store.Binding, contact string) int {
	for i := range bs {
		if bs[i].Contact == contact {
			return i
		}
	}
	return -1
}

func (l *Location) queue(op store.BindingOp) {
	if l.closed.Load() {
		return
	}
	l.ops <- op
}

// Each calls fn for every unexpired binding (a snapshot per shard).
func (l *Location) Each(fn func(store.Binding)) {
	now := l.now().UnixNano()
	var snap []store.Binding
	for i := range l.shards {
		s := &l.shards[i]
		snap = snap[:0]
		s.mu.RLock()
		for aor, es := range s.m {
			for j := range es {
				if es[j].expires > now {
					snap = append(snap, es[j].binding(aor))
				}
			}
		}
		s.mu.RUnlock()
		for _, b := range snap {
			fn(b)
		}
	}
}

// BehindNAT reports whether b registered from another address than its
// Contact names, i.e. a NAT rewrote its source.
func BehindNAT(b store.Binding) bool {
	u, err := parseHostPort(b.Contact)
	return err != nil || u != b.Source
}

// Sweep removes bindings that have expired.
func (l *Location) Sweep() int {
	now := l.now().UnixNano()
	removed := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for aor, bs := range s.m {
			expired := false
			for j := range bs {
				expired = expired || bs[j].expires <= now
			}
			if !expired {
				continue
			}
			keep := bs[:0:0]
			for j := range bs {
				if bs[j].expires > now {
					keep = append(keep, bs[j])
					continue
				}
				b := bs[j].binding(aor)
				removed++
				l.queue(store.BindingOp{Delete: true, Binding: b})
				l.log.Info("binding expired", "aor", aor, "contact", b.Contact, "source", b.Source, "transport", b.Transport)
			}
			if len(keep) == len(bs) {
				continue
			}
			if len(keep) == 0 {
				delete(s.m, aor)
			} else {
				s.m[aor] = keep
			}
		}
		s.mu.Unlock()
	}
	l.count.Add(-int64(removed))
	return removed
}

// Run sweeps expired bindings and writes queued changes to the store in
// batches until ctx ends; then it writes what is left and returns.
func (l *Location) Run(ctx context.Context) {
	defer close(l.flushed)
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	// Changes are coalesced per binding: of several changes to one contact
	// within a batch only the last is written.
	type key struct{ aor, contact string }
	batch := make([]store.BindingOp, 0, 4096)
	index := make(map[key]int, 4096)
	add := func(op store.BindingOp) {
		if op.Binding.Contact == "" {
			// Delete-all: later changes must stay after it.
			clear(index)
			batch = append(batch, op)
			return
		}
		k := key{op.Binding.AOR, op.Binding.Contact}
		if i, ok := index[k]; ok {
			batch[i] = op
			return
		}
		index[k] = len(batch)
		batch = append(batch, op)
	}
	write := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := l.st.ApplyBindings(wctx, batch); err != nil {
			l.log.Error("saving registrations failed", "error", err, "changes", len(batch))
		}
		cancel()
		batch = batch[:0]
		clear(index)
	}
	cleanup := time.NewTicker(time.Minute)
	defer cleanup.Stop()
	for {
		select {
		case op := <-l.ops:
			add(op)
			if len(batch) >= 4096 {
				write()
			}
		case <-cleanup.C:
			write()
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := l.st.DeleteExpiredBindings(wctx, l.now()); err != nil {
				l.log.Error("removing expired registrations failed", "error", err)
			}
			cancel()
		case <-flush.C:
			write()
		case <-sweep.C:
			l.Sweep()
		case <-ctx.Done():
			l.closed.Store(true)
			for {
				select {
				case op := <-l.ops:
					add(op)
				default:
					write()
					return
				}
			}
		}
	}
}

// Wait blocks until Run has written its last batch after its context ended.
func (l *Location) Wait() { <-l.flushed }
