package sipx

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// ackWait is how long Respond waits for the ACK of a final non-2xx answer
// to an INVITE: a round trip, with room for a few retransmissions.
const ackWait = 4 * time.Second

// Respond sends res on tx. For a final non-2xx answer to an INVITE it
// also takes the caller's ACK off the transaction when it comes: sipgo
// hands that ACK to whoever reads tx.Acks() and, when nobody does, parks
// a goroutine holding it until the transaction ends (Timer I, 5 s on
// UDP), which under call load means thousands of goroutines. The wait is
// bounded, for callers that never ACK (the transaction itself lives until
// Timer H).
func Respond(tx sip.ServerTransaction, req *sip.Request, res *sip.Response) error {
	if err := tx.Respond(res); err != nil {
		return err
	}
	if req.IsInvite() && res.StatusCode >= 300 {
		go func() {
			t := time.NewTimer(ackWait)
			defer t.Stop()
			select {
			case <-tx.Acks():
			case <-tx.Done():
			case <-t.C:
			}
		}()
	}
	return nil
}
