package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const banHelp = `kaopu ban list [--all]
       kaopu ban del IP
       kaopu ban add IP [--for DURATION] [--reason TEXT]`

// ban lists, lifts and adds source bans in the store; a running server
// picks the change up within a second.
func (e *env) ban(args []string) int {
	sub, rest, code, ok := e.subcommand("ban", banHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("ban "+sub, banHelp)
	all := fs.Bool("all", false, "list also bans that ended (kept a day: they lengthen the next ban)")
	dur := fs.Duration("for", time.Hour, "how long the ban lasts")
	reason := fs.String("reason", "banned by an operator", "why (shown by ban list)")
	pos, code, ok := e.positional("ban", sub, banHelp, fs, rest, map[string]int{"list": 0, "del": 1, "add": 1})
	if !ok {
		return code
	}
	var ip netip.Addr
	if len(pos) == 1 {
		var err error
		if ip, err = netip.ParseAddr(pos[0]); err != nil {
			fmt.Fprintf(e.stderr, "kaopu ban %s: %q is not an IP address\n", sub, pos[0])
			return exitUsage
		}
		ip = ip.Unmap()
	}
	if sub == "add" && *dur <= 0 {
		fmt.Fprintf(e.stderr, "kaopu ban add: --for must be positive\n")
		return exitUsage
	}
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu ban: config: %v\n", err)
		return exitUsage
	}
	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu ban: %v\n", err)
		return exitFail
	}
	defer st.Close()
	now := time.Now()
	switch sub {
	case "list":
		bans, err := st.ListBans(e.ctx)
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu ban list: %v\n", err)
			return exitFail
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IP\tUNTIL\tLEFT\tOFFENCES\tREASON")
		for _, b := range bans {
			left := b.Until.Sub(now).Round(time.Second)
			if left <= 0 {
				if !*all {
					continue
				}
				left = 0
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", b.Addr, b.Until.UTC().Format(time.RFC3339), left, b.Offences, b.Reason)
		}
		tw.Flush()
	case "del":
		if err := st.DeleteBan(e.ctx, ip.String()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				fmt.Fprintf(e.stderr, "kaopu ban del: %s is not banned\n", ip)
			} else {
				fmt.Fprintf(e.stderr, "kaopu ban del: %v\n", err)
			}
			return exitFail
		}
		fmt.Fprintf(e.stdout, "lifted the ban of %s\n", ip)
	case "add":
		if trusted(cfg.Security.TrustedPrefixes(), ip) {
			fmt.Fprintf(e.stderr, "kaopu ban add: %s is in security.trusted and is never banned\n", ip)
			return exitFail
		}
		b := store.Ban{Addr: ip.String(), Until: now.Add(*dur), Reason: *reason, Offences: 1, Created: now}
		if err := st.PutBan(e.ctx, b); err != nil {
			fmt.Fprintf(e.stderr, "kaopu ban add: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "banned %s until %s\n", ip, b.Until.UTC().Format(time.RFC3339))
	}
	return exitOK
}

func trusted(nets []netip.Prefix, ip netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
