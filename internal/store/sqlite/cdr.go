package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// Call detail records live in the cdrs table (migration 0002). Each write
// is one statement, in its own transaction or in a BatchCDRs one, so the
// row written at the start of a call is on disk before it is answered.

// legJSON is how one leg's counters are kept in the legs column.
type legJSON struct {
	Leg              string  `json:"leg"`
	PacketsIn        uint64  `json:"packets_in"`
	PacketsOut       uint64  `json:"packets_out"`
	BytesIn          uint64  `json:"bytes_in"`
	BytesOut         uint64  `json:"bytes_out"`
	Lost             int64   `json:"lost"`
	JitterMs         float64 `json:"jitter_ms"`
	StrangersDropped uint64  `json:"strangers_dropped"`
}

func encodeLegs(legs []store.LegStats) (string, error) {
	out := make([]legJSON, len(legs))
	for i, l := range legs {
		out[i] = legJSON(l)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeLegs(s string) ([]store.LegStats, error) {
	var in []legJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]store.LegStats, len(in))
	for i, l := range in {
		out[i] = store.LegStats(l)
	}
	return out, nil
}

// millis is t in Unix milliseconds, or NULL when t is zero.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMillis(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return time.UnixMilli(ms.Int64).UTC()
}

// The CDR writes.
const (
	insertCDR = `INSERT INTO cdrs (call_id, caller, callee, dialed, start_ms, answer_ms, end_ms,
		duration, billsec, disposition, cause, codec, flags, legs, active,
		account, destination, rate, billed, cost, currency, trunk, number, trunk_answer_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	answerCDR = `UPDATE cdrs SET answer_ms = ?, codec = ? WHERE id = ?`
	endCDR    = `UPDATE cdrs SET end_ms = ?, duration = ?, billsec = ?, disposition = ?,
		cause = ?, legs = ?, active = 0,
		answer_ms = COALESCE(?, answer_ms),
		codec = CASE WHEN ? = '' THEN codec ELSE ? END,
		flags = CASE WHEN ? = '' THEN flags ELSE ? END,
		callee = CASE WHEN ? = '' THEN callee ELSE ? END,
		trunk = ?, number = ?, trunk_answer_ms = ?
		WHERE id = ?`
	rateCDR = `UPDATE cdrs SET account = ?, destination = ?, rate = ?, billed = ?, cost = ?, currency = ? WHERE id = ?`
)

// cdrWriter runs the CDR writes on the database, each its own transaction,
// or in a transaction of BatchCDRs, which uses the store's statements,
// prepared once: parsing a statement costs as much as running it.
type cdrWriter struct {
	s     *Store
	db    *sql.DB
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // of tx; closed with it
}

func (w *cdrWriter) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := w.stmts[q]; st != nil {
		return st, nil
	}
	parent, err := w.s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	// On a connection the statement was prepared on before, this reuses
	// it; otherwise database/sql prepares it there once and keeps it.
	st := w.tx.StmtContext(ctx, parent)
	if w.stmts == nil {
		w.stmts = make(map[string]*sql.Stmt, 3)
	}
	w.stmts[q] = st
	return st, nil
}

// prepared returns the store's statement for q, preparing it once.
func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.stmts[q]; st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[q] = st
	return st, nil
}

func (w *cdrWriter) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if w.tx == nil {
		return w.db.ExecContext(ctx, q, args...)
	}
	st, err := w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	// The batch's transaction carries the deadline. A statement run with a
	// cancellable context costs the driver a watcher goroutine and a
	// progress handler each, as much as the statement itself.
	return st.ExecContext(context.WithoutCancel(ctx), args...)
}

// StartCDR inserts an active record and returns its ID.
func (s *Store) StartCDR(ctx context.Context, c store.CDR) (int64, error) {
	return (&cdrWriter{db: s.db}).StartCDR(ctx, c)
}

// AnswerCDR records when the call was answered and with which codec.
func (s *Store) AnswerCDR(ctx context.Context, id int64, at time.Time, codec string) error {
	return (&cdrWriter{db: s.db}).AnswerCDR(ctx, id, at, codec)
}

// EndCDR closes a record with its final state.
func (s *Store) EndCDR(ctx context.Context, id int64, c store.CDR) error {
	return (&cdrWriter{db: s.db}).EndCDR(ctx, id, c)
}

// RateCDR records what a call cost.
func (s *Store) RateCDR(ctx context.Context, id int64, r store.CDRRating) error {
	return (&cdrWriter{db: s.db}).RateCDR(ctx, id, r)
}

// BatchCDRs runs fn's writes in one transaction.
func (s *Store) BatchCDRs(ctx context.Context, fn func(w store.CDRWriter) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cdr batch: %w", err)
	}
	defer tx.Rollback()
	if err := fn(&cdrWriter{s: s, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cdr batch: %w", err)
	}
	return nil
}

func (w *cdrWriter) StartCDR(ctx context.Context, c store.CDR) (int64, error) {
	if c.Start.IsZero() {
		return 0, fmt.Errorf("cdr %s: no start time", c.CallID)
	}
	legs, err := encodeLegs(c.Legs)
	if err != nil {
		return 0, err
	}
	res, err := w.exec(ctx, insertCDR, c.CallID, c.Caller, c.Callee, c.Dialed, c.Start.UnixMilli(),
		millis(c.Answer), millis(c.End), c.Duration, c.Billsec, c.Disposition, c.Cause, c.Codec, c.Flags, legs,
		c.Rating.Account, c.Rating.Destination, c.Rating.Rate, c.Rating.Billed, c.Rating.Cost, c.Rating.Currency,
		c.Trunk, c.Number, millis(c.TrunkAnswer))
	if err != nil {
		return 0, fmt.Errorf("cdr %s: %w", c.CallID, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("cdr %s: %w", c.CallID, err)
	}
	return id, nil
}

func (w *cdrWriter) AnswerCDR(ctx context.Context, id int64, at time.Time, codec string) error {
	res, err := w.exec(ctx, answerCDR, at.UnixMilli(), codec, id)
	return affected(res, err, id)
}

func (w *cdrWriter) EndCDR(ctx context.Context, id int64, c store.CDR) error {
	legs, err := encodeLegs(c.Legs)
	if err != nil {
		return err
	}
	res, err := w.exec(ctx, endCDR, millis(c.End), c.Duration, c.Billsec, c.Disposition, c.Cause, legs,
		millis(c.Answer), c.Codec, c.Codec, c.Flags, c.Flags, c.Callee, c.Callee, c.Trunk, c.Number, millis(c.TrunkAnswer), id)
	return affected(res, err, id)
}

func (w *cdrWriter) RateCDR(ctx context.Context, id int64, r store.CDRRating) error {
	res, err := w.exec(ctx, rateCDR, r.Account, r.Destination, r.Rate, r.Billed, r.Cost, r.Currency, id)
	return affected(res, err, id)
}

func affected(res sql.Result, err error, id int64) error {
	if err != nil {
		return fmt.Errorf("cdr %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("cdr %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// CloseActiveCDRs closes the records a crash left active, in one statement.
func (s *Store) CloseActiveCDRs(ctx context.Context, now time.Time, flag string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE cdrs SET end_ms = ?1,
		duration = MAX(0, (?1 - start_ms) / 1000),
		billsec = CASE WHEN answer_ms IS NULL THEN 0 ELSE MAX(0, (?1 - answer_ms) / 1000) END,
		disposition = CASE WHEN answer_ms IS NULL THEN ?3 ELSE ?4 END,
		flags = CASE WHEN ?2 = '' THEN flags WHEN flags = '' THEN ?2 ELSE flags || ',' || ?2 END,
		active = 0
		WHERE active = 1`, now.UnixMilli(), flag, store.DispositionFailed, store.DispositionAnswered)
	if err != nil {
		return 0, fmt.Errorf("close active cdrs: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ListCDRs returns records by start time; see store.CDRFilter.
func (s *Store) ListCDRs(ctx context.Context, f store.CDRFilter) ([]store.CDR, error) {
	var where []string
	var args []any
	if !f.From.IsZero() {
		where = append(where, "start_ms >= ?")
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		where = append(where, "start_ms < ?")
		args = append(args, f.To.UnixMilli())
	}
	q := `SELECT id, call_id, caller, callee, dialed, start_ms, answer_ms, end_ms, duration, billsec,
		disposition, cause, codec, flags, legs, active, account, destination, rate, billed, cost, currency,
		trunk, number, trunk_answer_ms FROM cdrs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit > 0 {
		// The most recent Limit rows, then back into start order.
		q = `SELECT * FROM (` + q + ` ORDER BY start_ms DESC, id DESC LIMIT ?) ORDER BY start_ms, id`
		args = append(args, f.Limit)
	} else {
		q += " ORDER BY start_ms, id"
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list cdrs: %w", err)
	}
	defer rows.Close()
	var out []store.CDR
	for rows.Next() {
		var c store.CDR
		var start int64
		var answer, end, trunkAnswer sql.NullInt64
		var legs string
		if err := rows.Scan(&c.ID, &c.CallID, &c.Caller, &c.Callee, &c.Dialed, &start, &answer, &end,
			&c.Duration, &c.Billsec, &c.Disposition, &c.Cause, &c.Codec, &c.Flags, &legs, &c.Active,
			&c.Rating.Account, &c.Rating.Destination, &c.Rating.Rate, &c.Rating.Billed, &c.Rating.Cost, &c.Rating.Currency,
			&c.Trunk, &c.Number, &trunkAnswer); err != nil {
			return nil, fmt.Errorf("list cdrs: %w", err)
		}
		c.Start = time.UnixMilli(start).UTC()
		c.Answer, c.End, c.TrunkAnswer = fromMillis(answer), fromMillis(end), fromMillis(trunkAnswer)
		if c.Legs, err = decodeLegs(legs); err != nil {
			return nil, fmt.Errorf("cdr %d: legs: %w", c.ID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
