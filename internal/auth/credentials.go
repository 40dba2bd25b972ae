package auth

import (
	"errors"
	"strconv"
	"strings"
)

// credentials are the fields of a Digest Authorization value (RFC 7616 §3.4).
type credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Cnonce, QOP, NC string
	Nc                                                                int
}

var errCredentials = errors.New("malformed digest credentials")

// parseCredentials reads `Digest k=v, k="v", ...`. Values are substrings of
// s (no copies); unknown parameters are ignored.
func parseCredentials(s string) (credentials, error) {
	var c credentials
	s = strings.TrimLeft(s, " \t")
	if len(s) < 7 || !strings.EqualFold(s[:6], "Digest") || (s[6] != ' ' && s[6] != '\t') {
		return c, errCredentials
	}
	s = s[7:]
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return c, errCredentials
		}
		key := strings.TrimRight(s[:eq], " \t")
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return c, errCredentials
			}
			val = s[1:end]
			if strings.IndexByte(val, '\\') >= 0 {
				val = unescape(val)
			}
			s = s[end+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		switch strings.ToLower(key) {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = val
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.Cnonce = val
		case "qop":
			c.QOP = val
		case "nc":
			n, err := strconv.ParseUint(val, 16, 32)
			if err != nil || len(val) != 8 {
				return c, errCredentials
			}
			c.NC, c.Nc = val, int(n)
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" {
		return c, errCredentials
	}
	return c, nil
}

func unescape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
