package conference

// pcmBuffer is a FIFO of samples of bounded size that plays out in
// frames: a small jitter buffer. Reading waits (gives silence) until
// prime samples are held, gives silence again when the buffer runs short
// of a frame (late packets), and writing beyond capacity drops the oldest
// samples, so its delay stays bounded. It allocates only when made.
type pcmBuffer struct {
	buf    []int16
	r, n   int
	prime  int
	primed bool
}

func newPCMBuffer(capacity, prime int) pcmBuffer {
	return pcmBuffer{buf: make([]int16, capacity), prime: prime}
}

// write appends pcm, dropping the oldest samples beyond capacity.
func (b *pcmBuffer) write(pcm []int16) {
	c := len(b.buf)
	if len(pcm) > c {
		pcm = pcm[len(pcm)-c:]
	}
	if over := b.n + len(pcm) - c; over > 0 {
		b.r = (b.r + over) % c
		b.n -= over
	}
	w := (b.r + b.n) % c
	k := copy(b.buf[w:], pcm)
	copy(b.buf, pcm[k:])
	b.n += len(pcm)
}

// read fills frame with the next samples and reports true, or with
// silence and reports false while priming or short of a frame.
func (b *pcmBuffer) read(frame []int16) bool {
	if !b.primed && b.n >= b.prime {
		b.primed = true
	}
	if !b.primed || b.n < len(frame) {
		b.primed = false
		clear(frame)
		return false
	}
	c := len(b.buf)
	k := copy(frame, b.buf[b.r:min(c, b.r+len(frame))])
	copy(frame[k:], b.buf[:len(frame)-k])
	b.r = (b.r + len(frame)) % c
	b.n -= len(frame)
	return true
}

// len is the number of samples held.
func (b *pcmBuffer) len() int { return b.n }
