package media

import (
	"context"
	"errors"
	"net"
	"sync"
)

// Bridge joins two legs: what one leg's peer sends goes, untouched, to the
// other leg's peer, RTP on the RTP sockets and RTCP on the RTCP sockets. It
// runs one goroutine per socket (four per call), each with the leg's
// preallocated buffer, and does not allocate per packet.
type Bridge struct {
	a, b *Leg

	mu      sync.Mutex
	started bool
	closed  bool
	stop    func() bool // unregisters the context watch

	wg        sync.WaitGroup
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
	br.started = true
	br.a.start()
	br.b.start()
	br.wg.Add(4)
	go br.relayRTP(br.a, br.b)
	go br.relayRTP(br.b, br.a)
	go br.relayRTCP(br.a, br.b)
	go br.relayRTCP(br.b, br.a)
	br.stop = context.AfterFunc(ctx, func() { br.Close() })
	return nil
}

// Close stops relaying, closes both legs (their ports go back to the pool)
// and waits for the relay goroutines to end. It is idempotent.
func (br *Bridge) Close() error {
	br.closeOnce.Do(func() {
		br.mu.Lock()
		br.closed = true
		stop := br.stop
		br.mu.Unlock()
		if stop != nil {
			stop()
		}
		br.closeErr = errors.Join(ignoreClosed(br.a.Close()), ignoreClosed(br.b.Close()))
		br.wg.Wait()
	})
	return br.closeErr
}

func ignoreClosed(err error) error {
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// relayRTP reads from's RTP socket until it is closed.
func (br *Bridge) relayRTP(from, to *Leg) {
	defer br.wg.Done()
	conn, buf := from.ports.rtp, from.rtpBuf
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n == len(buf) {
			from.c.invalid.Add(1) // possibly truncated
			continue
		}
		st, pt, ok := from.acceptRTP(buf[:n], src, from.clock.Now())
		if ok {
			to.sendRTP(buf[:n], st, pt)
		}
	}
}

// relayRTCP reads from's RTCP socket until it is closed.
func (br *Bridge) relayRTCP(from, to *Leg) {
	defer br.wg.Done()
	conn, buf := from.ports.rtcp, from.rtcpBuf
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n == len(buf) {
			from.c.invalid.Add(1)
			continue
		}
		if from.acceptRTCP(buf[:n], src, from.clock.Now()) {
			to.sendRTCP(buf[:n])
		}
	}
}
