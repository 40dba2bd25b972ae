package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/dialplan"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/trunk"
)

const trunkHelp = `kaopu trunk add NAME --address HOST[:PORT] [--transport auto|udp|tcp|tls]
                 [--tls-verify=true|false] [--tls-ca FILE]
                 [--auth ip|register] [--username U --password PW] [--networks CIDR,...]
                 [--channels N] [--codecs G722,PCMA] [--media rtp|srtp|best-effort]
                 [--caller-id NUMBER] [--pai]
                 [--privacy=false] [--number-format e164|digits|national]
                 [--qualify SECONDS] [--expires SECONDS] [--disabled]
       kaopu trunk set NAME [any flag of add; --enabled=true|false]
       kaopu trunk list
       kaopu trunk show NAME
       kaopu trunk del NAME`

const routeHelp = `kaopu route add NAME --pattern P --trunks t1,t2 [--strip N] [--prepend D] [--priority N]
       kaopu route list
       kaopu route del NAME`

const didHelp = `kaopu did add NUMBER --to USER_EXT_ROOM_GROUP_MENU_OR_voicemail:USER [--trunk NAME]
       kaopu did list
       kaopu did del NUMBER`

var trunkNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// trunkFlags are add's and set's flags.
type trunkFlags struct {
	address, transport, auth, username, password, networks, codecs, callerID, format, media, tlsCA string
	channels, qualify, expires                                                                     int
	pai, privacy, disabled, enabled, tlsVerify                                                     bool
}

func (f *trunkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.address, "address", "", "carrier `HOST[:PORT]` (IP or name); a name is located with DNS (RFC 3263: NAPTR with --transport auto, SRV without a port, then A/AAAA)")
	fs.StringVar(&f.transport, "transport", "", "auto (DNS NAPTR/SRV chooses), udp, tcp or tls (default: auto for a name without port, else udp)")
	fs.BoolVar(&f.tlsVerify, "tls-verify", true, "over TLS, verify the carrier's certificate against the address's host name (--tls-verify=false: accept any, logged as a warning)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM `FILE` of the CA certificates the carrier's certificate must chain to (stored; default: the system's)")
	fs.StringVar(&f.auth, "auth", "ip", "ip (the carrier knows our address) or register (we register with --username/--password)")
	fs.StringVar(&f.username, "username", "", "user name for the carrier's digest challenges (and registration)")
	fs.StringVar(&f.password, "password", "", "password for the carrier's digest challenges (stored; never logged)")
	fs.StringVar(&f.networks, "networks", "", "comma-separated `CIDRs` the carrier's calls come from (default: the address's own)")
	fs.IntVar(&f.channels, "channels", 0, "calls at once through the trunk, both ways (0: no limit)")
	fs.StringVar(&f.codecs, "codecs", "", "codecs offered to the carrier, in this order, of those the caller offers: comma-separated `NAMES` (PCMU, PCMA, G722, opus; empty: the caller's)")
	fs.StringVar(&f.media, "media", store.TrunkMediaRTP, "media encryption toward the carrier: rtp (plain), srtp (SDES, required) or best-effort (SDES offered, plain accepted)")
	fs.StringVar(&f.callerID, "caller-id", "", "`NUMBER` presented when the caller has no DID of its own")
	fs.BoolVar(&f.pai, "pai", false, "send P-Asserted-Identity with the caller's number")
	fs.BoolVar(&f.privacy, "privacy", true, "honour the caller's Privacy: id (anonymous From)")
	fs.StringVar(&f.format, "number-format", "e164", "called number in the Request-URI: e164 (+4420...), digits (4420...) or national")
	fs.IntVar(&f.qualify, "qualify", 30, "OPTIONS health check every `SECONDS` (0: none; the trunk counts as up)")
	fs.IntVar(&f.expires, "expires", 3600, "registration interval asked for, `SECONDS`")
	fs.BoolVar(&f.disabled, "disabled", false, "add the trunk disabled")
	fs.BoolVar(&f.enabled, "enabled", true, "set: enable or disable the trunk")
}

