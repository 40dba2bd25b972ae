package sipx

import (
	"bytes"
	"hash/maphash"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Limits bound what one message may carry.
type Limits struct {
	MaxMessageSize int
	MaxHeaders     int
	MaxVia         int
}

// Problem is why a request is refused before any handler sees it.
type Problem struct {
	Code   int
	Reason string
}

// Validate checks a parsed request (RFC 3261 §8.2 and §16.3) and returns
// nil when handlers may process it.
func Validate(req *sip.Request, lim Limits) *Problem {
	if req.SipVersion != "SIP/2.0" {
		return &Problem{505, "Version Not Supported"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return &Problem{416, "Unsupported URI Scheme"}
	}
	hs := req.Headers()
	if len(hs) > lim.MaxHeaders {
		return &Problem{400, "Too Many Headers"}
	}
	vias := 0
	for _, h := range hs {
		if _, ok := h.(*sip.ViaHeader); ok {
			vias++
		}
	}
	switch {
	case vias == 0:
		return &Problem{400, "Missing Via"}
	case vias > lim.MaxVia:
		return &Problem{400, "Too Many Via Headers"}
	case req.From() == nil:
		return &Problem{400, "Missing From"}
	case req.To() == nil:
		return &Problem{400, "Missing To"}
	case req.CallID() == nil:
		return &Problem{400, "Missing Call-ID"}
	case req.CSeq() == nil:
		return &Problem{400, "Missing CSeq"}
	}
	if req.CSeq().MethodName != req.Method {
		return &Problem{400, "CSeq Method Mismatch"}
	}
	if v := req.Via(); v.Host == "" {
		return &Problem{400, "Invalid Via"}
	}
	if req.From().Address.Host == "" && req.From().Address.Scheme != "tel" {
		return &Problem{400, "Invalid From"}
	}
	if req.To().Address.Host == "" && req.To().Address.Scheme != "tel" {
		return &Problem{400, "Invalid To"}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Method != sip.OPTIONS {
		return &Problem{483, "Too Many Hops"}
	}
	return nil
}

// ParseProblem names what is wrong with a message sipgo could not parse.
// It splits header lines only to find the culprit; the parsing itself is
// sipgo's.
func ParseProblem(data []byte, err error) *Problem {
	if err == sip.ErrMessageTooLarge {
		return &Problem{513, "Message Too Large"}
	}
	if err == sip.ErrParseReadBodyIncomplete {
		return &Problem{400, "Invalid Content-Length"}
	}
	parsers := sip.DefaultHeadersParser()
	lines := bytes.Split(data, []byte("\r\n"))
	for i, line := range lines {
		if i == 0 {
			continue
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // folded continuation
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return &Problem{400, "Malformed Header Line"}
		}
		key := strings.ToLower(strings.TrimSpace(string(name)))
		p, known := parsers[key]
		if !known {
			continue
		}
		if _, perr := p([]byte(key), strings.TrimSpace(string(value))); perr != nil {
			if strings.Contains(perr.Error(), "comma") {
				continue // multi-value header: sipgo handles the split itself
			}
			return &Problem{400, "Invalid " + canonical(key) + " Header"}
		}
	}
	return &Problem{400, "Malformed Message"}
}

var canonicalNames = map[string]string{
	"v": "Via", "via": "Via", "f": "From", "from": "From", "t": "To", "to": "To",
	"i": "Call-ID", "call-id": "Call-ID", "cseq": "CSeq", "m": "Contact", "contact": "Contact",
	"l": "Content-Length", "content-length": "Content-Length", "c": "Content-Type",
	"content-type": "Content-Type", "max-forwards": "Max-Forwards", "route": "Route",
	"record-route": "Record-Route", "refer-to": "Refer-To",
}

func canonical(key string) string {
	if n, ok := canonicalNames[key]; ok {
		return n
	}
	return "Header"
}

// Answerable reports whether a (possibly malformed) request carries enough
// to build a response a SIP peer can parse: a SIP/2.0 start line and a top
// Via with protocol, transport and host. Anything less is dropped
// (RFC 3261 §18.3, §18.1.2).
func Answerable(req *sip.Request) bool {
	if req == nil || req.IsAck() || req.SipVersion == "" || !strings.HasPrefix(req.SipVersion, "SIP/") {
		return false
	}
	for _, c := range req.Method {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_' || c == '.' || c == '!' || c == '%' || c == '*' || c == '+' || c == '`' || c == '\'' || c == '~') {
			return false
		}
	}
	v := req.Via()
	return v != nil && v.ProtocolName == "SIP" && v.ProtocolVersion == "2.0" && v.Transport != "" && v.Host != "" &&
		!strings.ContainsAny(v.Host, " /\"<>")
}

// Reply builds a response to req with the RFC 3581 Via fix-up toward src.
func Reply(req *sip.Request, code int, reason string) *sip.Response {
	SetToTag(req)
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0"
	FixVia(res, req.Source())
	return res
}

// FixVia adds received= to the top Via when the request came from another
// address than its sent-by (RFC 3261 §18.2.1); rport was filled by sipgo.
func FixVia(res *sip.Response, source string) {
	v := res.Via()
	if v == nil {
		return
	}
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		return
	}
	if _, ok := v.Params.Get("received"); ok {
		return
	}
	if a, err := netip.ParseAddr(v.Host); err == nil && a.String() == host {
		return
	}
	v.Params.Add("received", host)
}

// tagSeed makes To tags unguessable across restarts.
var tagSeed = maphash.MakeSeed()

// SetToTag gives the request's To header a tag before a response is built
// from it, so sipgo does not draw one from crypto/rand per response. The
// tag is a hash of the transaction, so a retransmitted request gets the
// same tag, as a stateful UAS would give (RFC 3261 §8.2.6.2).
func SetToTag(req *sip.Request) {
	to := req.To()
	if to == nil || to.Params.Has("tag") {
		return
	}
	var h maphash.Hash
	h.SetSeed(tagSeed)
	if c := req.CallID(); c != nil {
		h.WriteString(c.Value())
	}
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		h.WriteString(tag)
	}
	if v := req.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		h.WriteString(b)
	}
	var buf [16]byte
	to.Params.Add("tag", string(strconv.AppendUint(buf[:0], h.Sum64(), 36)))
}
