package cli

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/money"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const accountHelp = `kaopu account add NAME --prepaid|--postpaid [--credit-limit X] [--plan DECK] [--currency EUR] [--balance X]
       kaopu account set NAME [--prepaid|--postpaid] [--credit-limit X] [--plan DECK]
       kaopu account credit NAME AMOUNT [--reason TEXT]   (a negative AMOUNT debits)
       kaopu account list
       kaopu account show NAME [--ledger N]

Amounts are exact decimals in the account's currency. A prepaid account
spends its balance; a postpaid one may go down to minus its credit limit.
Users are attached with: kaopu user set USER --account NAME.`

func (e *env) account(args []string) int {
	sub, rest, code, ok := e.subcommand("account", accountHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("account "+sub, accountHelp)
	prepaid := fs.Bool("prepaid", false, "add/set: a prepaid account")
	postpaid := fs.Bool("postpaid", false, "add/set: a postpaid account")
	limit := fs.String("credit-limit", "0", "add/set: postpaid credit limit `X`")
	plan := fs.String("plan", "", "add/set: the rate `DECK` its calls are rated with")
	currency := fs.String("currency", "EUR", "add: ISO 4217 currency")
	opening := fs.String("balance", "0", "add: opening balance `X` (recorded in the ledger)")
	reason := fs.String("reason", "credit", "credit: why (kept in the ledger)")
	ledger := fs.Int("ledger", 10, "show: the latest `N` ledger rows (0: all)")
	if sub == "credit" {
		// A negative AMOUNT is not a flag: move it behind "--".
		var others, neg []string
		for _, a := range rest {
			if _, err := money.Parse(a); err == nil && strings.HasPrefix(a, "-") {
				neg = append(neg, a)
			} else {
				others = append(others, a)
			}
		}
		if len(neg) > 0 {
			rest = append(append(others, "--"), neg...)
		}
	}
	pos, code, ok := e.positional("account", sub, accountHelp, fs, rest, map[string]int{"add": 1, "set": 1, "credit": 2, "list": 0, "show": 1})
	if !ok {
		return code
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "kaopu account %s: "+format+"\n", append([]any{sub}, a...)...)
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *prepaid && *postpaid {
		return usage("--prepaid and --postpaid exclude each other")
	}
	if sub == "add" && !*prepaid && !*postpaid {
		return usage("--prepaid or --postpaid is required")
	}
	creditLimit, err := money.Parse(*limit)
	if err != nil || creditLimit < 0 {
		return usage("--credit-limit: want an amount >= 0")
	}
	openBal, err := money.Parse(*opening)
	if err != nil {
		return usage("--balance: %v", err)
	}
	cur, err := money.ParseCurrency(*currency)
	if err != nil {
		return usage("--currency: %v", err)
	}
	var amount money.Amount
	if sub == "credit" {
		if amount, err = money.Parse(pos[1]); err != nil || amount == 0 {
			return usage("AMOUNT %q: want a decimal amount other than 0", pos[1])
		}
	}
	if sub == "add" || sub == "set" {
		if pos[0] == "" || strings.ContainsFunc(pos[0], func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return usage("account name %q: no spaces or control characters", pos[0])
		}
	}
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu account: config: %v\n", err)
		return exitUsage
	}
	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu account: %v\n", err)
		return exitFail
	}
	defer st.Close()
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "kaopu account %s: %v\n", sub, oneLine(err.Error()))
		return exitFail
	}
	checkPlan := func(a store.Account) error {
		if a.Plan == "" {
			return nil
		}
		d, err := st.GetDeck(e.ctx, a.Plan)
		if err != nil {
			return fmt.Errorf("--plan: %w (import it first: kaopu rate import %s FILE.csv)", err, a.Plan)
		}
		if d.Currency != a.Currency {
			return fmt.Errorf("--plan: deck %s is in %s, the account in %s", d.Name, d.Currency, a.Currency)
		}
		return nil
	}
	now := time.Now()
	switch sub {
	case "add":
		a := store.Account{Name: pos[0], Type: store.Prepaid, Balance: openBal, CreditLimit: creditLimit, Plan: *plan, Currency: cur, Created: now}
		if *postpaid {
			a.Type = store.Postpaid
		}
		if err := checkPlan(a); err != nil {
			return fail(err)
		}
		if err := st.AddAccount(e.ctx, a); err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "added %s account %s (%s, balance %s%s)\n", a.Type, a.Name, a.Currency, a.Balance.Format(2), planNote(a.Plan))
	case "set":
		a, err := st.GetAccount(e.ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		if *prepaid {
			a.Type = store.Prepaid
		}
		if *postpaid {
			a.Type = store.Postpaid
		}
		if set["credit-limit"] {
			a.CreditLimit = creditLimit
		}
		if set["plan"] {
			a.Plan = *plan
		}
		if err := checkPlan(a); err != nil {
			return fail(err)
		}
		if err := st.UpdateAccount(e.ctx, a); err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "account %s: %s, credit limit %s%s\n", a.Name, a.Type, a.CreditLimit.Format(2), planNote(a.Plan))
	case "credit":
		le, err := st.PostLedger(e.ctx, store.LedgerEntry{At: now, Account: pos[0], Amount: amount, Reason: *reason})
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "account %s: %s, balance %s\n", le.Account, signed(amount), le.BalanceAfter.Format(2))
	case "list":
		as, err := st.ListAccounts(e.ctx)
		if err != nil {
			return fail(err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tTYPE\tBALANCE\tCREDIT LIMIT\tCURRENCY\tPLAN")
		for _, a := range as {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Type, a.Balance.Format(2), a.CreditLimit.Format(2), a.Currency, dash(a.Plan))
		}
		tw.Flush()
	case "show":
		a, err := st.GetAccount(e.ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		users, err := st.AccountUsers(e.ctx, a.Name)
		if err != nil {
			return fail(err)
		}
		entries, err := st.ListLedger(e.ctx, a.Name, *ledger)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(e.stdout, "account  %s\ntype     %s\nbalance  %s %s\n", a.Name, a.Type, a.Balance.Format(2), a.Currency)
		if a.Type == store.Postpaid {
			fmt.Fprintf(e.stdout, "credit   %s %s\n", a.CreditLimit.Format(2), a.Currency)
		}
		fmt.Fprintf(e.stdout, "plan     %s\nusers    %s\n\n", dash(a.Plan), dash(strings.Join(users, ", ")))
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tAMOUNT\tBALANCE\tREASON\tCDR")
		for _, le := range entries {
			cdrID := "-"
			if le.CDRID != 0 {
				cdrID = fmt.Sprint(le.CDRID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", le.At.UTC().Format(time.RFC3339), signed(le.Amount), le.BalanceAfter.Format(2), dash(le.Reason), cdrID)
		}
		tw.Flush()
	}
	return exitOK
}

func planNote(plan string) string {
	if plan == "" {
		return ", no plan"
	}
	return ", plan " + plan
}

// signed writes an amount with its sign: +5.00, -0.0125.
func signed(a money.Amount) string {
	if a >= 0 {
		return "+" + a.Format(2)
	}
	return a.Format(2)
}
