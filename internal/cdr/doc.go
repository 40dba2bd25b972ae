// Package cdr writes call detail records for the call layer: internal/call
// opens a record when it accepts an INVITE, marks it answered on the 2xx and
// closes it on BYE, CANCEL or a failure response, and this package turns
// those events into rows in the store (store.CDRs).
//
// # Durability
//
// "Nothing is lost": a row is written when the call starts and updated at
// answer and at end, and each of these events is committed before the
// call moves on (within the write timeout). If the process dies mid-call,
// the row stays marked active; on the next start-up Recorder.Recover
// closes such rows (End = the restart time, disposition ANSWERED if they
// were answered and FAILED otherwise) and flags them "crash-recovered".
//
// # Group commit
//
// A SQLite commit costs several times the row it carries, and a call has
// three events. The Recorder sends the events of all calls, in order, to
// one writer goroutine (started when there is work, gone when there is
// none) that commits whatever has queued up in one transaction
// (store.CDRs.BatchCDRs). If a batch fails, its events are retried one by
// one, so one bad event does not cost the others.
//
// # Never in the call's way
//
// A call waits for its event at most Config.WriteTimeout; an event still
// queued then is written later all the same. The cancellation of the
// caller's context is ignored (a record must not be lost because a SIP
// transaction ended). A failed write is logged and the call goes on: when
// the start write failed, the next event inserts the whole record, and
// End always carries the answer time and codec, so a lost answer write is
// repaired too. Flush waits for the queue before the store is closed.
//
// # Times
//
// Start, answer and end come from an injected clock. Duration is End-Start
// and Billsec End-Answer, both truncated to whole seconds, as Asterisk's
// CDR duration and billsec fields are by default.
//
// # Export
//
// WriteCSV and WriteJSON render records for `kaopu cdr export` and, later,
// the REST API.
package cdr
