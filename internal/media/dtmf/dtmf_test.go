package dtmf

import "testing"

func TestCodeDigit(t *testing.T) {
	for i, r := range Events {
		if Code(r) != i || Digit(i) != r {
			t.Fatalf("%q: code %d digit %q", r, Code(r), Digit(i))
		}
	}
	for _, c := range []struct {
		r    rune
		code int
	}{{'a', 12}, {'d', 15}, {'x', -1}, {'e', -1}} {
		if got := Code(c.r); got != c.code {
			t.Errorf("Code(%q) = %d, want %d", c.r, got, c.code)
		}
	}
	if Digit(16) != 0 || Digit(-1) != 0 {
		t.Error("flash or a negative code is not a digit")
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, ev := range []Event{{Code: 11, End: true, Volume: 10, Duration: 800}, {Code: 0, Volume: 63, Duration: 65535}} {
		b := ev.Append(nil)
		if len(b) != 4 {
			t.Fatalf("payload %d bytes", len(b))
		}
		got, ok := Parse(b)
		if !ok || got != ev {
			t.Fatalf("round trip %+v -> %+v", ev, got)
		}
	}
	// RFC 4733 §2.3 layout, byte by byte: '#' (11), end, volume 10, 800.
	b := Event{Code: 11, End: true, Volume: 10, Duration: 800}.Append(nil)
	if want := []byte{11, 0x8A, 0x03, 0x20}; string(b) != string(want) {
		t.Fatalf("payload % x, want % x", b, want)
	}
	if _, ok := Parse([]byte{1, 2, 3}); ok {
		t.Fatal("3 bytes parsed")
	}
}

func TestReceiver(t *testing.T) {
	pkt := func(code int, end bool, dur uint16) []byte {
		return Event{Code: code, End: end, Volume: 10, Duration: dur}.Append(nil)
	}
	type p struct {
		ts      uint32
		payload []byte
	}
	cases := []struct {
		name string
		in   []p
		want string
	}{
		{"one digit, five updates and three ends", []p{
			{100, pkt(5, false, 160)}, {100, pkt(5, false, 320)}, {100, pkt(5, false, 480)},
			{100, pkt(5, true, 800)}, {100, pkt(5, true, 800)}, {100, pkt(5, true, 800)},
		}, "5"},
		{"the same digit twice", []p{
			{100, pkt(1, false, 160)}, {100, pkt(1, true, 800)}, {1300, pkt(1, false, 160)}, {1300, pkt(1, true, 800)},
		}, "11"},
		{"start lost: the end packets still count once", []p{
			{100, pkt(9, true, 800)}, {100, pkt(9, true, 800)},
		}, "9"},
		{"flash consumes its timestamp", []p{{100, pkt(16, false, 160)}, {100, pkt(16, true, 800)}, {900, pkt(11, false, 160)}}, "#"},
		{"short payloads ignored", []p{{100, []byte{1}}, {200, pkt(0, false, 160)}}, "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r Receiver
			got := ""
			for _, x := range c.in {
				if d, ok := r.Packet(x.ts, x.payload); ok {
					got += string(d)
				}
			}
			if got != c.want {
				t.Fatalf("digits %q, want %q", got, c.want)
			}
		})
	}
}
