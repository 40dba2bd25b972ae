package main

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// rtpengine's ng control protocol is a cookie, a space and one bencoded
// dictionary per UDP datagram. Bencode (from BitTorrent's BEP 3) has four
// types: byte strings "4:spam", integers "i42e", lists "l...e" and
// dictionaries "d...e" whose keys are byte strings in sorted order.

// bencode encodes v: string, []byte, int, int64, []string, []any or
// map[string]any (keys are written sorted).
func bencode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := bencodeTo(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func bencodeTo(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case string:
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.WriteString(x)
	case []byte:
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.Write(x)
	case int:
		fmt.Fprintf(b, "i%de", x)
	case int64:
		fmt.Fprintf(b, "i%de", x)
	case []string:
		b.WriteByte('l')
		for _, s := range x {
			bencodeTo(b, s)
		}
		b.WriteByte('e')
	case []any:
		b.WriteByte('l')
		for _, e := range x {
			if err := bencodeTo(b, e); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // raw byte order, as bencode requires
		b.WriteByte('d')
		for _, k := range keys {
			bencodeTo(b, k)
			if err := bencodeTo(b, x[k]); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
		b.WriteByte('e')
	default:
		return fmt.Errorf("bencode: cannot encode %T", v)
	}
	return nil
}

var errBencode = errors.New("bencode: malformed input")

// maxBencodeDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxBencodeDepth = 32

// bdecode decodes exactly one value filling all of b. Strings decode to
// string, integers to int64, lists to []any, dictionaries to
// map[string]any.
func bdecode(b []byte) (any, error) {
	v, n, err := bdecodeAt(b, 0, 0)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBencode, len(b)-n)
	}
	return v, nil
}

func bdecodeAt(b []byte, i, depth int) (any, int, error) {
	if i >= len(b) {
		return nil, i, fmt.Errorf("%w: unexpected end", errBencode)
	}
	if depth > maxBencodeDepth {
		return nil, i, fmt.Errorf("%w: nested too deep", errBencode)
	}
	switch c := b[i]; {
	case c == 'i':
		end := bytes.IndexByte(b[i+1:], 'e')
		if end < 0 {
			return nil, i, fmt.Errorf("%w: unterminated integer", errBencode)
		}
		s := string(b[i+1 : i+1+end])
		if s == "" || s == "-0" || (len(s) > 1 && s[0] == '0') || (len(s) > 2 && s[:2] == "-0") {
			return nil, i, fmt.Errorf("%w: bad integer %q", errBencode, s)
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, i, fmt.Errorf("%w: bad integer %q", errBencode, s)
		}
		return v, i + 2 + end, nil
	case c >= '0' && c <= '9':
		colon := bytes.IndexByte(b[i:], ':')
		if colon < 0 {
			return nil, i, fmt.Errorf("%w: string without ':'", errBencode)
		}
		n, err := strconv.Atoi(string(b[i : i+colon]))
		if err != nil || n < 0 || (colon > 1 && b[i] == '0') {
			return nil, i, fmt.Errorf("%w: bad string length", errBencode)
		}
		start := i + colon + 1
		if n > len(b)-start {
			return nil, i, fmt.Errorf("%w: string runs past the end", errBencode)
		}
		return string(b[start : start+n]), start + n, nil
	case c == 'l':
		list := []any{}
		i++
		for {
			if i >= len(b) {
				return nil, i, fmt.Errorf("%w: unterminated list", errBencode)
			}
			if b[i] == 'e' {
				return list, i + 1, nil
			}
			v, n, err := bdecodeAt(b, i, depth+1)
			if err != nil {
				return nil, n, err
			}
			list = append(list, v)
			i = n
		}
	case c == 'd':
		dict := map[string]any{}
		i++
		for {
			if i >= len(b) {
				return nil, i, fmt.Errorf("%w: unterminated dictionary", errBencode)
			}
			if b[i] == 'e' {
				return dict, i + 1, nil
			}
			k, n, err := bdecodeAt(b, i, depth+1)
			if err != nil {
				return nil, n, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, i, fmt.Errorf("%w: dictionary key is not a string", errBencode)
			}
			v, n2, err := bdecodeAt(b, n, depth+1)
			if err != nil {
				return nil, n2, err
			}
			dict[key] = v
			i = n2
		}
	}
	return nil, i, fmt.Errorf("%w: unexpected %q at %d", errBencode, b[i], i)
}

// ngMessage builds one ng datagram: cookie, space, bencoded dictionary.
func ngMessage(cookie string, d map[string]any) ([]byte, error) {
	body, err := bencode(d)
	if err != nil {
		return nil, err
	}
	return append([]byte(cookie+" "), body...), nil
}

// parseNGReply splits an ng reply into its cookie and dictionary.
func parseNGReply(b []byte) (string, map[string]any, error) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 {
		return "", nil, fmt.Errorf("%w: no cookie", errBencode)
	}
	v, err := bdecode(b[sp+1:])
	if err != nil {
		return "", nil, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("%w: reply is not a dictionary", errBencode)
	}
	return string(b[:sp]), d, nil
}
