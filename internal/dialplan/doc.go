// Package dialplan matches dialed numbers against route patterns and
// turns them into E.164 and back, as a PBX user would expect.
//
// Patterns follow the convention PBX users know from Asterisk:
//
//	0044        a plain string of digits is a prefix: 0044 and all it starts
//	_0044.      a leading _ makes a pattern that must match the whole number
//	X           any digit 0-9
//	Z           1-9
//	N           2-9
//	[1-5,7]     one digit from a set of ranges and digits ([157] also works)
//	.           one or more of anything (only at the end)
//	!           zero or more of anything (only at the end)
//
// Any other character (digits, +, *, #) matches itself. Letters other
// than X, Z and N are refused, so a typo fails at `kaopu route add`, not
// at call time.
//
// Numbering describes one country's dialing habits (country code,
// national and international prefixes) so that what a user dials becomes
// an E.164 number (+ country code, national significant number) for
// rating and for carriers.
package dialplan
