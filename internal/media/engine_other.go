//go:build !linux

package media

import (
	"errors"
	"net"
)

// engine, off Linux, runs one goroutine per socket of a started bridge,
// each with its own buffer; closing the socket ends it.
type engine struct {
	pool *PortPool
	n    int
}

type worker struct{ e *engine }

func (e *engine) acquire() (*worker, error) { return &worker{e: e}, nil }

func (e *engine) release() {}

func (w *worker) add(pp *PortPair) error {
	for kind, s := range []sock{pp.rtp, pp.rtcp} {
		go w.read(pp, s, kind == 1)
	}
	return nil
}

func (w *worker) remove(pp *PortPair) {}

func (w *worker) read(pp *PortPair, s sock, rtcp bool) {
	buf := make([]byte, bufSize, bufSize+srtpOverhead)
	for {
		n, src, err := s.recvFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		br := pp.bridge.Load()
		if br == nil {
			continue
		}
		from, to := br.legs(pp)
		br.io.Lock()
		if !br.dead && !from.ports.closed.Load() {
			br.handle(from, to, rtcp, buf[:n], src)
		}
		br.io.Unlock()
	}
}
