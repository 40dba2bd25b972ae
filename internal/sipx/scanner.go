package sipx

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// scanners are User-Agent markers of SIP scanning and brute-force tools
// (SIPVicious and its forks, sipcli, SIVuS, smap, ...). No phone sends
// them; a source that does is banned at its first request.
var scanners = []string{
	"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "sivus",
	"smap", "iwar", "vaxsipuseragent", "pplsip", "sundayddr", "nmap",
}

// Scanner names the scanner a request comes from, "" for none.
func Scanner(req *sip.Request) string {
	h := req.GetHeader("User-Agent")
	if h == nil {
		return ""
	}
	ua := strings.ToLower(h.Value())
	for _, s := range scanners {
		if strings.Contains(ua, s) {
			return s
		}
	}
	return ""
}
