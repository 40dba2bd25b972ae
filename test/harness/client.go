package harness

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Request is a SIP request under construction. Headers are sent in order and
// exactly as set, so a test can build malformed requests.
type Request struct {
	Method  string
	URI     string
	Headers []Header
	Body    string
	// StartLine, when set, replaces "METHOD URI SIP/2.0".
	StartLine string
	// NoContentLength leaves out the Content-Length header that Bytes would
	// otherwise add when none is set.
	NoContentLength bool
}

// Get is the first value of the header named name.
func (r *Request) Get(name string) string {
	want := CanonicalName(name)
	for _, h := range r.Headers {
		if CanonicalName(h.Name) == want {
			return h.Value
		}
	}
	return ""
}

// Set replaces every header named name by one with value, at the position of
// the first, or appends it.
func (r *Request) Set(name, value string) *Request {
	want := CanonicalName(name)
	out := r.Headers[:0:0]
	done := false
	for _, h := range r.Headers {
		if CanonicalName(h.Name) == want {
			if !done {
				out = append(out, Header{name, value})
				done = true
			}
			continue
		}
		out = append(out, h)
	}
	if !done {
		out = append(out, Header{name, value})
	}
	r.Headers = out
	return r
}

// Add appends a header.
func (r *Request) Add(name, value string) *Request {
	r.Headers = append(r.Headers, Header{name, value})
	return r
}

// Del removes every header named name.
func (r *Request) Del(name string) *Request {
	want := CanonicalName(name)
	out := r.Headers[:0:0]
	for _, h := range r.Headers {
		if CanonicalName(h.Name) != want {
			out = append(out, h)
		}
	}
	r.Headers = out
	return r
}

// Clone is a deep copy.
func (r *Request) Clone() *Request {
	c := *r
	c.Headers = append([]Header(nil), r.Headers...)
	return &c
}

// Bytes is the request on the wire.
func (r *Request) Bytes() []byte {
	var b bytes.Buffer
	if r.StartLine != "" {
		b.WriteString(r.StartLine + "\r\n")
	} else {
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.Method, r.URI)
	}
	hasCL := false
	for _, h := range r.Headers {
		if CanonicalName(h.Name) == "content-length" {
			hasCL = true
		}
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	if !hasCL && !r.NoContentLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	b.WriteString("\r\n")
	b.WriteString(r.Body)
	return b.Bytes()
}

// RandomToken is a random hex string for tags, branches and Call-IDs.
func RandomToken() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Client is a raw SIP client over one UDP, TCP or TLS socket on 127.0.0.1.
type Client struct {
	Transport string // "UDP", "TCP" or "TLS"
	Server    string // host:port
	Domain    string
	conn      net.Conn
	br        *bufio.Reader // stream transports only
	cseq      int
}

// Dial opens a client socket ("udp", "tcp" or "tls") to server from
// 127.0.0.1, closed when the test ends; it fails the test if it cannot.
func Dial(t testing.TB, network, server string) *Client {
	t.Helper()
	c, err := TryDial(t, network, server)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TryDial is Dial returning the error (a refused TCP connection, say).
func TryDial(t testing.TB, network, server string) (*Client, error) {
	network = strings.ToLower(network)
	local := net.IPv4(127, 0, 0, 1)
	var (
		conn net.Conn
		err  error
	)
	switch network {
	case "udp":
		var ra *net.UDPAddr
		if ra, err = net.ResolveUDPAddr("udp4", server); err == nil {
			conn, err = net.DialUDP("udp4", &net.UDPAddr{IP: local}, ra)
		}
	case "tcp":
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: local}}
		conn, err = d.Dial("tcp4", server)
	case "tls":
		// The server's certificate is generated on first run: not verified.
		d := &tls.Dialer{
			NetDialer: &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: local}},
			Config:    &tls.Config{InsecureSkipVerify: true, ServerName: DefaultDomain},
		}
		conn, err = d.Dial("tcp4", server)
	default:
		return nil, fmt.Errorf("dial: network %q is not udp, tcp or tls", network)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, server, err)
	}
	c := &Client{Transport: strings.ToUpper(network), Server: server, Domain: DefaultDomain, conn: conn}
	if network != "udp" {
		c.br = bufio.NewReader(conn)
	}
	t.Cleanup(func() { conn.Close() })
	return c, nil
}