// apply copies the flags given on the command line onto t (all of them
// for add) and checks the result.
func (f *trunkFlags) apply(t *store.Trunk, set map[string]bool, all bool) error {
	has := func(n string) bool { return all || set[n] }
	if has("address") {
		t.Address = f.address
	}
	if has("transport") {
		t.Transport = strings.ToLower(f.transport)
		if t.Transport == "" {
			t.Transport = trunk.DefaultTransport(t.Address)
		}
	}
	if has("tls-verify") {
		t.TLSVerify = f.tlsVerify
	}
	if set["tls-ca"] {
		if f.tlsCA == "" {
			t.TLSCA = "" // --tls-ca "": back to the system's roots
		} else {
			pem, err := os.ReadFile(f.tlsCA)
			if err != nil {
				return fmt.Errorf("--tls-ca: %w", err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				return fmt.Errorf("--tls-ca %s: no PEM certificate in it", f.tlsCA)
			}
			t.TLSCA = string(pem)
		}
	}
	if has("auth") {
		t.Auth = strings.ToLower(f.auth)
	}
	if has("username") {
		t.Username = f.username
	}
	if has("password") {
		t.Password = f.password
	}
	if has("networks") {
		t.Networks = nil
		for _, n := range strings.Split(f.networks, ",") {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			if _, err := netip.ParsePrefix(n); err != nil {
				if _, err2 := netip.ParseAddr(n); err2 != nil {
					return fmt.Errorf("--networks: %q is not a CIDR or an IP address", n)
				}
			}
			t.Networks = append(t.Networks, n)
		}
	}
	if has("channels") {
		t.Channels = f.channels
	}
	if has("codecs") {
		t.Codecs = nil
		for _, c := range strings.Split(f.codecs, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			name, ok := trunk.CodecName(c)
			if !ok {
				return fmt.Errorf("--codecs: %q is not a codec the relay carries (%s)", c, strings.Join(trunk.Codecs(), ", "))
			}
			t.Codecs = append(t.Codecs, name)
		}
	}
	if has("media") {
		t.Media = strings.ToLower(f.media)
	}
	if t.Media == "" {
		t.Media = store.TrunkMediaRTP
	}
	if has("caller-id") {
		t.CallerID = f.callerID
	}
	if has("pai") {
		t.SendPAI = f.pai
	}
	if has("privacy") {
		t.HonourPrivacy = f.privacy
	}
	if has("number-format") {
		t.NumberFormat = f.format
	}
	if has("qualify") {
		t.Qualify = time.Duration(f.qualify) * time.Second
	}
	if has("expires") {
		t.Expires = time.Duration(f.expires) * time.Second
	}
	if all {
		t.Enabled = !f.disabled
	} else if set["enabled"] {
		t.Enabled = f.enabled
	} else if set["disabled"] {
		t.Enabled = !f.disabled
	}
	switch {
	case t.Address == "":
		return errors.New("--address is required")
	case trunk.ValidAddress(t.Address) != nil:
		return fmt.Errorf("--address: %v", trunk.ValidAddress(t.Address))
	case t.Transport != "udp" && t.Transport != "tcp" && t.Transport != "tls" && t.Transport != trunk.TransportAuto:
		return fmt.Errorf("--transport %q: want auto, udp, tcp or tls", t.Transport)
	case t.Auth != store.TrunkAuthIP && t.Auth != store.TrunkAuthRegister:
		return fmt.Errorf("--auth %q: want ip or register", t.Auth)
	case t.Auth == store.TrunkAuthRegister && (t.Username == "" || t.Password == ""):
		return errors.New("--auth register needs --username and --password")
	case t.Media != store.TrunkMediaRTP && t.Media != store.TrunkMediaSRTP && t.Media != store.TrunkMediaBestEffort:
		return fmt.Errorf("--media %q: want rtp, srtp or best-effort", t.Media)
	case t.Channels < 0:
		return errors.New("--channels must be 0 or more")
	case t.NumberFormat != "e164" && t.NumberFormat != "digits" && t.NumberFormat != "national":
		return fmt.Errorf("--number-format %q: want e164, digits or national", t.NumberFormat)
	case t.Qualify < 0 || t.Qualify > time.Hour:
		return errors.New("--qualify: 0 to 3600 seconds")
	case t.Expires < 60*time.Second || t.Expires > 24*time.Hour:
		return errors.New("--expires: 60 to 86400 seconds")
	}
	if t.CallerID != "" {
		if _, ok := dialplan.Clean(t.CallerID); !ok {
			return fmt.Errorf("--caller-id %q: not a phone number", t.CallerID)
		}
	}
	return nil
}

// openStore loads the config of a store command and opens the store.
func (e *env) openStore(cmd string, c *common, fs *flag.FlagSet) (*storeHandle, bool) {
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu %s: config: %v\n", cmd, err)
		return nil, false
	}
	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu %s: %v\n", cmd, err)
		return nil, false
	}
	return &storeHandle{Store: st, numbering: server.Numbering(cfg), apps: appNumbers(cfg)}, true
}

type storeHandle struct {
	store.Store
	numbering dialplan.Numbering
	apps      []string // numbers of media applications (appNumbers)
}

