package sdpx

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Crypto is one a=crypto attribute (SDES, RFC 4568 §9.1) that the server
// can use: a tag, a crypto suite and one inline master key (key and salt
// concatenated, as RFC 4568 §6.1 writes them). Its String and LogValue
// never show the key; only Rewrite writes it, into the SDP for the peer
// it belongs to.
type Crypto struct {
	Tag   int
	Suite string
	Key   []byte
}

// String names the tag and suite and hides the key.
func (c Crypto) String() string {
	return strconv.Itoa(c.Tag) + " " + c.Suite + " inline:<redacted>"
}

// LogValue keeps the key out of slog output.
func (c Crypto) LogValue() slog.Value { return slog.StringValue(c.String()) }

// attr is the attribute value with the key, for Rewrite only.
func (c Crypto) attr() string {
	return strconv.Itoa(c.Tag) + " " + c.Suite + " inline:" + base64.StdEncoding.EncodeToString(c.Key)
}

// KeyLen says how long a suite's inline key is (master key plus salt), or
// 0 when the server does not support the suite. The call layer passes the
// media layer's list, so that SDP and relay agree on what is supported.
type KeyLen func(suite string) int

// ParseCrypto reads an a=crypto value: "tag suite inline:KEY[|lifetime]
// [session-params]". It refuses, without quoting the key in the error,
// what the relay cannot use: a suite keyLen does not know, a key of the
// wrong length, several keys or an MKI (RFC 4568 §6.1: the MKI would
// change the packet format), and any session parameter (KDR,
// UNENCRYPTED_SRTP... change the transform; §6.3 lets the answerer refuse
// a line with parameters it does not support).
func ParseCrypto(v string, keyLen KeyLen) (Crypto, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return Crypto{}, fmt.Errorf("%w: a=crypto needs tag, suite and key", ErrMalformed)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 || len(f[0]) > 9 {
		return Crypto{}, fmt.Errorf("%w: a=crypto tag", ErrMalformed)
	}
	suite := f[1]
	n := 0
	if isToken(suite) && keyLen != nil {
		n = keyLen(suite)
	}
	if n == 0 {
		return Crypto{}, fmt.Errorf("%w: crypto suite %.40q", ErrUnsupported, suite)
	}
	if len(f) > 3 {
		return Crypto{}, fmt.Errorf("%w: a=crypto session parameters", ErrUnsupported)
	}
	params, ok := strings.CutPrefix(f[2], "inline:")
	if !ok || strings.Contains(params, ";") {
		return Crypto{}, fmt.Errorf("%w: a=crypto needs exactly one inline key", ErrUnsupported)
	}
	key64, lifetime, _ := strings.Cut(params, "|")
	if strings.Contains(lifetime, "|") || strings.Contains(lifetime, ":") {
		return Crypto{}, fmt.Errorf("%w: a=crypto key with an MKI", ErrUnsupported)
	}
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(key64)
	}
	if err != nil || len(key) != n {
		return Crypto{}, fmt.Errorf("%w: a=crypto key is not %d bytes of base64", ErrMalformed, n)
	}
	return Crypto{Tag: tag, Suite: suite, Key: key}, nil
}

// SelectCrypto returns the first of the stream's a=crypto lines that the
// server can use, in the writer's order of preference (RFC 4568 §7.1.2:
// the answerer picks one offered line and keeps its tag).
func (st *Stream) SelectCrypto(keyLen KeyLen) (Crypto, bool) {
	for _, v := range st.Crypto {
		if c, err := ParseCrypto(v, keyLen); err == nil {
			return c, true
		}
	}
	return Crypto{}, false
}

// AnswerCrypto finds, in an answer, the a=crypto line that accepts one of
// the lines offered (same tag and suite, RFC 4568 §7.1.3); false when the
// answer has none, and an error when it has one the offer did not make.
func (st *Stream) AnswerCrypto(offered []Crypto, keyLen KeyLen) (Crypto, bool, error) {
	if len(st.Crypto) == 0 {
		return Crypto{}, false, nil
	}
	for _, v := range st.Crypto {
		c, err := ParseCrypto(v, keyLen)
		if err != nil {
			continue
		}
		for _, o := range offered {
			if o.Tag == c.Tag && o.Suite == c.Suite {
				return c, true, nil
			}
		}
	}
	return Crypto{}, false, fmt.Errorf("%w: the answer's a=crypto matches no offered tag and suite", ErrUnsupported)
}