// WrapConn makes a Client of a stream connection the test accepted itself
// (a phone's listening socket that the server connected to); transport
// is "TCP" or "TLS". The caller closes conn.
func WrapConn(conn net.Conn, transport string) *Client {
	return &Client{Transport: strings.ToUpper(transport), Server: conn.RemoteAddr().String(),
		Domain: DefaultDomain, conn: conn, br: bufio.NewReader(conn)}
}

// Conn is the underlying socket.
func (c *Client) Conn() net.Conn { return c.conn }

// LocalAddr is the client's host:port.
func (c *Client) LocalAddr() string { return c.conn.LocalAddr().String() }

// ContactURI is a Contact URI pointing at this client's socket.
func (c *Client) ContactURI(user string) string {
	return fmt.Sprintf("sip:%s@%s;transport=%s", user, c.LocalAddr(), strings.ToLower(c.Transport))
}

// NewRequest builds a well-formed request from user@Domain to user@Domain
// (the AOR a REGISTER is about): Via with a fresh branch and rport,
// Max-Forwards, From with a tag, To, Call-ID, CSeq.
func (c *Client) NewRequest(method, uri, user string) *Request {
	c.cseq++
	aor := fmt.Sprintf("<sip:%s@%s>", user, c.Domain)
	return &Request{
		Method: method,
		URI:    uri,
		Headers: []Header{
			{"Via", fmt.Sprintf("SIP/2.0/%s %s;branch=z9hG4bK%s;rport", c.Transport, c.LocalAddr(), RandomToken())},
			{"Max-Forwards", "70"},
			{"From", aor + ";tag=" + RandomToken()},
			{"To", aor},
			{"Call-ID", RandomToken() + "@127.0.0.1"},
			{"CSeq", fmt.Sprintf("%d %s", c.cseq, method)},
			{"User-Agent", "kaopu-e2e"},
		},
	}
}

// NewRegister builds a REGISTER for user@Domain with Request-URI sip:Domain.
// contact "" means a query (no Contact); expires < 0 leaves out Expires.
func (c *Client) NewRegister(user, contact string, expires int) *Request {
	r := c.NewRequest("REGISTER", "sip:"+c.Domain, user)
	if contact != "" {
		r.Add("Contact", contact)
	}
	if expires >= 0 {
		r.Add("Expires", strconv.Itoa(expires))
	}
	return r
}

// Send writes raw bytes: one datagram over UDP.
func (c *Client) Send(b []byte) error {
	_, err := c.conn.Write(b)
	return err
}

// ErrNoAnswer is returned by Read when nothing arrived before the timeout.
var ErrNoAnswer = errors.New("no answer")

// Read waits up to timeout for the next message.
func (c *Client) Read(timeout time.Duration) (*Message, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	var raw []byte
	var err error
	if c.br == nil {
		buf := make([]byte, 65536)
		var n int
		n, err = c.conn.Read(buf)
		raw = buf[:n]
	} else {
		raw, err = c.readStream()
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, ErrNoAnswer
		}
		return nil, err
	}
	return ParseMessage(raw)
}

// readStream reads one message from the TCP stream, framed by Content-Length
// (RFC 3261 §18.3); lone CRLFs between messages are skipped.
func (c *Client) readStream() ([]byte, error) {
	var head bytes.Buffer
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keepalive CRLF
		}
		head.WriteString(line)
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	m, err := ParseMessage(head.Bytes())
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(m.Get("Content-Length"))
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	return append(head.Bytes(), body...), nil
}

