package call

import (
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Session timers (RFC 4028). The B2BUA passes the negotiation through
// end to end -- Session-Expires and Min-SE go to the callee, the callee's
// choice in its 2xx comes back to the caller -- so one party refreshes the
// whole call with re-INVITE or UPDATE, which is relayed across like any
// other. The server watches: a call whose session interval passes with no
// successful refresh is dead (a phone lost power, a NAT binding expired)
// and is hung up on both sides. When the callee does not do session timers
// but the caller asked for them and supports them, the server answers for
// the callee with the caller as refresher.

// DefaultMinSE is the smallest session interval accepted (RFC 4028 §4:
// at least 90 s).
const DefaultMinSE = 90 * time.Second

// sessionExpires reads a Session-Expires value: "delta-seconds
// [;refresher=uac|uas]". ok is false when the value is malformed.
func sessionExpires(v string) (d time.Duration, refresher string, ok bool) {
	parts := strings.Split(v, ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 32)
	if err != nil || n == 0 {
		return 0, "", false
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
			if refresher != "uac" && refresher != "uas" {
				return 0, "", false
			}
		}
	}
	return time.Duration(n) * time.Second, refresher, true
}

// checkSessionExpires vets an INVITE's Session-Expires against minSE: a
// 400 or 422 refusal, or nil when the INVITE may go on.
func checkSessionExpires(req *sip.Request, minSE time.Duration) *refusal {
	h := req.GetHeader("Session-Expires")
	if h == nil {
		return nil
	}
	d, _, ok := sessionExpires(h.Value())
	if !ok {
		return &refusal{400, "Invalid Session-Expires"}
	}
	if d < minSE {
		return &refusal{422, "Session Interval Too Small"}
	}
	return nil
}

// minSEHeader is our Min-SE, for 422 answers and the callee's INVITE.
func minSEHeader(caller *sip.Request, minSE time.Duration) sip.Header {
	secs := int64(minSE / time.Second)
	if h := caller.GetHeader("Min-SE"); h != nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(strings.Split(h.Value(), ";")[0]), 10, 64); err == nil && n > secs {
			secs = n
		}
	}
	return sip.NewHeader("Min-SE", strconv.FormatInt(secs, 10))
}

// answerSession decides the session timer of an answered call from the
// caller's INVITE and the callee's 2xx: the headers for the caller's 2xx
// and the interval to watch (0: no session timer).
func answerSession(invite *sip.Request, ok *sip.Response) (hdrs []sip.Header, interval time.Duration) {
	if h := ok.GetHeader("Session-Expires"); h != nil {
		d, refresher, valid := sessionExpires(h.Value())
		if !valid {
			return nil, 0
		}
		hdrs = append(hdrs, sip.NewHeader("Session-Expires", h.Value()))
		if refresher == "uac" {
			// RFC 4028 §9: the refresher is the caller, which must know.
			hdrs = append(hdrs, sip.NewHeader("Require", "timer"))
		}
		return hdrs, d
	}
	h := invite.GetHeader("Session-Expires")
	if h == nil || !headerHas(invite, "Supported", "timer") {
		return nil, 0
	}
	d, _, valid := sessionExpires(h.Value())
	if !valid {
		return nil, 0
	}
	secs := strconv.FormatInt(int64(d/time.Second), 10)
	return []sip.Header{sip.NewHeader("Session-Expires", secs+";refresher=uac"), sip.NewHeader("Require", "timer")}, d
}

// refreshInterval is the interval a successful refresh sets: its 2xx's
// Session-Expires, else the request's, else the current one.
func refreshInterval(req *sip.Request, res *sip.Response, current time.Duration) time.Duration {
	for _, h := range []sip.Header{res.GetHeader("Session-Expires"), req.GetHeader("Session-Expires")} {
		if h != nil {
			if d, _, ok := sessionExpires(h.Value()); ok {
				return d
			}
		}
	}
	return current
}

// armSession starts watching the session interval of an answered call.
func (m *Manager) armSession(c *Call, interval time.Duration) {
	if interval <= 0 {
		return
	}
	c.sessionMu.Lock()
	defer c.sessionMu.Unlock()
	c.sessionInterval = interval
	c.sessionTimer = time.AfterFunc(interval, func() {
		if c.ctx.Err() != nil {
			return
		}
		c.Log.Warn("session expired without a refresh, hanging up", "interval", interval.String())
		m.hangUp(c, "session timer expired")
	})
}

// refreshSession restarts the session interval after a successful
// refresh (re-INVITE or UPDATE, from either side).
func (c *Call) refreshSession(req *sip.Request, res *sip.Response) {
	c.sessionMu.Lock()
	defer c.sessionMu.Unlock()
	if c.sessionTimer == nil {
		return
	}
	c.sessionInterval = refreshInterval(req, res, c.sessionInterval)
	c.sessionTimer.Reset(c.sessionInterval)
}

// stopSession stops watching (the call ended).
func (c *Call) stopSession() {
	c.sessionMu.Lock()
	defer c.sessionMu.Unlock()
	if c.sessionTimer != nil {
		c.sessionTimer.Stop()
	}
}
