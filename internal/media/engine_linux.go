//go:build linux

package media

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// engine serves the sockets of every started bridge of a pool with a few
// workers (GOMAXPROCS by default), each an epoll set of its own. A
// worker's epoll descriptor is itself watched by the Go runtime's poller,
// so an idle worker is a parked goroutine, not a thread blocked in a
// system call; when media arrives it takes every ready socket in one
// epoll_wait and handles one datagram from each (level-triggered: a socket
// with more queued comes back in the next round) until none is ready.
//
// Workers start with the first bridge and stop when the last one closes,
// so a pool with no calls runs no goroutines.
type engine struct {
	pool *PortPool
	n    int // workers when running

	mu      sync.Mutex
	refs    int
	workers []*worker
	next    int
}

type worker struct {
	e    *engine
	epfd int
	f    *os.File // epfd, registered with the Go runtime's poller
	done chan struct{}
	buf  []byte
	evs  []unix.EpollEvent
	poll func(fd uintptr) bool // preallocated: no closure per wake-up
}

// eventsPerWait bounds the datagrams handled per epoll_wait.
const eventsPerWait = 128

func (e *engine) workerCount() int {
	if e.n > 0 {
		return e.n
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// acquire starts the workers if none run, and returns the one a new
// bridge's sockets go to.
func (e *engine) acquire() (*worker, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs == 0 {
		for range e.workerCount() {
			w, err := e.newWorker()
			if err != nil {
				for _, w := range e.workers { // none runs yet
					w.f.Close()
				}
				e.workers = nil
				return nil, err
			}
			e.workers = append(e.workers, w)
		}
		for _, w := range e.workers {
			go w.run()
		}
	}
	e.refs++
	w := e.workers[e.next%len(e.workers)]
	e.next++
	return w, nil
}

// release drops a bridge; the last one stops the workers.
func (e *engine) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refs--; e.refs == 0 {
		e.stopLocked()
	}
}

func (e *engine) stopLocked() {
	for _, w := range e.workers {
		w.f.Close() // wakes the worker: its poll wait fails
		<-w.done
	}
	e.workers = nil
}

func (e *engine) newWorker() (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	w := &worker{e: e, epfd: epfd, f: os.NewFile(uintptr(epfd), "media-epoll"), done: make(chan struct{}),
		buf: make([]byte, bufSize, bufSize+srtpOverhead), evs: make([]unix.EpollEvent, eventsPerWait)}
	w.poll = w.drain
	return w, nil
}

// add registers a bridge's sockets. Each event carries the pair's slot in
// the pool (times two, plus one for RTCP) and the pair's generation, so an
// event that was already returned for a pair since closed and reused is
// recognised and ignored.
func (w *worker) add(pp *PortPair) error {
	for kind, s := range []sock{pp.rtp, pp.rtcp} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(2*int(pp.idx) + kind), Pad: int32(pp.gen)}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
			return fmt.Errorf("media: epoll_ctl: %w", err)
		}
	}
	return nil
}

// remove unregisters a pair's sockets (a Start that failed half-way).
func (w *worker) remove(pp *PortPair) {
	for _, s := range []sock{pp.rtp, pp.rtcp} {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	}
}

func (w *worker) run() {
	defer close(w.done)
	rc, err := w.f.SyscallConn()
	if err != nil {
		return
	}
	for {
		// Read calls poll until it returns true, parking in the runtime's
		// poller while it returns false; it fails once f is closed.
		if err := rc.Read(w.poll); err != nil {
			return
		}
	}
}

// drain handles ready sockets until none is; false parks the worker.
func (w *worker) drain(fd uintptr) bool {
	for {
		n, err := unix.EpollWait(int(fd), w.evs, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return true // closed
		}
		if n == 0 {
			return false
		}
		for _, ev := range w.evs[:n] {
			w.e.pool.dispatch(int(ev.Fd), uint32(ev.Pad), w.buf)
		}
	}
}

// dispatch relays one datagram from the socket an epoll event named: slot
// is the pair's index times two, plus one for RTCP; gen must be the pair's
// generation (else the event is stale: that pair was closed since).
func (p *PortPool) dispatch(slot int, gen uint32, buf []byte) {
	if slot < 0 || slot>>1 >= len(p.slots) {
		return
	}
	pp := p.slots[slot>>1].Load()
	if pp == nil || pp.gen != gen {
		return
	}
	if br := pp.bridge.Load(); br != nil {
		br.relay(pp, slot&1 == 1, buf)
	}
}

// relay reads one datagram from pp's RTP (or RTCP) socket and relays it.
// The io lock keeps the bridge's sockets open meanwhile.
func (br *Bridge) relay(pp *PortPair, rtcp bool, buf []byte) {
	from, to := br.legs(pp)
	br.io.Lock()
	defer br.io.Unlock()
	if br.dead || from.ports.closed.Load() {
		return
	}
	s := pp.rtp
	if rtcp {
		s = pp.rtcp
	}
	n, src, err := s.recvFrom(buf)
	if err != nil {
		return // nothing after all, or an ICMP error queued on the socket
	}
	br.handle(from, to, rtcp, buf[:n], src)
}
