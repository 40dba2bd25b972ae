package call

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/kaopu/kaopu/internal/sdpx"
	"github.com/kaopu/kaopu/internal/store"
)

func ptNames(pts []sdpx.PT) string {
	var s []string
	for _, p := range pts {
		s = append(s, fmt.Sprintf("%d:%s/%d", p.Number, p.Name, p.ClockRate))
	}
	return strings.Join(s, " ")
}

// TestTrunkCodecs: the trunk's order, only what the caller offered, and
// telephone-event kept.
func TestTrunkCodecs(t *testing.T) {
	offered := []sdpx.PT{{Number: 0, Name: "PCMU", ClockRate: 8000}, {Number: 8, Name: "PCMA", ClockRate: 8000},
		{Number: 9, Name: "G722", ClockRate: 8000}, {Number: 111, Name: "opus", ClockRate: 48000, Channels: 2},
		{Number: 101, Name: "telephone-event", ClockRate: 8000}, {Number: 110, Name: "telephone-event", ClockRate: 48000}}
	tests := []struct {
		prefs []string
		want  string
		ok    bool
	}{
		{nil, ptNames(offered), true},
		{[]string{"G722", "pcmu"}, "9:G722/8000 0:PCMU/8000 101:telephone-event/8000 110:telephone-event/48000", true},
		{[]string{"PCMA", "PCMA"}, "8:PCMA/8000 101:telephone-event/8000 110:telephone-event/48000", true},
		{[]string{"OPUS", "GSM"}, "111:opus/48000 101:telephone-event/8000 110:telephone-event/48000", true},
		{[]string{"GSM", "telephone-event"}, "", false},
	}
	for _, tt := range tests {
		got, ok := trunkCodecs(offered, tt.prefs)
		if ok != tt.ok || ptNames(got) != tt.want {
			t.Errorf("trunkCodecs(%v) = %q %v, want %q %v", tt.prefs, ptNames(got), ok, tt.want, tt.ok)
		}
	}
}

