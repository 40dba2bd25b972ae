package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// ringBits sizes the nonce-count table: 1<<19 slots of 8 bytes (4 MiB),
// 40 s of nonces at 13,000 challenges/s and hours at the rates real phones make.
// A nonce whose slot has been reused by a newer nonce is treated as stale,
// so at most that many nonces are live at once whatever the request rate.
const ringBits = 19

// Nonces issues and checks stateless nonces: a nonce carries its sequence
// number and issue time, authenticated by an HMAC with a per-process key,
// so the server keeps no per-nonce state except one word for the highest
// nonce-count seen (replay protection, RFC 7616 §3.4).
type Nonces struct {
	key  [32]byte
	ttl  time.Duration
	now  func() time.Time
	seq  atomic.Uint32
	ring []atomic.Uint64 // per slot: nc<<32 | cseq of the last accepted request
}

// NewNonces makes a nonce source with a random key.
func NewNonces(ttl time.Duration, now func() time.Time) *Nonces {
	n := &Nonces{ttl: ttl, now: now, ring: make([]atomic.Uint64, 1<<ringBits)}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	var s [4]byte
	rand.Read(s[:])
	n.seq.Store(binary.BigEndian.Uint32(s[:]))
	return n
}

const nonceRaw = 4 + 8 + 12 // seq, unix nanos, mac

// Issue returns a fresh nonce.
func (n *Nonces) Issue() string {
	seq := n.seq.Add(1)
	n.ring[seq&(1<<ringBits-1)].Store(0)
	var b [nonceRaw]byte
	binary.BigEndian.PutUint32(b[0:4], seq)
	binary.BigEndian.PutUint64(b[4:12], uint64(n.now().UnixNano()))
	n.mac(b[:12], b[12:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (n *Nonces) mac(msg, out []byte) {
	h := hmac.New(sha256.New, n.key[:])
	h.Write(msg)
	var sum [32]byte
	copy(out, h.Sum(sum[:0]))
}

// nonceState is the verdict on a nonce.
type nonceState int

const (
	nonceInvalid nonceState = iota // not ours or corrupted
	nonceStale                     // ours, but expired or its slot reused
	nonceValid
)

// check verifies a nonce and returns its sequence number.
func (n *Nonces) check(nonce string) (uint32, nonceState) {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceRaw {
		return 0, nonceInvalid
	}
	var b [nonceRaw]byte
	if _, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil {
		return 0, nonceInvalid
	}
	var want [12]byte
	n.mac(b[:12], want[:])
	if !hmac.Equal(want[:], b[12:]) {
		return 0, nonceInvalid
	}
	seq := binary.BigEndian.Uint32(b[0:4])
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[4:12])))
	if age := n.now().Sub(issued); age > n.ttl || age < -time.Minute {
		return seq, nonceStale
	}
	if n.seq.Load()-seq >= 1<<ringBits {
		return seq, nonceStale
	}
	return seq, nonceValid
}

// use records nonce-count nc for nonce seq. It accepts a higher nc than any
// seen, and the same nc again only for the same CSeq (a retransmission).
func (n *Nonces) use(seq uint32, nc, cseq uint32) bool {
	slot := &n.ring[seq&(1<<ringBits-1)]
	for {
		old := slot.Load()
		oldNC, oldCSeq := uint32(old>>32), uint32(old)
		switch {
		case nc > oldNC:
			if slot.CompareAndSwap(old, uint64(nc)<<32|uint64(cseq)) {
				return true
			}
		case nc == oldNC && cseq == oldCSeq && nc != 0:
			return true
		default:
			return false
		}
	}
}
