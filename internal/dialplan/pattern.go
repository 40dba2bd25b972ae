package dialplan

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadPattern is a route pattern that cannot be compiled.
var ErrBadPattern = errors.New("bad dial pattern")

// Pattern is a compiled route pattern.
type Pattern struct {
	src    string
	prefix bool      // a plain digit string: matches numbers starting with it
	elems  []element // for a pattern (leading _)
	tail   byte      // 0, '.' (one or more) or '!' (zero or more)
}

// element is one position of a pattern: the set of characters it takes.
type element struct {
	set [128]bool
}

func (e *element) has(c byte) bool { return c < 128 && e.set[c] }

func (e *element) addRange(lo, hi byte) {
	for c := lo; c <= hi; c++ {
		e.set[c] = true
	}
}

func literal(c byte) bool {
	return c >= '0' && c <= '9' || c == '+' || c == '*' || c == '#'
}

// Compile parses a route pattern (see the package doc).
func Compile(src string) (*Pattern, error) {
	p := &Pattern{src: src}
	bad := func(why string) (*Pattern, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrBadPattern, src, why)
	}
	if src == "" {
		return bad("empty")
	}
	body, isPattern := strings.CutPrefix(src, "_")
	if !isPattern {
		for i := 0; i < len(src); i++ {
			if !literal(src[i]) {
				return bad("a prefix is digits, +, * and # only (start with _ for a pattern)")
			}
		}
		p.prefix = true
		return p, nil
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		var e element
		switch {
		case c == '.' || c == '!':
			if i != len(body)-1 {
				return bad(fmt.Sprintf("%c only at the end", c))
			}
			p.tail = c
			continue
		case c == 'X' || c == 'x':
			e.addRange('0', '9')
		case c == 'Z' || c == 'z':
			e.addRange('1', '9')
		case c == 'N' || c == 'n':
			e.addRange('2', '9')
		case c == '[':
			end := strings.IndexByte(body[i:], ']')
			if end < 0 {
				return bad("[ without ]")
			}
			set := body[i+1 : i+end]
			if set == "" {
				return bad("empty []")
			}
			for j := 0; j < len(set); j++ {
				switch {
				case set[j] == ',':
				case j+2 < len(set) && set[j+1] == '-':
					lo, hi := set[j], set[j+2]
					if !literal(lo) || !literal(hi) || lo > hi {
						return bad(fmt.Sprintf("range %c-%c", lo, hi))
					}
					e.addRange(lo, hi)
					j += 2
				case literal(set[j]):
					e.set[set[j]] = true
				default:
					return bad(fmt.Sprintf("%q in []", set[j]))
				}
			}
			i += end
		case literal(c):
			e.set[c] = true
		default:
			return bad(fmt.Sprintf("%q is not a digit, X, Z, N, [..], . or !", c))
		}
		p.elems = append(p.elems, e)
	}
	if len(p.elems) == 0 && p.tail != '!' && p.tail != '.' {
		return bad("nothing to match")
	}
	return p, nil
}

// MustCompile is Compile for patterns known to be good.
func MustCompile(src string) *Pattern {
	p, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.src }

// Match reports whether number matches the pattern.
func (p *Pattern) Match(number string) bool {
	if p.prefix {
		return strings.HasPrefix(number, p.src)
	}
	if len(number) < len(p.elems) {
		return false
	}
	for i := range p.elems {
		if !p.elems[i].has(number[i]) {
			return false
		}
	}
	rest := len(number) - len(p.elems)
	switch p.tail {
	case '.':
		return rest >= 1
	case '!':
		return true
	}
	return rest == 0
}
