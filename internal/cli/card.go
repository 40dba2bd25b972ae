package cli

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/callingcard"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const cardHelp = `kaopu card generate --count N --value AMOUNT [--currency EUR] [--expires DATE]
                      [--prefix DIGITS] [--digits 12] [--pin-digits 6] [--plan DECK]
       kaopu card import FILE.csv   (number,pin,value[,currency[,expires[,plan]]])
       kaopu card list
       kaopu card block NUMBER | unblock NUMBER`

// card manages prepaid calling cards. generate prints each new card's PIN
// once, as CSV; the store keeps only a hash of it, and list never shows it.
func (e *env) card(args []string) int {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintf(e.stderr, "Usage: %s\n", cardHelp)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	fs := newFlagSet("card "+sub, e.stderr, cardHelp)
	var c common
	c.register(fs)
	count := fs.Int("count", 0, "how many cards to generate")
	value := fs.String("value", "", "each card's opening balance, a decimal AMOUNT such as 10 or 4.50")
	currency := fs.String("currency", "EUR", "ISO 4217 currency of the balance")
	expires := fs.String("expires", "", "last DATE the cards can be used (YYYY-MM-DD, UTC) or an RFC 3339 time; none by default")
	prefix := fs.String("prefix", "", "DIGITS every card number starts with")
	digits := fs.Int("digits", 12, "card number length, prefix included (6-20)")
	pinDigits := fs.Int("pin-digits", 6, "PIN length (4-12)")
	plan := fs.String("plan", "", "rate deck the cards' calls are rated with (default: the server's)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	want := map[string]int{"generate": 0, "import": 1, "list": 0, "block": 1, "unblock": 1}
	n, ok := want[sub]
	if !ok {
		fmt.Fprintf(e.stderr, "kaopu card: unknown subcommand %q\nUsage: %s\n", sub, cardHelp)
		return exitUsage
	}
	if len(pos) != n {
		fmt.Fprintf(e.stderr, "kaopu card %s: want %d argument(s), got %d\nUsage: %s\n", sub, n, len(pos), cardHelp)
		return exitUsage
	}
	var gen callingcard.GenerateOptions
	if sub == "generate" {
		gen = callingcard.GenerateOptions{Count: *count, Prefix: *prefix, Digits: *digits, PINDigits: *pinDigits, Plan: *plan}
		if gen.Value, err = parseAmount(*value); err == nil {
			gen.Currency, err = parseCurrency(*currency)
		}
		if err == nil {
			gen.Expires, err = parseDate(*expires, true)
		}
		if err == nil && *count < 1 {
			err = errors.New("--count must be at least 1")
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu card generate: %v\n", err)
			return exitUsage
		}
	}
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu card: config: %v\n", err)
		return exitUsage
	}
	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu card: %v\n", err)
		return exitFail
	}
	defer st.Close()
	switch sub {
	case "generate":
		gen.Taken = func(number string) bool {
			_, err := st.GetCard(e.ctx, number)
			return err == nil
		}
		cards, err := callingcard.Generate(gen, time.Now())
		if err == nil {
			err = st.AddCards(e.ctx, cardsOf(cards))
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu card generate: %v\n", err)
			return exitFail
		}
		w := csv.NewWriter(e.stdout)
		w.Write([]string{"number", "pin", "value", "currency", "expires"})
		for _, g := range cards {
			w.Write([]string{g.Number, g.PIN, formatAmount(g.Balance), g.Currency, formatExpiry(g.Expires)})
		}
		w.Flush()
		fmt.Fprintf(e.stderr, "%d cards added; their PINs are shown only this once\n", len(cards))
	case "import":
		cards, err := readCardsCSV(pos[0])
		if err == nil {
			err = st.AddCards(e.ctx, cardsOf(cards))
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu card import: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "imported %d cards\n", len(cards))
	case "list":
		cards, err := st.ListCards(e.ctx)
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu card list: %v\n", err)
			return exitFail
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NUMBER\tBALANCE\tCURRENCY\tEXPIRES\tSTATE\tPLAN\tLAST USED")
		for _, c := range cards {
			used := "-"
			if !c.Used.IsZero() {
				used = c.Used.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Number, formatAmount(c.Balance), c.Currency,
				dash(formatExpiry(c.Expires)), c.State, dash(c.Plan), used)
		}
		tw.Flush()
	case "block", "unblock":
		state := map[string]string{"block": callingcard.StateBlocked, "unblock": callingcard.StateActive}[sub]
		if err := st.SetCardState(e.ctx, pos[0], state); err != nil {
			fmt.Fprintf(e.stderr, "kaopu card %s: %v\n", sub, err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "card %s is %s\n", pos[0], state)
	}
	return exitOK
}

func cardsOf(gs []callingcard.Generated) []store.Card {
	out := make([]store.Card, len(gs))
	for i, g := range gs {
		out[i] = g.Card
	}
	return out
}

func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// readCardsCSV reads number,pin,value[,currency[,expires[,plan]]] rows; a
// first row whose first field is "number" is a header. The whole file is
// checked before anything is stored.
func readCardsCSV(path string) ([]callingcard.Generated, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var out []callingcard.Generated
	now := time.Now()
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if line == 1 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "number") {
			continue
		}
		if len(rec) < 3 || len(rec) > 6 {
			return nil, fmt.Errorf("line %d: want number,pin,value[,currency[,expires[,plan]]]", line)
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		g := callingcard.Generated{PIN: rec[1], Card: store.Card{Number: rec[0], Currency: "EUR", State: callingcard.StateActive, Created: now}}
		if err := callingcard.CheckNumber(g.Number); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if err := callingcard.CheckPINFormat(g.PIN); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if g.Balance, err = parseAmount(rec[2]); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(rec) > 3 && rec[3] != "" {
			if g.Currency, err = parseCurrency(rec[3]); err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
		}
		if len(rec) > 4 {
			if g.Expires, err = parseDate(rec[4], true); err != nil {
				return nil, fmt.Errorf("line %d: expires: %w", line, err)
			}
		}
		if len(rec) > 5 {
			g.Plan = rec[5]
		}
		if g.PINHash, err = callingcard.HashPIN(g.Number, g.PIN); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		return nil, errors.New("no cards in the file")
	}
	return out, nil
}

// parseAmount reads a non-negative decimal amount with at most 6
// decimals into micro-units.
func parseAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if s == "" || strings.Trim(whole+frac, "0123456789") != "" || len(frac) > 6 || len(whole) > 12 || whole+frac == "" {
		return 0, fmt.Errorf("amount %q: want a decimal such as 10 or 4.50 (at most 6 decimals)", s)
	}
	w, _ := strconv.ParseInt("0"+whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return w*1_000_000 + f, nil
}

// formatAmount writes micro-units with at least two decimals.
func formatAmount(m int64) string {
	s := fmt.Sprintf("%d.%06d", m/1_000_000, m%1_000_000)
	s = strings.TrimRight(s, "0")
	if i := strings.IndexByte(s, '.'); len(s)-i-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-i-1))
	}
	return s
}

func parseCurrency(s string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if len(c) != 3 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", fmt.Errorf("currency %q: want a three-letter code such as EUR", s)
	}
	return c, nil
}