// ReadRaw reads whatever bytes arrive within timeout (at least one).
func (c *Client) ReadRaw(timeout time.Duration) ([]byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	var n int
	var err error
	if c.br != nil {
		n, err = c.br.Read(buf)
	} else {
		n, err = c.conn.Read(buf)
	}
	if n > 0 {
		return buf[:n], nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, ErrNoAnswer
	}
	return nil, err
}

func branchOf(via string) string {
	for _, p := range strings.Split(via, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "branch") {
			return v
		}
	}
	return ""
}

// Do sends req and waits up to timeout for its final response (1xx skipped;
// responses to other requests ignored).
func (c *Client) Do(req *Request, timeout time.Duration) (*Message, error) {
	if err := c.Send(req.Bytes()); err != nil {
		return nil, err
	}
	branch := branchOf(req.Get("Via"))
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("%s: %w within %v", req.Method, ErrNoAnswer, timeout)
		}
		m, err := c.Read(left)
		if err != nil {
			if errors.Is(err, ErrNoAnswer) {
				return nil, fmt.Errorf("%s: %w within %v", req.Method, ErrNoAnswer, timeout)
			}
			return nil, err
		}
		if !m.IsResponse() || m.StatusCode() < 200 {
			continue
		}
		if branch != "" && branchOf(m.Get("Via")) != branch {
			continue
		}
		return m, nil
	}
}

// AuthResult is the exchange of an authenticated request.
type AuthResult struct {
	Challenge *Message // the 401/407, nil when the first answer was final
	Final     *Message // the answer to the request with credentials
	Sent      *Request // the request with credentials, nil if none was sent
}

// DoAuth sends req; on a 401/407 it answers the first challenge whose
// algorithm is in prefer (most preferred first; nil means SHA-256 then MD5)
// with user's credentials, in a new transaction with CSeq+1.
func (c *Client) DoAuth(req *Request, user, password string, prefer []string, timeout time.Duration) (*AuthResult, error) {
	first, err := c.Do(req, timeout)
	if err != nil {
		return nil, err
	}
	code := first.StatusCode()
	if code != 401 && code != 407 {
		return &AuthResult{Final: first}, nil
	}
	hdr, authz := "WWW-Authenticate", "Authorization"
	if code == 407 {
		hdr, authz = "Proxy-Authenticate", "Proxy-Authorization"
	}
	ch, err := PickChallenge(first.Values(hdr), prefer)
	if err != nil {
		return &AuthResult{Challenge: first}, err
	}
	retry := req.Clone()
	c.cseq++
	retry.Set("CSeq", fmt.Sprintf("%d %s", c.cseq, req.Method))
	retry.Set("Via", fmt.Sprintf("SIP/2.0/%s %s;branch=z9hG4bK%s;rport", c.Transport, c.LocalAddr(), RandomToken()))
	cred, err := Credentials(ch, user, password, req.Method, req.URI, RandomToken())
	if err != nil {
		return &AuthResult{Challenge: first}, err
	}
	retry.Set(authz, cred)
	final, err := c.Do(retry, timeout)
	return &AuthResult{Challenge: first, Final: final, Sent: retry}, err
}

// PickChallenge chooses among challenge header values the first one whose
// algorithm comes first in prefer (nil: SHA-256, MD5).
func PickChallenge(values []string, prefer []string) (Challenge, error) {
	if prefer == nil {
		prefer = []string{"SHA-256", "MD5"}
	}
	var all []Challenge
	for _, v := range values {
		ch, err := ParseChallenge(v)
		if err != nil {
			return Challenge{}, err
		}
		all = append(all, ch)
	}
	for _, alg := range prefer {
		for _, ch := range all {
			if strings.EqualFold(ch.Algorithm(), alg) {
				return ch, nil
			}
		}
	}
	return Challenge{}, fmt.Errorf("no challenge with algorithm in %v among %q", prefer, values)
}
