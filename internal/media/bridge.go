package media

import (
	"context"
	"errors"
	"net/netip"
	"sync"
)

// Bridge joins two legs: what one leg's peer sends goes, untouched, to the
// other leg's peer, RTP on the RTP sockets and RTCP on the RTCP sockets.
// Its sockets are served by the pool's relay engine (see doc.go,
// Performance): a bridge has no goroutine of its own, and the relay path
// does not allocate per packet.
type Bridge struct {
	a, b *Leg

	mu      sync.Mutex
	started bool
	closed  bool
	stop    func() bool // unregisters the context watch
	engines []*engine   // acquired at Start, released at Close

	// io is held while a datagram of this bridge is relayed, and to close
	// its legs' sockets: no worker uses a socket after it is closed.
	io   sync.Mutex
	dead bool // under io: Close has begun

	closeOnce sync.Once
	closeErr  error
}

// NewBridge joins a and b. A leg can be in one bridge only, ever: closing
// the bridge closes its legs.
func NewBridge(a, b *Leg) (*Bridge, error) {
	if a == b {
		return nil, ErrSameLeg
	}
	if a.closed.Load() || b.closed.Load() {
		return nil, ErrClosed
	}
	if !a.bridged.CompareAndSwap(false, true) {
		return nil, ErrLegInUse
	}
	if !b.bridged.CompareAndSwap(false, true) {
		a.bridged.Store(false)
		return nil, ErrLegInUse
	}
	return &Bridge{a: a, b: b}, nil
}

// Start opens both legs' latch windows and starts relaying. The bridge stops
// and closes its legs when ctx is done or Close is called.
func (br *Bridge) Start(ctx context.Context) error {
	br.mu.Lock()
	defer br.mu.Unlock()
	switch {
	case br.closed:
		return ErrClosed
	case br.started:
		return ErrStarted
	}
	if br.a.closed.Load() || br.b.closed.Load() {
		return ErrClosed
	}
	br.a.start()
	br.b.start()
	var added []func()
	fail := func(err error) error {
		for _, undo := range added {
			undo()
		}
		br.a.ports.bridge.Store(nil)
		br.b.ports.bridge.Store(nil)
		br.releaseEngines()
		return err
	}
	// Both legs' sockets go to one worker when the legs share a pool, so
	// that two workers never wait for each other on br.io.
	var last *worker
	for _, l := range []*Leg{br.a, br.b} {
		e := &l.ports.pool.eng
		w := last
		if w == nil || w.e != e {
			var err error
			if w, err = e.acquire(); err != nil {
				return fail(err)
			}
			br.engines = append(br.engines, e)
			last = w
		}
		l.ports.bridge.Store(br)
		if err := w.add(l.ports); err != nil {
			return fail(err)
		}
		added = append(added, func() { w.remove(l.ports) })
	}
	br.started = true
	br.stop = context.AfterFunc(ctx, func() { br.Close() })
	return nil
}

func (br *Bridge) releaseEngines() {
	for _, e := range br.engines {
		e.release()
	}
	br.engines = nil
}

// Close stops relaying and closes both legs (their ports go back to the
// pool). It is idempotent. Once it returns, no datagram of this bridge is
// being relayed.
func (br *Bridge) Close() error {
	br.closeOnce.Do(func() {
		br.mu.Lock()
		br.closed = true
		stop := br.stop
		br.mu.Unlock()
		if stop != nil {
			stop()
		}
		br.io.Lock()
		br.dead = true
		br.io.Unlock()
		br.closeErr = errors.Join(ignoreClosed(br.a.Close()), ignoreClosed(br.b.Close()))
		br.mu.Lock()
		br.releaseEngines()
		br.mu.Unlock()
	})
	return br.closeErr
}

func ignoreClosed(err error) error {
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// legs returns the leg that owns pp and the other one.
func (br *Bridge) legs(pp *PortPair) (from, to *Leg) {
	if br.a.ports == pp {
		return br.a, br.b
	}
	return br.b, br.a
}

// handle relays one datagram received on from's RTP (or RTCP) socket.
// b's capacity leaves srtpOverhead bytes past bufSize: SRTP is decrypted
// and encrypted in place. Called with br.io held and the bridge alive.
func (br *Bridge) handle(from, to *Leg, rtcp bool, b []byte, src netip.AddrPort) {
	if len(b) >= bufSize {
		from.c.invalid.Add(1) // possibly truncated
		return
	}
	now := from.clock.Now()
	if rtcp {
		if p, ok := from.acceptRTCP(b, src, now); ok && !to.ports.closed.Load() {
			to.sendRTCP(p)
		}
		return
	}
	if st, pt, p, ok := from.acceptRTP(b, src, now); ok && !to.ports.closed.Load() {
		to.sendRTP(p, st, pt)
	}
}