// isRoom reports whether number is a conference room's.
func (st *storeHandle) isRoom(ctx context.Context, number string) bool {
	_, err := st.GetConference(ctx, number)
	return err == nil
}

func (e *env) fail(cmd string, err error) int {
	fmt.Fprintf(e.stderr, "kaopu %s: %v\n", cmd, err)
	return exitFail
}

// trunk manages carriers; a running server picks changes up within a second.
func (e *env) trunk(args []string) int {
	sub, rest, code, ok := e.subcommand("trunk", trunkHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("trunk "+sub, trunkHelp)
	var f trunkFlags
	f.register(fs)
	pos, code, ok := e.positional("trunk", sub, trunkHelp, fs, rest, map[string]int{"add": 1, "set": 1, "list": 0, "show": 1, "del": 1})
	if !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	st, ok := e.openStore("trunk", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	cmd := "trunk " + sub
	switch sub {
	case "add":
		if !trunkNameRE.MatchString(pos[0]) {
			fmt.Fprintf(e.stderr, "kaopu trunk add: name %q: 1-64 letters, digits, . _ -\n", pos[0])
			return exitUsage
		}
		t := store.Trunk{Name: pos[0], Created: time.Now()}
		if err := f.apply(&t, set, true); err != nil {
			fmt.Fprintf(e.stderr, "kaopu trunk add: %v\n", err)
			return exitUsage
		}
		if err := st.AddTrunk(e.ctx, t); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "added trunk %s (%s over %s, auth %s)\n", t.Name, t.Address, t.Transport, t.Auth)
	case "set":
		t, err := st.GetTrunk(e.ctx, pos[0])
		if err != nil {
			return e.fail(cmd, err)
		}
		if err := f.apply(&t, set, false); err != nil {
			fmt.Fprintf(e.stderr, "kaopu trunk set: %v\n", err)
			return exitUsage
		}
		if err := st.UpdateTrunk(e.ctx, t); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "updated trunk %s\n", t.Name)
	case "list":
		ts, err := st.ListTrunks(e.ctx)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADDRESS\tTRANSPORT\tAUTH\tMEDIA\tCHANNELS\tENABLED")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", t.Name, t.Address, t.Transport, t.Auth, t.Media, limit(t.Channels), t.Enabled)
		}
		tw.Flush()
	case "show":
		t, err := st.GetTrunk(e.ctx, pos[0])
		if err != nil {
			return e.fail(cmd, err)
		}
		pw := ""
		if t.Password != "" {
			pw = "(set)" // never shown
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, kv := range [][2]string{
			{"name", t.Name}, {"address", t.Address}, {"transport", t.Transport}, {"auth", t.Auth},
			{"username", t.Username}, {"password", pw}, {"networks", strings.Join(t.Networks, ",")},
			{"channels", limit(t.Channels)}, {"codecs", strings.Join(t.Codecs, ",")}, {"media", t.Media}, {"caller_id", t.CallerID},
			{"send_pai", strconv.FormatBool(t.SendPAI)}, {"honour_privacy", strconv.FormatBool(t.HonourPrivacy)},
			{"number_format", t.NumberFormat}, {"qualify", t.Qualify.String()}, {"expires", t.Expires.String()},
			{"tls_verify", strconv.FormatBool(t.TLSVerify)}, {"tls_ca", caSummary(t.TLSCA)},
			{"enabled", strconv.FormatBool(t.Enabled)}, {"created", t.Created.UTC().Format(time.RFC3339)},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
		tw.Flush()
	case "del":
		if err := st.DeleteTrunk(e.ctx, pos[0]); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted trunk %s\n", pos[0])
	}
	return exitOK
}

// caSummary describes a trunk's CA bundle without printing it.
func caSummary(pem string) string {
	if pem == "" {
		return "(system roots)"
	}
	return fmt.Sprintf("(%d certificates)", strings.Count(pem, "-----BEGIN CERTIFICATE-----"))
}

