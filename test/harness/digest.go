package harness

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// Challenge is one parsed WWW-Authenticate or Proxy-Authenticate value.
type Challenge struct {
	Scheme string
	Params map[string]string // names lower-cased, values unquoted
	Names  []string          // parameter names (lower-cased) in the order sent
}

// Algorithm is the challenge's algorithm, MD5 when absent (RFC 3261 §22.4).
func (c Challenge) Algorithm() string {
	if a := c.Params["algorithm"]; a != "" {
		return a
	}
	return "MD5"
}

// ParseChallenge parses `Digest realm="x", nonce="y", ...`.
func ParseChallenge(v string) (Challenge, error) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	c := Challenge{Scheme: scheme, Params: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,\t")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return c, fmt.Errorf("parameter without '=' in %q", v)
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var sb strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				sb.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return c, fmt.Errorf("unterminated quoted string in %q", v)
			}
			val, rest = sb.String(), rest[i+1:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		c.Params[name] = val
		c.Names = append(c.Names, name)
	}
	return c, nil
}

func digestHash(alg string) (func() hash.Hash, error) {
	switch strings.ToUpper(alg) {
	case "MD5":
		return md5.New, nil
	case "SHA-256":
		return sha256.New, nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", alg)
}

func hexHash(h func() hash.Hash, s string) string {
	d := h()
	d.Write([]byte(s))
	return hex.EncodeToString(d.Sum(nil))
}

// Credentials builds an Authorization value answering challenge c for the
// given request (RFC 3261 §22.4, RFC 7616 with qop=auth, RFC 8760).
func Credentials(c Challenge, user, password, method, uri, cnonce string) (string, error) {
	if !strings.EqualFold(c.Scheme, "Digest") {
		return "", fmt.Errorf("scheme %q is not Digest", c.Scheme)
	}
	alg := c.Algorithm()
	h, err := digestHash(alg)
	if err != nil {
		return "", err
	}
	realm, nonce := c.Params["realm"], c.Params["nonce"]
	ha1 := hexHash(h, user+":"+realm+":"+password)
	ha2 := hexHash(h, method+":"+uri)
	var qop string
	for _, q := range strings.Split(c.Params["qop"], ",") {
		if strings.TrimSpace(q) == "auth" {
			qop = "auth"
		}
	}
	const nc = "00000001"
	var resp string
	if qop != "" {
		resp = hexHash(h, ha1+":"+nonce+":"+nc+":"+cnonce+":"+qop+":"+ha2)
	} else {
		resp = hexHash(h, ha1+":"+nonce+":"+ha2)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s`,
		user, realm, nonce, uri, resp, alg)
	if qop != "" {
		fmt.Fprintf(&sb, `, qop=%s, nc=%s, cnonce="%s"`, qop, nc, cnonce)
	}
	if o, ok := c.Params["opaque"]; ok {
		fmt.Fprintf(&sb, `, opaque="%s"`, o)
	}
	return sb.String(), nil
}
