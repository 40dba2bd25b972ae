package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const cdrHelp = `kaopu cdr list [--from DATE] [--to DATE] [--limit N]
       kaopu cdr export --format csv|json [--from DATE] [--to DATE]

DATE is YYYY-MM-DD (a UTC day; --to includes that whole day) or an RFC 3339
time such as 2024-05-01T08:00:00+08:00 (--to is then exclusive). Records are
selected by start time; list shows the latest N (default 50, 0 for all).`

// defaultCDRLimit is how many records "cdr list" shows without --limit.
const defaultCDRLimit = 50

func (e *env) cdr(args []string) int {
	sub, rest, code, ok := e.subcommand("cdr", cdrHelp, args)
	if !ok {
		return code
	}
	if sub != "list" && sub != "export" {
		fmt.Fprintf(e.stderr, "kaopu cdr: unknown subcommand %q\nUsage: %s\n", sub, cdrHelp)
		return exitUsage
	}
	fs, c := e.flagSet("cdr "+sub, cdrHelp)
	from := fs.String("from", "", "first `DATE` (start time) to include")
	to := fs.String("to", "", "last `DATE` to include")
	limit := fs.Int("limit", defaultCDRLimit, "list: show the latest `N` records (0: all)")
	format := fs.String("format", "csv", "export: csv or json")
	pos, err := parse(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: unexpected argument %q\nUsage: %s\n", sub, pos[0], cdrHelp)
		return exitUsage
	}
	var f store.CDRFilter
	if f.From, err = parseDate(*from, false); err != nil {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: --from: %v\n", sub, err)
		return exitUsage
	}
	if f.To, err = parseDate(*to, true); err != nil {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: --to: %v\n", sub, err)
		return exitUsage
	}
	if *limit < 0 {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: --limit must be 0 or more\n", sub)
		return exitUsage
	}
	bad := ""
	fs.Visit(func(fl *flag.Flag) {
		if (sub == "list" && fl.Name == "format") || (sub == "export" && fl.Name == "limit") {
			bad = fl.Name
		}
	})
	if bad != "" {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: --%s does not apply\nUsage: %s\n", sub, bad, cdrHelp)
		return exitUsage
	}
	if sub == "export" && *format != "csv" && *format != "json" {
		fmt.Fprintf(e.stderr, "kaopu cdr export: --format must be csv or json, not %q\n", *format)
		return exitUsage
	}
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu cdr: config: %v\n", err)
		return exitUsage
	}
	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu cdr: %v\n", err)
		return exitFail
	}
	defer st.Close()

	if sub == "list" && *limit > 0 {
		f.Limit = *limit + 1 // one more tells whether some were left out
	}
	recs, err := st.ListCDRs(e.ctx, f)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: %v\n", sub, err)
		return exitFail
	}
	switch {
	case sub == "list":
		if *limit > 0 && len(recs) > *limit {
			recs = recs[len(recs)-*limit:]
			fmt.Fprintf(e.stderr, "showing the latest %d records; --limit 0 shows all\n", *limit)
		}
		err = printCDRs(e, recs)
	case *format == "json":
		err = cdr.WriteJSON(e.stdout, recs)
	default:
		err = cdr.WriteCSV(e.stdout, recs)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu cdr %s: %v\n", sub, err)
		return exitFail
	}
	return exitOK
}

// parseDate reads YYYY-MM-DD (UTC midnight; the next midnight when end is
// set, so that an end date includes its day) or an RFC 3339 time.
func parseDate(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", s)
	}
	return t, nil
}

func printCDRs(e *env, recs []store.CDR) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tCALLER\tCALLEE\tDIALED\tDISPOSITION\tCAUSE\tDURATION\tBILLSEC\tCODEC\tFLAGS")
	for _, c := range recs {
		disp, cause := c.Disposition, strconv.Itoa(c.Cause)
		if c.Active {
			disp = "ACTIVE"
		}
		if c.Cause == 0 {
			cause = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n",
			c.Start.UTC().Format(time.RFC3339), dash(c.Caller), dash(c.Callee), dash(c.Dialed),
			dash(disp), dash(cause), c.Duration, c.Billsec, dash(c.Codec), dash(c.Flags))
	}
	return tw.Flush()
}

// dash stands in for an empty table cell, so columns stay readable, and
// replaces control characters: caller IDs come from the network and must
// not move the cursor or recolour the admin's terminal.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
