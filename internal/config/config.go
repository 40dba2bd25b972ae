package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a kaopu server.
type Config struct {
	// Data is the directory holding the database, certificates and secrets.
	Data string `yaml:"data"`
	// DB is the store DSN; empty means SQLite at <data>/kaopu.db.
	DB string `yaml:"db"`
	// Domain is the SIP domain and digest realm; empty means the host name.
	Domain string `yaml:"domain"`
	// PublicIP is the address put in SDP and Contact toward phones.
	PublicIP string `yaml:"public_ip"`

	SIP       SIP       `yaml:"sip"`
	HTTP      HTTP      `yaml:"http"`
	RTP       RTP       `yaml:"rtp"`
	Registrar Registrar `yaml:"registrar"`
	Calls     Calls     `yaml:"calls"`
	Auth      Auth      `yaml:"auth"`
	Security  Security  `yaml:"security"`
	Cards     Cards     `yaml:"cards"`
	Voicemail Voicemail `yaml:"voicemail"`
	Log       Log       `yaml:"log"`
}

// Voicemail configures users' mailboxes (kaopu voicemail ...).
type Voicemail struct {
	// Access is the number a registered user dials to hear the messages
	// of their own mailbox.
	Access string `yaml:"access"`
	// Deposit is the prefix that leaves a message directly: Deposit
	// followed by an extension or user name (*98102).
	Deposit string `yaml:"deposit"`
	// MaxMessage is the longest message; MaxSilence of silence ends one.
	MaxMessage Duration `yaml:"max_message"`
	MaxSilence Duration `yaml:"max_silence"`
}

func (v Voicemail) validate() error {
	for key, n := range map[string]string{"voicemail.access": v.Access, "voicemail.deposit": v.Deposit} {
		if n == "" || strings.Trim(n, "0123456789*#") != "" {
			return &Error{key, n, "a dialable number (digits, *, #)"}
		}
	}
	if v.Access == v.Deposit {
		return &Error{"voicemail.deposit", v.Deposit, "a number other than voicemail.access"}
	}
	if d := v.MaxMessage.D(); d < 5*time.Second || d > 30*time.Minute {
		return &Error{"voicemail.max_message", d.String(), "5s..30m"}
	}
	if d := v.MaxSilence.D(); d < time.Second || d > 5*time.Minute {
		return &Error{"voicemail.max_silence", d.String(), "1s..5m"}
	}
	return nil
}

// Cards configures the prepaid calling-card service (kaopu card ...).
type Cards struct {
	// Access lists the numbers that reach the service. Until inbound DIDs
	// route to it from trunks, they are numbers our authenticated users
	// dial; the service charges the card, not the user.
	Access []string `yaml:"access"`
	// The number a card caller dials becomes E.164 with the numbering
	// of calls.country_code, calls.national_prefix and
	// calls.international_prefix.
	// MaxAttempts wrong card numbers or PINs end a call; each counts
	// toward the source's ban like an authentication failure.
	MaxAttempts int `yaml:"max_attempts"`
	// DigitTimeout is how long the caller may pause between digits.
	DigitTimeout Duration `yaml:"digit_timeout"`
}

