package server

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/store"
)

// banSync keeps the in-memory ban table and the store's bans table in
// step: new bans are written behind (a handler never waits on the
// database), and rows changed by `kaopu ban`, another node or an earlier
// run are read back whenever the table's version moves.
type banSync struct {
	st   store.Bans
	bans *auth.Bans
	log  *slog.Logger

	queue chan auth.BanInfo

	mu    sync.Mutex
	saved map[netip.Addr]time.Time // bans known to be in the store, with their end
	ver   int64
}

func newBanSync(st store.Bans, log *slog.Logger) *banSync {
	return &banSync{st: st, log: log, queue: make(chan auth.BanInfo, 1024), saved: map[netip.Addr]time.Time{}}
}

// onBan queues a new ban for the store; a full queue loses the write (the
// ban itself holds), which a flood of distinct sources could cause.
func (s *banSync) onBan(b auth.BanInfo) {
	select {
	case s.queue <- b:
	default:
		s.log.Warn("ban not persisted: write queue full", "ip", b.IP.String())
	}
}

// load restores the store's bans into the table (at start).
func (s *banSync) load(ctx context.Context) (int, error) {
	if err := s.sync(ctx, true); err != nil {
		return 0, err
	}
	return len(s.bans.Active()), nil
}

// run writes queued bans and polls the store until ctx ends.
func (s *banSync) run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-s.queue:
			row := store.Ban{Addr: b.IP.String(), Until: b.Until, Reason: b.Reason, Offences: b.Offences, Created: time.Now()}
			if err := s.st.PutBan(context.WithoutCancel(ctx), row); err != nil {
				s.log.Warn("ban not persisted", "ip", row.Addr, "error", err)
				continue
			}
			s.mu.Lock()
			s.saved[b.IP] = b.Until
			s.mu.Unlock()
		case <-t.C:
			if err := s.sync(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Warn("reading bans failed", "error", err)
			}
		}
	}
}

// sync applies the store's rows to the table when they changed: rows are
// restored, and a ban this node saw written that has no row any more was
// lifted by an operator.
func (s *banSync) sync(ctx context.Context, force bool) error {
	v, err := s.st.BansVersion(ctx)
	if err != nil {
		return err
	}
	if !force && v == s.ver {
		return nil
	}
	// Only bans whose write finished before the rows are read can be
	// told lifted by their absence.
	s.mu.Lock()
	written := make(map[netip.Addr]time.Time, len(s.saved))
	for ip, until := range s.saved {
		written[ip] = until
	}
	s.mu.Unlock()
	rows, err := s.st.ListBans(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	inStore := make(map[netip.Addr]bool, len(rows))
	for _, r := range rows {
		ip, err := netip.ParseAddr(r.Addr)
		if err != nil {
			continue
		}
		inStore[ip] = true
		s.bans.Restore(auth.BanInfo{IP: ip, Until: r.Until, Reason: r.Reason, Offences: r.Offences})
		s.mu.Lock()
		s.saved[ip] = r.Until
		s.mu.Unlock()
	}
	for ip, until := range written {
		if inStore[ip] {
			continue
		}
		s.mu.Lock()
		delete(s.saved, ip)
		s.mu.Unlock()
		if until.After(now) && s.bans.Lift(ip) {
			s.log.Info("ban lifted", "ip", ip.String())
		}
	}
	s.ver = v
	return nil
}

// purge drops rows whose ban ended more than a day ago (their offences
// no longer lengthen the next ban).
func (s *banSync) purge(ctx context.Context) {
	if _, err := s.st.DeleteExpiredBans(ctx, time.Now().Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
		s.log.Warn("purging old bans failed", "error", err)
	}
}
