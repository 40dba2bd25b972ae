package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/rating"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const rateHelp = `kaopu rate import DECK FILE.csv [--currency EUR] [--replace]
       kaopu rate list [DECK] [--prefix P] [--limit N]
       kaopu rate lookup DECK NUMBER [--at TIME]
       kaopu rate del DECK

FILE.csv lines: prefix,destination,rate per minute,connect fee,initial
increment,subsequent increment[,effective from] — e.g. 4915,Germany
mobile,0.10,0.05,30,6,2025-01-01. A header line is optional; amounts are
exact decimals; effective from is YYYY-MM-DD (UTC) or RFC 3339. "-" reads
stdin. Import adds to the deck (a row with the same prefix and effective
from replaces the old one); --replace empties the deck first. A running
server uses the new rates within a second.`

func (e *env) rate(args []string) int {
	sub, rest, code, ok := e.subcommand("rate", rateHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("rate "+sub, rateHelp)
	currency := fs.String("currency", "EUR", "import: the deck's currency (ISO 4217)")
	replace := fs.Bool("replace", false, "import: drop the deck's old rates first")
	prefix := fs.String("prefix", "", "list: only prefixes starting with `P`")
	limit := fs.Int("limit", 100, "list: at most `N` rows (0: all)")
	at := fs.String("at", "", "lookup: rate in effect at `TIME` (YYYY-MM-DD or RFC 3339; default now)")
	pos, err := parse(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	want := map[string][2]int{"import": {2, 2}, "list": {0, 1}, "lookup": {2, 2}, "del": {1, 1}}
	n, ok := want[sub]
	if !ok {
		fmt.Fprintf(e.stderr, "kaopu rate: unknown subcommand %q\nUsage: %s\n", sub, rateHelp)
		return exitUsage
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		fmt.Fprintf(e.stderr, "kaopu rate %s: wrong number of arguments\nUsage: %s\n", sub, rateHelp)
		return exitUsage
	}
	cur, err := money.ParseCurrency(*currency)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu rate %s: --currency: %v\n", sub, err)
		return exitUsage
	}
	when := time.Now()
	if *at != "" {
		if when, err = rating.ParseEffective(*at); err != nil {
			fmt.Fprintf(e.stderr, "kaopu rate %s: --at: %v\n", sub, err)
			return exitUsage
		}
	}
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu rate: config: %v\n", err)
		return exitUsage
	}
	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu rate: %v\n", err)
		return exitFail
	}
	defer st.Close()
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "kaopu rate %s: %v\n", sub, oneLine(err.Error()))
		return exitFail
	}
	switch sub {
	case "import":
		in := e.stdin
		if pos[1] != "-" {
			f, err := os.Open(pos[1])
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			in = f
		}
		rows, err := rating.ParseCSV(in)
		if err != nil {
			return fail(err)
		}
		if len(rows) == 0 {
			return fail(fmt.Errorf("no rates in %s", pos[1]))
		}
		if err := st.ImportRates(e.ctx, store.RateDeck{Name: pos[0], Currency: cur, Created: time.Now()}, rows, *replace); err != nil {
			return fail(err)
		}
		d, err := st.GetDeck(e.ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "imported %d rates into deck %s (%s, %d rates in all)\n", len(rows), d.Name, d.Currency, d.Rates)
	case "list":
		if len(pos) == 0 {
			decks, err := st.ListDecks(e.ctx)
			if err != nil {
				return fail(err)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DECK\tCURRENCY\tRATES\tCREATED")
			for _, d := range decks {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", d.Name, d.Currency, d.Rates, d.Created.UTC().Format(time.RFC3339))
			}
			tw.Flush()
			return exitOK
		}
		d, err := st.GetDeck(e.ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		p := *prefix
		if p != "" {
			if p, err = rating.ParsePrefix(p); err != nil {
				return fail(err)
			}
		}
		rows, err := st.ListRates(e.ctx, d.Name, p, *limit)
		if err != nil {
			return fail(err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "PREFIX\tDESTINATION\tRATE/MIN (%s)\tCONNECT\tINCREMENTS\tEFFECTIVE\n", d.Currency)
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.Prefix, dash(r.Destination), r.PerMinute.Format(2), r.ConnectFee.Format(2),
				r.Initial, r.Increment, effective(r.EffectiveFrom))
		}
		tw.Flush()
		if *limit > 0 && len(rows) == *limit {
			fmt.Fprintf(e.stderr, "(first %d rows; --limit 0 shows all)\n", *limit)
		}
	case "lookup":
		d, err := st.GetDeck(e.ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		var rows []store.Rate
		if err := st.EachRate(e.ctx, d.Name, func(r store.Rate) error { rows = append(rows, r); return nil }); err != nil {
			return fail(err)
		}
		deck, err := rating.NewDeck(d.Name, d.Currency, rows)
		if err != nil {
			return fail(err)
		}
		r, ok := deck.Lookup(pos[1], when)
		if !ok {
			fmt.Fprintf(e.stderr, "kaopu rate lookup: no rate for %s in deck %s\n", dash(pos[1]), d.Name)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "prefix %s  %s  %s %s/min  connect %s  increments %d/%d  effective %s\n",
			r.Prefix, dash(r.Destination), r.PerMinute.Format(2), d.Currency, r.ConnectFee.Format(2), r.Initial, r.Increment, effective(r.EffectiveFrom))
		for _, secs := range []int{1, 30, 60, 61, 300} {
			billed, cost, err := rating.Cost(r, secs)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(e.stdout, "  %4d s -> billed %4d s, cost %s %s\n", secs, billed, cost.Format(2), d.Currency)
		}
	case "del":
		if err := st.DeleteDeck(e.ctx, pos[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "deleted deck %s\n", pos[0])
	}
	return exitOK
}

func effective(t time.Time) string {
	if t.IsZero() {
		return "always"
	}
	return t.UTC().Format(time.RFC3339)
}