// SIP configures the SIP listeners.
type SIP struct {
	Listen    string `yaml:"listen"`     // UDP and TCP
	TLSListen string `yaml:"tls_listen"` // TLS; "" or "off" disables
	TLSCert   string `yaml:"tls_cert"`   // PEM file; empty: generated in data dir
	TLSKey    string `yaml:"tls_key"`
	// MaxMessageSize bounds a SIP message in bytes; larger ones are refused.
	MaxMessageSize int `yaml:"max_message_size"`
	// MaxHeaders bounds the header fields of one message.
	MaxHeaders int `yaml:"max_headers"`
	// MaxVia bounds the Via entries of one request.
	MaxVia int `yaml:"max_via"`
	// MaxPendingPerSource bounds the server transactions one source IP
	// holds at once (answered ones linger a few seconds for
	// retransmissions); over it, its requests are dropped. 0: no cap.
	MaxPendingPerSource int `yaml:"max_pending_per_source"`
	// MaxCallsSetupPerSource bounds the calls one source IP has being set
	// up (INVITEs not yet answered); over it, new INVITEs get 503. 0: no
	// cap.
	MaxCallsSetupPerSource int `yaml:"max_calls_setup_per_source"`
	// MaxConnectionsPerSource bounds the TCP and TLS connections one
	// source IP holds open; more are closed as they are accepted. 0: no
	// cap.
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
	// MessageTimeout closes a TCP or TLS connection that has not delivered
	// its first message this long after it was accepted, or a message it
	// has begun this long after its first byte (half-open and slow
	// connections).
	MessageTimeout Duration `yaml:"message_timeout"`
	// IdleTimeout closes a TCP or TLS connection that has sent nothing,
	// not even a keepalive, for this long between messages; keep it above
	// registrar.max_expires, or phones registered over TCP without
	// keepalives become unreachable. 0: never.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// HTTP configures the web listener.
type HTTP struct {
	Listen string `yaml:"listen"`
}

// RTP configures the media port range.
type RTP struct {
	Ports string `yaml:"ports"` // "LOW-HIGH"
}

// Registrar configures REGISTER handling (RFC 3261 §10).
type Registrar struct {
	MinExpires     int `yaml:"min_expires"`
	MaxExpires     int `yaml:"max_expires"`
	DefaultExpires int `yaml:"default_expires"`
	MaxContacts    int `yaml:"max_contacts"`
	// NATKeepalive is how often a UDP contact that registered from another
	// address than its Contact (it is behind NAT) is sent an OPTIONS to keep
	// its NAT binding open; 0 disables.
	NATKeepalive Duration `yaml:"nat_keepalive"`
}

// Calls configures call handling.
type Calls struct {
	// NoAnswerTimeout ends a call nobody answers with 480.
	NoAnswerTimeout Duration `yaml:"no_answer_timeout"`
	// VoicemailAfter is how long a user whose mailbox is on rings before
	// the call goes to voicemail; no_answer_timeout when that is shorter.
	VoicemailAfter Duration `yaml:"voicemail_after"`
	// RTPTimeout hangs up an answered call when no RTP has flowed either
	// way for this long (dead phones, lost BYEs); 0 disables.
	RTPTimeout Duration `yaml:"rtp_timeout"`
	// MinSessionExpires is the shortest session-timer interval accepted
	// (RFC 4028 Min-SE); shorter requests get 422.
	MinSessionExpires Duration `yaml:"min_session_expires"`
	// MaxConcurrent caps each user's calls in progress; MaxPerMinute the
	// calls a user starts within a minute (fraud limits; 0: no cap).
	MaxConcurrent int `yaml:"max_concurrent"`
	MaxPerMinute  int `yaml:"max_per_minute"`
	// Federation is which calls cross between our SIP domain and others:
	// "inbound" (callers of other domains reach our users without an
	// account), "outbound" (our authenticated users call
	// sip:user@other.domain, located with DNS), "both" or "off".
	Federation string `yaml:"federation"`
	// Destination classes of dialed numbers (after removing visual
	// separators): a call to one needs the user's permission (`kaopu user
	// set NAME --allow international,premium`). Emergency numbers are
	// never refused by a class or a cap.
	InternationalPrefixes []string `yaml:"international_prefixes"`
	PremiumPrefixes       []string `yaml:"premium_prefixes"`
	EmergencyNumbers      []string `yaml:"emergency_numbers"`
	// Numbering of the country the server dials from: numbers dialed with
	// the national prefix (0...) become +CountryCode..., with the
	// international prefix (00...) become +... (E.164), before they go to
	// a trunk. Without a country code only international numbers are
	// normalized.
	CountryCode         string `yaml:"country_code"`
	NationalPrefix      string `yaml:"national_prefix"`
	InternationalPrefix string `yaml:"international_prefix"`
}

// FederationInbound reports whether calls from other domains are accepted.
func (c Calls) FederationInbound() bool { return c.Federation == "inbound" || c.Federation == "both" }

// FederationOutbound reports whether our users may call other domains.
func (c Calls) FederationOutbound() bool { return c.Federation == "outbound" || c.Federation == "both" }

// Auth configures digest authentication.
type Auth struct {
	// Algorithms offered in challenges, most preferred first: SHA-256, MD5.
	Algorithms []string `yaml:"algorithms"`
	NonceTTL   Duration `yaml:"nonce_ttl"`
}

// Security configures brute-force bans.
type Security struct {
	BanFailures int      `yaml:"ban_failures"`
	BanWindow   Duration `yaml:"ban_window"`
	BanTime     Duration `yaml:"ban_time"`
	BanAction   string   `yaml:"ban_action"` // drop | reject
	// Trusted lists networks (CIDR) that are never banned nor limited.
	Trusted []string `yaml:"trusted"`
	// RateLimit is the requests per second one source IP may send (every
	// method, every transport), RateBurst how many at once; over it,
	// requests are dropped. 0 turns the limit off.
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// FloodBanAfter bans a source once this many of its requests have
	// been dropped by the rate limit within a minute; 0 never bans.
	FloodBanAfter int `yaml:"flood_ban_after"`
	// Signalling is over which transports authenticated users may send
	// requests: "any", or "tls_required" (TLS or WSS only; others get 403
	// after a successful authentication).
	Signalling string `yaml:"signalling"`
	// MediaEncryption is the SRTP policy: optional (SRTP with phones that
	// offer or accept it) or required (a call whose offer has no usable
	// SRTP gets 488; callees are offered RTP/SAVP).
	MediaEncryption string `yaml:"media_encryption"`
}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Data: "./kaopu-data",
		SIP: SIP{
			Listen:         ":5060",
			TLSListen:      ":5061",
			MaxMessageSize: 16384,
			MaxHeaders:     100,
			MaxVia:         20,

			MaxPendingPerSource:     256,
			MaxCallsSetupPerSource:  32,
			MaxConnectionsPerSource: 64,
			MessageTimeout:          Duration(10 * time.Second),
			IdleTimeout:             Duration(time.Hour + 5*time.Minute),
		},
		HTTP: HTTP{Listen: ":8080"},
		RTP:  RTP{Ports: "10000-20000"},
		Registrar: Registrar{
			MinExpires:     60,
			MaxExpires:     3600,
			DefaultExpires: 3600,
			MaxContacts:    10,
			NATKeepalive:   Duration(30 * time.Second),
		},
		Cards: Cards{MaxAttempts: 3,
			DigitTimeout: Duration(8 * time.Second)},
		Voicemail: Voicemail{Access: "*97", Deposit: "*98", MaxMessage: Duration(120 * time.Second),
			MaxSilence: Duration(10 * time.Second)},
		Calls: Calls{
			NoAnswerTimeout:   Duration(30 * time.Second),
			VoicemailAfter:    Duration(20 * time.Second),
			RTPTimeout:        Duration(60 * time.Second),
			MinSessionExpires: Duration(90 * time.Second),
			MaxConcurrent:     2,
			MaxPerMinute:      20,
			Federation:        "both",
			// 00 is the international prefix of most countries (ITU-T
			// E.164 recommends it), + is E.164 itself, 011 North America's.
			InternationalPrefixes: []string{"+", "00", "011"},
			// Premium-rate ranges of common numbering plans: 0900/0901/
			// 0906/0909 (much of Europe, UK 09), 1900 and 1976 (North America).
			PremiumPrefixes:     []string{"0900", "0901", "0906", "0909", "1900", "1976", "+1900", "+1976"},
			EmergencyNumbers:    []string{"112", "911", "999", "000", "110", "119"},
			NationalPrefix:      "0",
			InternationalPrefix: "00",
		},
		Auth: Auth{
			// MD5 alone by default: baresip 1.0 gives up on any SHA-256
			// challenge and sipp 3.6 answers only the first one; phones that
			// do RFC 8760 can be offered [SHA-256, MD5].
			Algorithms: []string{"MD5"},
			NonceTTL:   Duration(5 * time.Minute),
		},
		Security: Security{
			BanFailures:     10,
			BanWindow:       Duration(60 * time.Second),
			BanTime:         Duration(15 * time.Minute),
			BanAction:       "drop",
			RateLimit:       200,
			RateBurst:       400,
			FloodBanAfter:   2000,
			Signalling:      "any",
			MediaEncryption: "optional",
		},
		Log: Log{Format: "text", Level: "info"},
	}
}

