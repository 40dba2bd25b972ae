package cli

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/callingcard"
	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const cardHelp = `kaopu card generate --count N --value AMOUNT --plan DECK [--currency EUR] [--expires DATE]
                      [--prefix DIGITS] [--digits 12] [--pin-digits 6]
       kaopu card import FILE.csv [--plan DECK] [--currency EUR]
                      (rows: number,pin,value[,currency[,expires[,plan]]])
       kaopu card list
       kaopu card block NUMBER | unblock NUMBER`

// card manages prepaid calling cards. A card is a prepaid account of its
// own (card-NUMBER: balance, currency, rate deck, ledger) with a PIN.
// generate prints each new card's PIN once, as CSV; the store keeps only a
// hash of it, and list never shows it.
func (e *env) card(args []string) int {
	sub, rest, code, ok := e.subcommand("card", cardHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("card "+sub, cardHelp)
	count := fs.Int("count", 0, "how many cards to generate")
	value := fs.String("value", "", "each card's opening balance, a decimal AMOUNT such as 10 or 4.50")
	currency := fs.String("currency", "EUR", "ISO 4217 currency of the balance")
	expires := fs.String("expires", "", "last DATE the cards can be used (YYYY-MM-DD, UTC) or an RFC 3339 time; none by default")
	prefix := fs.String("prefix", "", "DIGITS every card number starts with")
	digits := fs.Int("digits", 12, "card number length, prefix included (6-20)")
	pinDigits := fs.Int("pin-digits", 6, "PIN length (4-12)")
	plan := fs.String("plan", "", "rate DECK the cards' calls are rated with (kaopu rate import); required unless every imported row names one")
	pos, code, ok := e.positional("card", sub, cardHelp, fs, rest, map[string]int{"generate": 0, "import": 1, "list": 0, "block": 1, "unblock": 1})
	if !ok {
		return code
	}
	var err error
	var gen callingcard.GenerateOptions
	if sub == "generate" {
		gen = callingcard.GenerateOptions{Count: *count, Prefix: *prefix, Digits: *digits, PINDigits: *pinDigits, Plan: *plan}
		if gen.Value, err = money.Parse(*value); err == nil && gen.Value < 0 {
			err = errors.New("--value must not be negative")
		}
		if err == nil {
			gen.Currency, err = money.ParseCurrency(*currency)
		}
		if err == nil && *plan == "" {
			err = errors.New("--plan is required: the rate deck the cards' calls are rated with")
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
			err = checkPlans(e, st, cards)
		}
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
			w.Write([]string{g.Number, g.PIN, g.Balance.Format(2), g.Currency, formatExpiry(g.Expires)})
		}
		w.Flush()
		fmt.Fprintf(e.stderr, "%d cards added; their PINs are shown only this once\n", len(cards))
	case "import":
		cur, err := money.ParseCurrency(*currency)
		var cards []callingcard.Generated
		if err == nil {
			cards, err = readCardsCSV(pos[0], cur, *plan)
		}
		if err == nil {
			err = checkPlans(e, st, cards)
		}
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
		fmt.Fprintln(tw, "NUMBER\tBALANCE\tCURRENCY\tEXPIRES\tSTATE\tPLAN\tACCOUNT")
		for _, c := range cards {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Number, c.Balance.Format(2), c.Currency,
				dash(formatExpiry(c.Expires)), c.State, dash(c.Plan), c.Account)
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
func readCardsCSV(path, currency, plan string) ([]callingcard.Generated, error) {
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
		g := callingcard.Generated{PIN: rec[1], Card: store.Card{Number: rec[0], Account: store.CardAccount(rec[0]), Currency: currency,
			Plan: plan, State: callingcard.StateActive, Created: now}}
		if err := callingcard.CheckNumber(g.Number); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if err := callingcard.CheckPINFormat(g.PIN); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if g.Balance, err = money.Parse(rec[2]); err != nil || g.Balance < 0 {
			return nil, fmt.Errorf("line %d: value %q: want a decimal amount such as 10 or 4.50", line, rec[2])
		}
		if len(rec) > 3 && rec[3] != "" {
			if g.Currency, err = money.ParseCurrency(rec[3]); err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
		}
		if len(rec) > 4 {
			if g.Expires, err = parseDate(rec[4], true); err != nil {
				return nil, fmt.Errorf("line %d: expires: %w", line, err)
			}
		}
		if len(rec) > 5 && rec[5] != "" {
			g.Plan = rec[5]
		}
		if g.Plan == "" {
			return nil, fmt.Errorf("line %d: no rate deck: give --plan or a plan column", line)
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

// checkPlans makes sure each card's rate deck exists, in the card's
// currency (billing refuses a call whose account and deck currencies
// differ).
func checkPlans(e *env, st interface {
	GetDeck(ctx context.Context, name string) (store.RateDeck, error)
}, cards []callingcard.Generated) error {
	for _, c := range cards {
		d, err := st.GetDeck(e.ctx, c.Plan)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("card %s: no rate deck %q (kaopu rate import)", c.Number, c.Plan)
		}
		if err != nil {
			return err
		}
		if d.Currency != c.Currency {
			return fmt.Errorf("card %s in %s, rate deck %s in %s", c.Number, c.Currency, d.Name, d.Currency)
		}
	}
	return nil
}