func limit(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

// route manages outbound routes.
func (e *env) route(args []string) int {
	sub, rest, code, ok := e.subcommand("route", routeHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("route "+sub, routeHelp)
	pattern := fs.String("pattern", "", "dialed-number `PATTERN`: a prefix (0044) or _ pattern with X Z N [1-5] . ! (_0[1-9]X.)")
	trunks := fs.String("trunks", "", "comma-separated trunk `NAMES`, tried in order")
	strip := fs.Int("strip", 0, "digits removed from the front of the dialed number")
	prepend := fs.String("prepend", "", "`DIGITS` added in front after stripping")
	priority := fs.Int("priority", 100, "lower is tried first")
	pos, code, ok := e.positional("route", sub, routeHelp, fs, rest, map[string]int{"add": 1, "list": 0, "del": 1})
	if !ok {
		return code
	}
	var r store.Route
	if sub == "add" {
		r = store.Route{Name: pos[0], Pattern: *pattern, Strip: *strip, Prepend: *prepend, Priority: *priority, Created: time.Now()}
		for _, t := range strings.Split(*trunks, ",") {
			if t = strings.TrimSpace(t); t != "" {
				r.Trunks = append(r.Trunks, t)
			}
		}
		var bad string
		if _, err := dialplan.Compile(r.Pattern); err != nil {
			bad = fmt.Sprintf("--pattern: %v", err)
		}
		switch {
		case !trunkNameRE.MatchString(r.Name):
			bad = fmt.Sprintf("name %q: 1-64 letters, digits, . _ -", r.Name)
		case r.Pattern == "":
			bad = "--pattern is required"
		case len(r.Trunks) == 0:
			bad = "--trunks is required"
		case r.Strip < 0:
			bad = "--strip must be 0 or more"
		}
		if p := strings.TrimPrefix(r.Prepend, "+"); r.Prepend != "" && (p == "" || strings.Trim(p, "0123456789*#") != "") {
			bad = fmt.Sprintf("--prepend %q: digits", r.Prepend)
		}
		if bad != "" {
			fmt.Fprintf(e.stderr, "kaopu route add: %s\n", bad)
			return exitUsage
		}
	}
	st, ok := e.openStore("route", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	cmd := "route " + sub
	switch sub {
	case "add":
		if err := st.AddRoute(e.ctx, r); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "added route %s: %s -> %s\n", r.Name, r.Pattern, strings.Join(r.Trunks, ", "))
	case "list":
		rs, err := st.ListRoutes(e.ctx)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRIORITY\tNAME\tPATTERN\tTRUNKS\tSTRIP\tPREPEND")
		for _, r := range rs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", r.Priority, r.Name, r.Pattern, strings.Join(r.Trunks, ","), r.Strip, r.Prepend)
		}
		tw.Flush()
	case "del":
		if err := st.DeleteRoute(e.ctx, pos[0]); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted route %s\n", pos[0])
	}
	return exitOK
}

// did manages inbound numbers.
func (e *env) did(args []string) int {
	sub, rest, code, ok := e.subcommand("did", didHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("did "+sub, didHelp)
	to := fs.String("to", "", "user name or extension the number rings, a conference room (kaopu conf add), a ring group's or IVR menu's number, a number of cards.access (the calling-card service), voicemail:USER (leave USER a message) or voicemail: (mailbox and PIN, to listen)")
	viaTrunk := fs.String("trunk", "", "accept the number only from this trunk (default: any trunk)")
	pos, code, ok := e.positional("did", sub, didHelp, fs, rest, map[string]int{"add": 1, "list": 0, "del": 1})
	if !ok {
		return code
	}
	if sub == "add" && *to == "" {
		fmt.Fprintf(e.stderr, "kaopu did add: --to is required\n")
		return exitUsage
	}
	st, ok := e.openStore("did", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	cmd := "did " + sub
	var number string
	if len(pos) == 1 {
		var valid bool
		if number, valid = trunk.NormalizeDID(st.numbering, pos[0]); !valid {
			fmt.Fprintf(e.stderr, "kaopu %s: %q is not a phone number\n", cmd, pos[0])
			return exitUsage
		}
	}
	switch sub {
	case "add":
		// A user or an extension, a conference room, a ring group, an
		// IVR menu, or the calling-card service's access number.
		if kind, err := destination(e.ctx, st, *to); err != nil {
			return e.fail(cmd, err)
		} else if kind == "" {
			return e.fail(cmd, fmt.Errorf("--to %s: no such user, extension, conference room, group, menu, mailbox or application number", *to))
		}
		d := store.DID{Number: number, Target: *to, Trunk: *viaTrunk, Created: time.Now()}
		if err := st.AddDID(e.ctx, d); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "added DID %s -> %s\n", d.Number, d.Target)
	case "list":
		ds, err := st.ListDIDs(e.ctx)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NUMBER\tTO\tTRUNK")
		for _, d := range ds {
			tr := d.Trunk
			if tr == "" {
				tr = "(any)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Number, d.Target, tr)
		}
		tw.Flush()
	case "del":
		if err := st.DeleteDID(e.ctx, number); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted DID %s\n", number)
	}
	return exitOK
}