// Load reads a YAML config file over the defaults. Unknown keys are errors.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := Decode(bytes.NewReader(b), &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Decode strictly decodes YAML from r into cfg.
func Decode(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Error is a validation error naming the key at fault.
type Error struct {
	Key     string
	Value   string
	Allowed string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s %q: allowed %s", e.Key, e.Value, e.Allowed)
}

// Validate checks every value and reports the first bad one by key.
func (c *Config) Validate() error {
	if c.Data == "" {
		return &Error{"data", c.Data, "a directory path"}
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "sqlite:") && !strings.HasPrefix(c.DB, "file:") &&
		!strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") &&
		!strings.HasSuffix(c.DB, ".db") {
		return &Error{"db", c.DB, "sqlite:PATH, a path ending in .db, or postgres://..."}
	}
	if err := c.Cards.validate(); err != nil {
		return err
	}
	if err := c.Voicemail.validate(); err != nil {
		return err
	}
	if c.Domain != "" && strings.ContainsAny(c.Domain, " \t\"@:;<>") {
		return &Error{"domain", c.Domain, "a host name or IP address"}
	}
	if c.PublicIP != "" {
		if _, err := netip.ParseAddr(c.PublicIP); err != nil {
			return &Error{"public_ip", c.PublicIP, "an IP address"}
		}
	}
	if err := checkAddr("sip.listen", c.SIP.Listen, false); err != nil {
		return err
	}
	if err := checkAddr("sip.tls_listen", c.SIP.TLSListen, true); err != nil {
		return err
	}
	if (c.SIP.TLSCert == "") != (c.SIP.TLSKey == "") {
		return &Error{"sip.tls_cert", c.SIP.TLSCert, "both sip.tls_cert and sip.tls_key, or neither"}
	}
	if c.SIP.MaxMessageSize < 1024 || c.SIP.MaxMessageSize > 65535 {
		return &Error{"sip.max_message_size", strconv.Itoa(c.SIP.MaxMessageSize), "1024..65535"}
	}
	if c.SIP.MaxHeaders < 10 || c.SIP.MaxHeaders > 1000 {
		return &Error{"sip.max_headers", strconv.Itoa(c.SIP.MaxHeaders), "10..1000"}
	}
	if c.SIP.MaxVia < 1 || c.SIP.MaxVia > 100 {
		return &Error{"sip.max_via", strconv.Itoa(c.SIP.MaxVia), "1..100"}
	}
	if n := c.SIP.MaxPendingPerSource; n < 0 || n > 1000000 {
		return &Error{"sip.max_pending_per_source", strconv.Itoa(n), "0 (no cap) .. 1000000"}
	}
	if n := c.SIP.MaxCallsSetupPerSource; n < 0 || n > 100000 {
		return &Error{"sip.max_calls_setup_per_source", strconv.Itoa(n), "0 (no cap) .. 100000"}
	}
	if n := c.SIP.MaxConnectionsPerSource; n < 0 || n > 100000 {
		return &Error{"sip.max_connections_per_source", strconv.Itoa(n), "0 (no cap) .. 100000"}
	}
	if d := c.SIP.MessageTimeout.D(); d < time.Second || d > 5*time.Minute {
		return &Error{"sip.message_timeout", d.String(), "1s..5m"}
	}
	if d := c.SIP.IdleTimeout.D(); d != 0 && (d < c.SIP.MessageTimeout.D() || d > 7*24*time.Hour) {
		return &Error{"sip.idle_timeout", d.String(), "0 (never) or sip.message_timeout..168h"}
	}
	if err := checkAddr("http.listen", c.HTTP.Listen, true); err != nil {
		return err
	}
	if _, _, err := c.RTP.Range(); err != nil {
		return &Error{"rtp.ports", c.RTP.Ports, "LOW-HIGH, even LOW, 1024 <= LOW < HIGH <= 65535"}
	}
	r := c.Registrar
	if r.MinExpires < 1 || r.MinExpires > 86400 {
		return &Error{"registrar.min_expires", strconv.Itoa(r.MinExpires), "1..86400 seconds"}
	}
	if r.MaxExpires < r.MinExpires || r.MaxExpires > 604800 {
		return &Error{"registrar.max_expires", strconv.Itoa(r.MaxExpires), "registrar.min_expires..604800 seconds"}
	}
	if r.DefaultExpires < r.MinExpires || r.DefaultExpires > r.MaxExpires {
		return &Error{"registrar.default_expires", strconv.Itoa(r.DefaultExpires), "registrar.min_expires..registrar.max_expires"}
	}
	if r.MaxContacts < 1 || r.MaxContacts > 100 {
		return &Error{"registrar.max_contacts", strconv.Itoa(r.MaxContacts), "1..100"}
	}
	if d := r.NATKeepalive.D(); d != 0 && (d < 5*time.Second || d > time.Hour) {
		return &Error{"registrar.nat_keepalive", d.String(), "0 (off) or 5s..1h"}
	}
	if d := c.Calls.NoAnswerTimeout.D(); d < time.Second || d > 10*time.Minute {
		return &Error{"calls.no_answer_timeout", d.String(), "1s..10m"}
	}
	// A voicemail_after longer than no_answer_timeout is cut to it (the
	// call layer), so lowering only no_answer_timeout stays valid.
	if d := c.Calls.VoicemailAfter.D(); d < time.Second || d > 10*time.Minute {
		return &Error{"calls.voicemail_after", d.String(), "1s..10m"}
	}
	if d := c.Calls.RTPTimeout.D(); d != 0 && (d < time.Second || d > time.Hour) {
		return &Error{"calls.rtp_timeout", d.String(), "0 (off) or 1s..1h"}
	}
	if d := c.Calls.MinSessionExpires.D(); d < time.Second || d > 24*time.Hour {
		return &Error{"calls.min_session_expires", d.String(), "1s..24h (RFC 4028: phones ask for 90s or more)"}
	}
	if n := c.Calls.MaxConcurrent; n < 0 || n > 100000 {
		return &Error{"calls.max_concurrent", strconv.Itoa(n), "0 (no cap) .. 100000"}
	}
	if n := c.Calls.MaxPerMinute; n < 0 || n > 1000000 {
		return &Error{"calls.max_per_minute", strconv.Itoa(n), "0 (no cap) .. 1000000"}
	}
	switch c.Calls.Federation {
	case "both", "inbound", "outbound", "off":
	default:
		return &Error{"calls.federation", c.Calls.Federation, "both, inbound, outbound or off"}
	}
	for _, l := range []struct {
		key    string
		list   []string
		prefix bool // a bare "+" is a prefix, not a number
	}{{"calls.international_prefixes", c.Calls.InternationalPrefixes, true}, {"calls.premium_prefixes", c.Calls.PremiumPrefixes, true},
		{"calls.emergency_numbers", c.Calls.EmergencyNumbers, false},
		{"calls.country_code", nonEmpty(c.Calls.CountryCode), false},
		{"calls.national_prefix", nonEmpty(c.Calls.NationalPrefix), false},
		{"calls.international_prefix", nonEmpty(c.Calls.InternationalPrefix), false}} {
		for _, p := range l.list {
			if !dialString(p) && !(l.prefix && p == "+") {
				return &Error{l.key, p, "digits, optionally after a leading +"}
			}
		}
	}
	if len(c.Auth.Algorithms) == 0 {
		return &Error{"auth.algorithms", "", "a non-empty list of SHA-256, MD5"}
	}
	seen := map[string]bool{}
	for _, a := range c.Auth.Algorithms {
		if a != "SHA-256" && a != "MD5" || seen[a] {
			return &Error{"auth.algorithms", strings.Join(c.Auth.Algorithms, ","), "SHA-256 and/or MD5, each once"}
		}
		seen[a] = true
	}
	if d := c.Auth.NonceTTL.D(); d < 10*time.Second || d > 24*time.Hour {
		return &Error{"auth.nonce_ttl", d.String(), "10s..24h"}
	}
	s := c.Security
	if s.RateLimit < 0 || s.RateLimit > 1e6 {
		return &Error{"security.rate_limit", strconv.FormatFloat(s.RateLimit, 'g', -1, 64), "0 (off) .. 1000000 requests/s"}
	}
	if s.RateBurst < 0 || s.RateBurst > 1e7 {
		return &Error{"security.rate_burst", strconv.Itoa(s.RateBurst), "0 .. 10000000"}
	}
	if s.FloodBanAfter < 0 {
		return &Error{"security.flood_ban_after", strconv.Itoa(s.FloodBanAfter), "0 (never) or more"}
	}
	if s.Signalling != "any" && s.Signalling != "tls_required" {
		return &Error{"security.signalling", s.Signalling, "any or tls_required"}
	}
	if s.BanFailures < 1 || s.BanFailures > 100000 {
		return &Error{"security.ban_failures", strconv.Itoa(s.BanFailures), "1..100000"}
	}
	if s.BanWindow.D() < time.Second {
		return &Error{"security.ban_window", s.BanWindow.D().String(), "a duration of at least 1s"}
	}
	if s.BanTime.D() < time.Second {
		return &Error{"security.ban_time", s.BanTime.D().String(), "a duration of at least 1s"}
	}
	if s.BanAction != "drop" && s.BanAction != "reject" {
		return &Error{"security.ban_action", s.BanAction, "drop or reject"}
	}
	if s.MediaEncryption != "optional" && s.MediaEncryption != "required" {
		return &Error{"security.media_encryption", s.MediaEncryption, "optional or required"}
	}
	for _, n := range s.Trusted {
		if _, err := netip.ParsePrefix(n); err != nil {
			if _, err := netip.ParseAddr(n); err != nil {
				return &Error{"security.trusted", n, "CIDR networks or IP addresses"}
			}
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return &Error{"log.format", c.Log.Format, "text or json"}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &Error{"log.level", c.Log.Level, "debug, info, warn or error"}
	}
	return nil
}

// Range parses the RTP port range.
func (r RTP) Range() (low, high int, err error) {
	lo, hi, ok := strings.Cut(r.Ports, "-")
	if !ok {
		return 0, 0, errors.New("no dash")
	}
	low, err1 := strconv.Atoi(strings.TrimSpace(lo))
	high, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || low < 1024 || high > 65535 || low >= high || low%2 != 0 {
		return 0, 0, errors.New("bad range")
	}
	return low, high, nil
}

// dialString reports whether s is digits with an optional leading +.
func dialString(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// TrustedPrefixes returns security.trusted as prefixes (Validate first).
func (s Security) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range s.Trusted {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(n); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

func checkAddr(key, v string, allowOff bool) error {
	if allowOff && (v == "" || v == "off") {
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err == nil {
		var p int
		p, err = strconv.Atoi(port)
		if err == nil && (p < 0 || p > 65535) {
			err = errors.New("port out of range")
		}
		if err == nil && host != "" {
			if _, perr := netip.ParseAddr(host); perr != nil && strings.ContainsAny(host, " /") {
				err = perr
			}
		}
	}
	if err != nil {
		allowed := "HOST:PORT (e.g. :5060 or 127.0.0.1:5060)"
		if allowOff {
			allowed += " or off"
		}
		return &Error{key, v, allowed}
	}
	return nil
}

// Duration is a time.Duration that reads "60s", "15m" or plain seconds in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts a Go duration string or an integer number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 60s", n.Line)
	}
	if secs, err := strconv.Atoi(n.Value); err == nil {
		*d = Duration(time.Duration(secs) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 60s or 15m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// nonEmpty is s as a list of one, none when empty.
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func (c Cards) validate() error {
	for _, n := range c.Access {
		if n == "" || strings.Trim(n, "0123456789*#+") != "" {
			return &Error{"cards.access", n, "dialable numbers (digits, *, #, +)"}
		}
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 10 {
		return &Error{"cards.max_attempts", strconv.Itoa(c.MaxAttempts), "1..10"}
	}
	if d := c.DigitTimeout.D(); d < time.Second || d > time.Minute {
		return &Error{"cards.digit_timeout", d.String(), "1s..1m"}
	}
	return nil
}
