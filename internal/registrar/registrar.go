package registrar

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kaopu/kaopu/internal/auth"
	"github.com/kaopu/kaopu/internal/store"
)

// Config bounds registration lifetimes (seconds).
type Config struct {
	MinExpires, MaxExpires, DefaultExpires int
	MaxContacts                            int
	// SignallingAllowed reports whether an authenticated user may
	// register over a transport ("UDP", "TCP", "TLS", ...); a refusal is
	// 403 "TLS required". Nil allows every transport.
	SignallingAllowed func(user, transport string) bool
}

// Directory resolves an address-of-record user part (name or extension)
// to the canonical user name.
type Directory interface {
	CanonicalUser(login string) (string, bool)
}

// Registrar answers REGISTER requests.
type Registrar struct {
	cfg  Config
	auth *auth.Digest
	loc  *Location
	dir  Directory
	log  *slog.Logger
	now  func() time.Time
}

// New makes a registrar.
func New(cfg Config, a *auth.Digest, loc *Location, dir Directory, log *slog.Logger, now func() time.Time) *Registrar {
	return &Registrar{cfg: cfg, auth: a, loc: loc, dir: dir, log: log, now: now}
}

// Location returns the registrar's location table.
func (r *Registrar) Location() *Location { return r.loc }

// Handle processes a REGISTER (RFC 3261 §10.3) and returns the response.
// The request must have passed sipx validation (From, To, Call-ID, CSeq, Via).
func (r *Registrar) Handle(req *sip.Request) *sip.Response {
	src, _ := netip.ParseAddrPort(req.Source())

	// Step 2: Require extensions we do not support.
	if h := req.GetHeader("Require"); h != nil {
		var unsupported []string
		for _, opt := range strings.Split(h.Value(), ",") {
			opt = strings.TrimSpace(opt)
			if opt != "" && opt != "path" {
				unsupported = append(unsupported, opt)
			}
		}
		if len(unsupported) > 0 {
			res := sip.NewResponseFromRequest(req, 420, "Bad Extension", nil)
			res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(unsupported, ", ")))
			return res
		}
	}

	// Step 3: authenticate.
	var authz string
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	ar := r.auth.Check(auth.Request{Method: string(req.Method), Authorization: authz,
		CSeq: req.CSeq().SeqNo, Source: src.Addr()})
	switch ar.Outcome {
	case auth.Challenge, auth.Stale, auth.Failed:
		if ar.Outcome == auth.Failed {
			r.log.Warn("authentication failed", "login", ar.Login, "source", req.Source(), "reason", ar.Reason)
		}
		return r.challenge(req, ar.Outcome == auth.Stale)
	}

	// Only now, after a successful authentication, does the transport
	// matter: an unauthenticated probe learns nothing from it.
	transport := strings.ToUpper(req.Transport())
	if r.cfg.SignallingAllowed != nil && !r.cfg.SignallingAllowed(ar.User, transport) {
		r.log.Warn("register refused: TLS required", "user", ar.User, "transport", transport, "source", req.Source())
		return sip.NewResponseFromRequest(req, 403, auth.ReasonTLSRequired, nil)
	}

	// Step 5/6: the address of record must be the authenticated user's own.
	to := req.To()
	aor, ok := r.dir.CanonicalUser(to.Address.User)
	if !ok || aor != ar.User {
		r.log.Warn("register for another user refused", "user", ar.User, "to", to.Address.User, "source", req.Source())
		return sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	}

	// Expires header, if any.
	hdrExpires := -1
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return sip.NewResponseFromRequest(req, 400, "Invalid Expires", nil)
		}
		hdrExpires = clampUint(v)
	}

	contacts := req.GetHeaders("Contact")
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	now := r.now()

	if len(contacts) == 0 {
		// A query: list the bindings (§10.3 step 6).
		return r.ok(req, r.loc.Lookup(aor), now)
	}

	// Wildcard removes everything (§10.3 step 6).
	wild := false
	for _, h := range contacts {
		if c, ok := h.(*sip.ContactHeader); ok && c.Address.Wildcard {
			wild = true
		}
	}
	if wild {
		if len(contacts) != 1 || hdrExpires != 0 {
			return sip.NewResponseFromRequest(req, 400, "Invalid Wildcard Contact", nil)
		}
		bad := false
		next, _ := r.loc.Modify(aor, func(cur []store.Binding) ([]store.Binding, error) {
			for _, b := range cur {
				if b.CallID == callID && cseq < b.CSeq {
					bad = true
					return nil, errOutOfOrder
				}
			}
			return nil, nil
		})
		if bad {
			return sip.NewResponseFromRequest(req, 400, "CSeq Out Of Order", nil)
		}
		return r.ok(req, next, now)
	}

	type want struct {
		contact  string
		expires  int
		q        string
		instance string
		regID    string
	}
	wants := make([]want, 0, len(contacts))
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return sip.NewResponseFromRequest(req, 400, "Invalid Contact", nil)
		}
		scheme := strings.ToLower(c.Address.Scheme)
		if (scheme != "sip" && scheme != "sips") || c.Address.Host == "" {
			return sip.NewResponseFromRequest(req, 400, "Invalid Contact URI", nil)
		}
		if scheme == "sips" && !auth.SecureTransport(transport) {
			// A sips: Contact is reached over TLS only (RFC 5630);
			// registered over a plain hop there is no TLS connection to
			// reuse and the phone asked for security it is not using.
			return sip.NewResponseFromRequest(req, 403, "SIPS Contact Requires TLS", nil)
		}
		exp := r.cfg.DefaultExpires
		if hdrExpires >= 0 {
			exp = hdrExpires
		}
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return sip.NewResponseFromRequest(req, 400, "Invalid Contact Expires", nil)
			}
			exp = clampUint(n)
		}
		if exp > 0 && exp < r.cfg.MinExpires {
			// §10.3 step 7 / RFC 3261 §21.4.17.
			res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(r.cfg.MinExpires)))
			return res
		}
		if exp > r.cfg.MaxExpires {
			exp = r.cfg.MaxExpires
		}
		w := want{contact: c.Address.String(), expires: exp}
		w.q, _ = c.Params.Get("q")
		w.instance, _ = c.Params.Get("+sip.instance")
		w.regID, _ = c.Params.Get("reg-id")
		wants = append(wants, w)
	}

	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
		if len(ua) > 128 {
			ua = ua[:128]
		}
	}
	source := req.Source()

	var errResp *sip.Response
	next, err := r.loc.Modify(aor, func(cur []store.Binding) ([]store.Binding, error) {
		next := append([]store.Binding(nil), cur...)
		for _, w := range wants {
			i := indexOf(next, w.contact)
			if i < 0 && w.instance != "" {
				// RFC 5626 §6: same instance and reg-id replaces the old flow.
				for j := range next {
					if next[j].Instance == w.instance && next[j].RegID == w.regID {
						i = j
						break
					}
				}
			}
			if i >= 0 && next[i].CallID == callID && cseq < next[i].CSeq {
				errResp = sip.NewResponseFromRequest(req, 400, "CSeq Out Of Order", nil)
				return nil, errOutOfOrder
			}
			if w.expires == 0 {
				if i >= 0 {
					next = append(next[:i], next[i+1:]...)
				}
				continue
			}
			b := store.Binding{AOR: aor, Contact: w.contact, Source: source, Transport: transport,
				CallID: callID, CSeq: cseq, Q: w.q, Expires: now.Add(time.Duration(w.expires) * time.Second),
				UserAgent: ua, Instance: w.instance, RegID: w.regID, Updated: now}
			if i >= 0 {
				next[i] = b
			} else {
				next = append(next, b)
			}
		}
		if len(next) > r.cfg.MaxContacts {
			errResp = sip.NewResponseFromRequest(req, 403, "Too Many Registered Contacts", nil)
			return nil, errTooMany
		}
		return next, nil
	})
	if err != nil {
		return errResp
	}
	return r.ok(req, next, now)
}

func clampUint(v uint64) int {
	if v > 1<<31-1 {
		return 1<<31 - 1
	}
	return int(v)
}

type regError string

func (e regError) Error() string { return string(e) }

const (
	errOutOfOrder = regError("cseq out of order")
	errTooMany    = regError("too many contacts")
)

func (r *Registrar) challenge(req *sip.Request, stale bool) *sip.Response {
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	for _, c := range r.auth.Challenges(stale) {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", c))
	}
	return res
}

func (r *Registrar) ok(req *sip.Request, bs []store.Binding, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range bs {
		left := int(b.Expires.Sub(now).Seconds() + 0.5)
		if left <= 0 {
			continue
		}
		v := "<" + b.Contact + ">;expires=" + strconv.Itoa(left)
		if b.Q != "" {
			v += ";q=" + b.Q
		}
		res.AppendHeader(sip.NewHeader("Contact", v))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(http.TimeFormat)))
	return res
}
