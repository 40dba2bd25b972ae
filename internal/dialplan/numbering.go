package dialplan

import "strings"

// Numbering is one country's dialing habits.
type Numbering struct {
	CountryCode         string // "44"; empty: national numbers cannot be normalized
	NationalPrefix      string // trunk prefix, "0" in most of the world, "1" in North America
	InternationalPrefix string // "00" in most of the world, "011" in North America
}

// Clean removes the visual separators of RFC 3966 (- . ( ) and spaces)
// and any user parameters (;phone-context=...); false when what is left
// is not a dial string (digits, a leading +, * and #).
func Clean(dialed string) (string, bool) {
	dialed, _, _ = strings.Cut(dialed, ";")
	var b strings.Builder
	for i := 0; i < len(dialed); i++ {
		c := dialed[i]
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			b.WriteByte(c)
		case c == '+' && i == 0:
			b.WriteByte(c)
		case c == '-', c == '.', c == '(', c == ')', c == ' ':
		default:
			return "", false
		}
	}
	n := b.String()
	return n, n != "" && n != "+"
}

// digits reports whether s is 1 or more decimal digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ToE164 turns a dialed number into E.164 (+ country code and national
// significant number, at most 15 digits): +... stays, the international
// prefix becomes +, the national prefix becomes + and the country code.
// A number with neither prefix (a local number, a short code) has no
// E.164 form here: false.
func (n Numbering) ToE164(dialed string) (string, bool) {
	d, ok := Clean(dialed)
	if !ok {
		return "", false
	}
	var e string
	switch {
	case strings.HasPrefix(d, "+"):
		e = d
	case n.InternationalPrefix != "" && strings.HasPrefix(d, n.InternationalPrefix):
		e = "+" + d[len(n.InternationalPrefix):]
	case n.CountryCode != "" && n.NationalPrefix != "" && strings.HasPrefix(d, n.NationalPrefix):
		e = "+" + n.CountryCode + d[len(n.NationalPrefix):]
	default:
		return "", false
	}
	if !digits(e[1:]) || len(e)-1 > 15 || len(e)-1 < 3 {
		return "", false
	}
	return e, true
}

// Format writes an E.164 number the way a carrier wants it:
// "e164" (+4420...), "digits" (4420..., no plus), "national" (the
// national prefix and number for our own country, the international
// prefix and digits for others).
func (n Numbering) Format(e164, style string) string {
	d := strings.TrimPrefix(e164, "+")
	switch style {
	case "digits":
		return d
	case "national":
		if n.CountryCode != "" && strings.HasPrefix(d, n.CountryCode) {
			return n.NationalPrefix + d[len(n.CountryCode):]
		}
		return n.InternationalPrefix + d
	}
	return "+" + d
}