// TestOfferToTrunk: the carrier gets what its trunk says whatever the
// caller offered (an SRTP caller through an rtp trunk is SRTP on its
// leg, plain RTP on the carrier's, and audio crosses), in the trunk's
// codec order; a trunk tried after another (failover) gets its own offer.
func TestOfferToTrunk(t *testing.T) {
	const cm80 = "AES_CM_128_HMAC_SHA1_80"
	tests := []struct {
		name         string
		media        string
		callerProto  string
		callerCrypto []string
		wantProto    string
		wantCrypto   bool
		answerCrypto bool // the carrier answers with a key
		wantErr      bool // the carrier's answer is refused
	}{
		{name: "SRTP caller, rtp trunk", media: store.TrunkMediaRTP, callerProto: "RTP/SAVP", callerCrypto: []string{"1 " + cm80},
			wantProto: "RTP/AVP"},
		{name: "best-effort caller, default trunk", media: "", callerProto: "RTP/AVP", callerCrypto: []string{"1 " + cm80},
			wantProto: "RTP/AVP"},
		{name: "plain caller, srtp trunk", media: store.TrunkMediaSRTP, callerProto: "RTP/AVP",
			wantProto: "RTP/SAVP", wantCrypto: true, answerCrypto: true},
		{name: "srtp trunk answering plainly", media: store.TrunkMediaSRTP, callerProto: "RTP/AVP",
			wantProto: "RTP/SAVP", wantCrypto: true, wantErr: true},
		{name: "SRTP caller, best-effort trunk answering plainly", media: store.TrunkMediaBestEffort, callerProto: "RTP/SAVP",
			callerCrypto: []string{"1 " + cm80}, wantProto: "RTP/AVP", wantCrypto: true},
		{name: "plain caller, best-effort trunk answering with a key", media: store.TrunkMediaBestEffort, callerProto: "RTP/AVP",
			wantProto: "RTP/AVP", wantCrypto: true, answerCrypto: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManager(t, PolicyOptional)
			caller, carrier := newPeer(t), newPeer(t)
			a, err := m.newAnchor(caller.sdp(tt.callerProto, tt.callerCrypto...), slog.New(slog.DiscardHandler), "alice", "0044123")
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			if err := a.offerToTrunk(TrunkTarget{Trunk: "c", Media: tt.media}); err != nil {
				t.Fatal(err)
			}
			if got := protoOf(t, a.outOffer); got != tt.wantProto {
				t.Fatalf("offer to the carrier is %s, want %s", got, tt.wantProto)
			}
			if got := bytes.Contains(a.outOffer, []byte("a=crypto")); got != tt.wantCrypto {
				t.Fatalf("a=crypto in the offer to the carrier: %v, want %v\n%s", got, tt.wantCrypto, a.outOffer)
			}
			answer := carrier.sdp("RTP/AVP")
			if tt.answerCrypto {
				answer = carrier.sdp(tt.wantProto, "1 "+cm80)
			}
			toCaller, err := a.answered(context.Background(), answer)
			if tt.wantErr {
				if err == nil {
					t.Fatal("a plain answer to an srtp trunk's offer was taken")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := protoOf(t, toCaller); got != tt.callerProto {
				t.Fatalf("answer to the caller is %s, want %s", got, tt.callerProto)
			}
			var la, lb link
			if len(tt.callerCrypto) > 0 {
				la = link{enc: ctxFor(t, cm80, caller.key), dec: ctxFor(t, cm80, serverKey(t, toCaller, 0).Key)}
			}
			if tt.answerCrypto {
				lb = link{enc: ctxFor(t, cm80, carrier.key), dec: ctxFor(t, cm80, serverKey(t, a.outOffer, 1).Key)}
			}
			twoWay(t, caller, carrier, toCaller, a.outOffer, la, lb)
			if s := a.legB.Stats(); (s.SRTP != "") != tt.answerCrypto {
				t.Errorf("carrier's leg SRTP %q, want SRTP %v", s.SRTP, tt.answerCrypto)
			}
		})
	}
}

// TestOfferToTrunkCodecsAndFailover: each trunk tried gets its codecs in
// its order and its own media; a trunk without a codec in common leaves
// the anchor as it was; after the first trunk's early media started the
// relay, the next trunk is offered the same relay port.
func TestOfferToTrunkCodecsAndFailover(t *testing.T) {
	m := testManager(t, PolicyOptional)
	caller, first := newPeer(t), newPeer(t)
	offer := []byte(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n",
		caller.port(), base64.StdEncoding.EncodeToString(caller.key)))
	a, err := m.newAnchor(offer, slog.New(slog.DiscardHandler), "alice", "0044123")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	mline := func() string {
		for _, l := range strings.Split(string(a.outOffer), "\r\n") {
			if strings.HasPrefix(l, "m=audio") {
				return l[strings.Index(l, "RTP/"):]
			}
		}
		return ""
	}
	if err := a.offerToTrunk(TrunkTarget{Trunk: "one", Codecs: []string{"G722", "PCMU"}, Media: store.TrunkMediaSRTP}); err != nil {
		t.Fatal(err)
	}
	if got := mline(); got != "RTP/SAVP 9 0 101" {
		t.Fatalf("first trunk's m= line: %q", got)
	}
	port := relayAddr(a.outOffer).Port()
	before := a.outOffer
	if err := a.offerToTrunk(TrunkTarget{Trunk: "none", Codecs: []string{"GSM"}}); !errors.Is(err, errNoTrunkCodec) {
		t.Fatalf("trunk without a common codec: %v", err)
	}
	if !bytes.Equal(a.outOffer, before) || a.policyB != PolicyRequired {
		t.Fatal("a refused trunk changed the offer")
	}
	// The first trunk's 183 with SDP: early media through the relay.
	if _, err := a.answered(context.Background(), first.sdp("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80")); err != nil {
		t.Fatal(err)
	}
	if err := a.offerToTrunk(TrunkTarget{Trunk: "two", Codecs: []string{"pcma", "pcmu"}, Media: store.TrunkMediaRTP}); err != nil {
		t.Fatal(err)
	}
	if got := mline(); got != "RTP/AVP 8 0 101" || bytes.Contains(a.outOffer, []byte("a=crypto")) {
		t.Fatalf("second trunk's offer:\n%s", a.outOffer)
	}
	if got := relayAddr(a.outOffer).Port(); got != port || a.policyB != PolicyOptional {
		t.Fatalf("second trunk offered port %d (first %d), policy %s", got, port, a.policyB)
	}
	second := newPeer(t)
	g722 := []byte(fmt.Sprintf("v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n", second.port()))
	if _, err := a.answered(context.Background(), g722); err == nil {
		t.Fatal("the carrier answered with G722, which its trunk was not offered, and it was taken")
	}
	ans := []byte(fmt.Sprintf("v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n", second.port()))
	toCaller, err := a.answered(context.Background(), ans)
	if err != nil {
		t.Fatal(err)
	}
	if a.codec != "PCMA" || !strings.Contains(string(toCaller), "RTP/AVP 8 101") {
		t.Fatalf("codec %s, answer to the caller:\n%s", a.codec, toCaller)
	}
	if a.legB.Stats().SRTP != "" {
		t.Fatal("the second (rtp) trunk's leg is still SRTP")
	}
}

// TestLateOfferTrunkPolicy: without an offer from the caller, the
// carrier's offer is read with the trunk's policy: an srtp trunk's plain
// offer is refused.
func TestLateOfferTrunkPolicy(t *testing.T) {
	m := testManager(t, PolicyOptional)
	carrier := newPeer(t)
	a, err := m.newAnchor(nil, slog.New(slog.DiscardHandler), "alice", "0044123")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.offerToTrunk(TrunkTarget{Trunk: "s", Media: store.TrunkMediaSRTP}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.lateOffer(carrier.sdp("RTP/AVP")); err == nil {
		t.Fatal("a plain offer from an srtp trunk was taken")
	}
}
