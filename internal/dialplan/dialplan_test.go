package dialplan

import (
	"errors"
	"testing"
)

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{"0044", []string{"0044", "00442079460000"}, []string{"004", "0045", "+44"}},
		{"_NXXNXXXXXX", []string{"2125550100"}, []string{"1125550100", "212555010", "21255501000"}},
		{"_1NXXNXXXXXX", []string{"12125550100"}, []string{"2125550100"}},
		{"_00.", []string{"001", "0044207946"}, []string{"00", "01"}},
		{"_9!", []string{"9", "9123"}, []string{"8"}},
		{"_0[1-3,7]X", []string{"010", "039", "079"}, []string{"040", "0710", "07"}},
		{"_0[17]Z", []string{"011", "079"}, []string{"010", "021"}},
		{"_+44.", []string{"+442079460000"}, []string{"+4", "0044"}},
		{"_*XX", []string{"*72"}, []string{"#72"}},
	}
	for _, tt := range tests {
		p, err := Compile(tt.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.pattern, err)
		}
		for _, n := range tt.match {
			if !p.Match(n) {
				t.Errorf("%q does not match %q", tt.pattern, n)
			}
		}
		for _, n := range tt.nomatch {
			if p.Match(n) {
				t.Errorf("%q matches %q", tt.pattern, n)
			}
		}
	}
	for _, bad := range []string{"", "_", "00a", "_0.1", "_[", "_[]", "_[9-1]", "_Q", "_[a]"} {
		if _, err := Compile(bad); !errors.Is(err, ErrBadPattern) {
			t.Errorf("Compile(%q) = %v, want ErrBadPattern", bad, err)
		}
	}
}

func TestToE164(t *testing.T) {
	uk := Numbering{CountryCode: "44", NationalPrefix: "0", InternationalPrefix: "00"}
	us := Numbering{CountryCode: "1", NationalPrefix: "1", InternationalPrefix: "011"}
	tests := []struct {
		n      Numbering
		dialed string
		want   string
	}{
		{uk, "020 7946 0000", "+442079460000"},
		{uk, "0044-20-7946-0000", "+442079460000"},
		{uk, "+33 1 23 45 67 89", "+33123456789"},
		{uk, "0033123456789", "+33123456789"},
		{us, "12125550100", "+12125550100"},
		{us, "01144207946000", "+44207946000"},
		{uk, "7946000", ""},           // no prefix: no E.164 form
		{uk, "alice", ""},             // not a number
		{uk, "+1234567890123456", ""}, // 16 digits
		{Numbering{}, "0207946000", ""},
	}
	for _, tt := range tests {
		got, ok := tt.n.ToE164(tt.dialed)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ToE164(%q) = %q, %v; want %q", tt.dialed, got, ok, tt.want)
		}
	}
	if got := uk.Format("+442079460000", "national"); got != "02079460000" {
		t.Errorf("national = %q", got)
	}
	if got := uk.Format("+33123456789", "national"); got != "0033123456789" {
		t.Errorf("national (abroad) = %q", got)
	}
	if got := uk.Format("+442079460000", "digits"); got != "442079460000" {
		t.Errorf("digits = %q", got)
	}
	if got := uk.Format("+442079460000", "e164"); got != "+442079460000" {
		t.Errorf("e164 = %q", got)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"0044", "_NXXNXXXXXX", "_0[1-3,7]X.", "_9!", "_[", "_+44."} {
		f.Add(s, "00442079460000")
	}
	f.Fuzz(func(t *testing.T, pattern, number string) {
		p, err := Compile(pattern)
		if err != nil {
			return
		}
		p.Match(number)
		Numbering{CountryCode: "44", NationalPrefix: "0", InternationalPrefix: "00"}.ToE164(number)
	})
}
