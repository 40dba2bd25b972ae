package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/pbx"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const groupHelp = `kaopu group add NUMBER --members alice,bob,102 [--strategy ringall|hunt]
                 [--ring-time 20s] [--fallback NUMBER]
       kaopu group list
       kaopu group del NUMBER`

const ivrHelp = `kaopu ivr add NUMBER --prompt FILE.wav [--option 1=alice --option 2=600 ...]
               [--timeout 5s] [--retries 3] [--default NUMBER] [--extension-dialing]
       kaopu ivr list
       kaopu ivr del NUMBER`

// pbxNumber is what a group's or a menu's number looks like: digits.
var pbxNumber = regexp.MustCompile(`^[0-9]{1,15}$`)

// isUser reports whether login is a user name or an extension.
func isUser(ctx context.Context, st *storeHandle, login string) (bool, error) {
	if _, err := st.GetUser(ctx, login); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	users, err := st.ListUsers(ctx)
	if err != nil {
		return false, err
	}
	for _, u := range users {
		if u.Ext != "" && u.Ext == login {
			return true, nil
		}
	}
	return false, nil
}

// destination says what a number of ours is: "user", "group", "menu",
// "conference room", "mailbox" (voicemail:USER) or "application"
// (cards.access, voicemail.access); "" when it is none.
func destination(ctx context.Context, st *storeHandle, number string) (string, error) {
	if user, ok := strings.CutPrefix(number, server.VoicemailTarget); ok {
		// voicemail: alone is the mailbox login; voicemail:USER a user's
		// mailbox (on or off: kaopu voicemail on may come later).
		if user == "" {
			return "mailbox", nil
		}
		if ok, err := isUser(ctx, st, user); err != nil || !ok {
			return "", err
		}
		return "mailbox", nil
	}
	if ok, err := isUser(ctx, st, number); err != nil || ok {
		return map[bool]string{true: "user"}[ok], err
	}
	if slices.Contains(st.apps, number) {
		return "application", nil
	}
	if st.isRoom(ctx, number) {
		return "conference room", nil
	}
	groups, err := st.ListGroups(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		if g.Number == number {
			return "group", nil
		}
	}
	menus, err := st.ListMenus(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range menus {
		if m.Number == number {
			return "menu", nil
		}
	}
	return "", nil
}

// checkNewNumber refuses a group's or menu's number that is not digits or
// is a user's, an extension or an application's.
func checkNewNumber(ctx context.Context, st *storeHandle, number string) error {
	if !pbxNumber.MatchString(number) {
		return fmt.Errorf("%q: a number is 1 to 15 digits", number)
	}
	kind, err := destination(ctx, st, number)
	if err != nil {
		return err
	}
	if kind != "" {
		return fmt.Errorf("%s is already a %s's number: %w", number, kind, store.ErrExists)
	}
	return nil
}

// numbersInUse maps the numbers of ours that are not users to what they
// are: "application" (cards.access), "conference room", "group" or
// "menu".
func numbersInUse(ctx context.Context, st store.Store, apps []string) (map[string]string, error) {
	in := map[string]string{}
	for _, n := range apps {
		in[n] = "application"
	}
	rooms, err := st.ListConferences(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rooms {
		in[r.Number] = "conference room"
	}
	groups, err := st.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		in[g.Number] = "group"
	}
	menus, err := st.ListMenus(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range menus {
		in[m.Number] = "menu"
	}
	return in, nil
}

// numberFree refuses a user's name or extension that is already the
// number of something else of ours (that would take its calls); in is
// numbersInUse's map.
func numberFree(in map[string]string, logins ...string) error {
	for _, l := range logins {
		if kind := in[l]; l != "" && kind != "" {
			return fmt.Errorf("%s is already a %s's number: %w", l, kind, store.ErrExists)
		}
	}
	return nil
}

// checkDestination refuses a destination number that is none of ours
// (self is the number being added, which may name itself).
func checkDestination(ctx context.Context, st *storeHandle, flagName, number, self string) error {
	if number == self {
		return nil
	}
	kind, err := destination(ctx, st, number)
	if err != nil {
		return err
	}
	if kind == "" {
		return fmt.Errorf("%s %s: no such user, extension, group, menu, conference room or application number", flagName, number)
	}
	return nil
}

// group manages ring groups; a running server picks changes up within a
// second.
func (e *env) group(args []string) int {
	sub, rest, code, ok := e.subcommand("group", groupHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("group "+sub, groupHelp)
	members := fs.String("members", "", "comma-separated `USERS` (names or extensions), in hunt order")
	strategy := fs.String("strategy", store.StrategyRingAll, "ringall (everyone at once) or hunt (one at a time, in order)")
	ringTime := fs.Duration("ring-time", 20*time.Second, "how long the group rings (ringall) or each member rings (hunt)")
	fallback := fs.String("fallback", "", "`NUMBER` an unanswered call goes to: a user, group, menu or application (default: 480)")
	pos, code, ok := e.positional("group", sub, groupHelp, fs, rest, map[string]int{"add": 1, "list": 0, "del": 1})
	if !ok {
		return code
	}
	cmd := "group " + sub
	var list []string
	if sub == "add" {
		for _, m := range strings.Split(*members, ",") {
			if m = strings.TrimSpace(m); m != "" {
				list = append(list, m)
			}
		}
		switch {
		case len(list) == 0:
			fmt.Fprintf(e.stderr, "kaopu group add: --members is required\n")
			return exitUsage
		case *strategy != store.StrategyRingAll && *strategy != store.StrategyHunt:
			fmt.Fprintf(e.stderr, "kaopu group add: --strategy %q: want ringall or hunt\n", *strategy)
			return exitUsage
		case *ringTime < time.Second || *ringTime > 10*time.Minute:
			fmt.Fprintf(e.stderr, "kaopu group add: --ring-time %v: want 1s to 10m\n", *ringTime)
			return exitUsage
		}
	}
	st, ok := e.openStore("group", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	switch sub {
	case "add":
		number := pos[0]
		if err := checkNewNumber(e.ctx, st, number); err != nil {
			return e.fail(cmd, err)
		}
		for _, m := range list {
			if ok, err := isUser(e.ctx, st, m); err != nil {
				return e.fail(cmd, err)
			} else if !ok {
				return e.fail(cmd, fmt.Errorf("--members %s: no such user or extension", m))
			}
		}
		if *fallback != "" {
			if *fallback == number {
				return e.fail(cmd, fmt.Errorf("--fallback %s: the group itself", number))
			}
			if err := checkDestination(e.ctx, st, "--fallback", *fallback, ""); err != nil {
				return e.fail(cmd, err)
			}
		}
		g := store.Group{Number: number, Members: list, Strategy: *strategy, RingTime: ringTime.Round(time.Second),
			Fallback: *fallback, Created: time.Now()}
		if err := st.AddGroup(e.ctx, g); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "added ring group %s (%s): %s\n", g.Number, g.Strategy, strings.Join(g.Members, ", "))
	case "list":
		gs, err := st.ListGroups(e.ctx)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NUMBER\tSTRATEGY\tRING\tMEMBERS\tFALLBACK")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", g.Number, g.Strategy, g.RingTime, strings.Join(g.Members, ","), dash(g.Fallback))
		}
		tw.Flush()
	case "del":
		if err := st.DeleteGroup(e.ctx, pos[0]); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted ring group %s\n", pos[0])
	}
	return exitOK
}

// optionFlags collects repeated --option KEY=NUMBER.
type optionFlags map[string]string

func (o optionFlags) String() string { return fmt.Sprint(map[string]string(o)) }

func (o optionFlags) Set(v string) error {
	k, dest, ok := strings.Cut(v, "=")
	if !ok || len(k) != 1 || !strings.Contains("0123456789*#", k) || dest == "" {
		return fmt.Errorf("%q: want KEY=NUMBER with KEY one of 0-9, * and #", v)
	}
	o[k] = dest
	return nil
}

// ivr manages IVR menus; a running server picks changes up within a
// second.
func (e *env) ivr(args []string) int {
	sub, rest, code, ok := e.subcommand("ivr", ivrHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("ivr "+sub, ivrHelp)
	prompt := fs.String("prompt", "", "the menu's prompt, a WAV `FILE` of 16-bit PCM (converted to 8 kHz mono)")
	options := optionFlags{}
	fs.Var(options, "option", "`KEY=NUMBER`: the key sends the caller to a user, extension, group, menu or application number (repeat)")
	timeout := fs.Duration("timeout", pbx.DefaultTimeout, "wait for a key after the prompt")
	retries := fs.Int("retries", pbx.DefaultRetries, "times the menu plays again after an invalid key or none")
	def := fs.String("default", "", "`NUMBER` the caller goes to once the retries are used up (default: hang up)")
	extDial := fs.Bool("extension-dialing", false, "let callers dial a user, extension or group number directly (# or a 2 s pause ends it)")
	pos, code, ok := e.positional("ivr", sub, ivrHelp, fs, rest, map[string]int{"add": 1, "list": 0, "del": 1})
	if !ok {
		return code
	}
	cmd := "ivr " + sub
	var wav []byte
	var length time.Duration
	if sub == "add" {
		switch {
		case *prompt == "":
			fmt.Fprintf(e.stderr, "kaopu ivr add: --prompt is required\n")
			return exitUsage
		case *timeout < time.Second || *timeout > time.Minute:
			fmt.Fprintf(e.stderr, "kaopu ivr add: --timeout %v: want 1s to 1m\n", *timeout)
			return exitUsage
		case *retries < 0 || *retries > 10:
			fmt.Fprintf(e.stderr, "kaopu ivr add: --retries %d: want 0 to 10\n", *retries)
			return exitUsage
		}
		raw, err := os.ReadFile(*prompt)
		if err != nil {
			return e.fail(cmd, fmt.Errorf("--prompt: %w", err))
		}
		if wav, length, err = pbx.ConvertPrompt(raw); err != nil {
			return e.fail(cmd, fmt.Errorf("--prompt %s: %w", *prompt, err))
		}
	}
	st, ok := e.openStore("ivr", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	switch sub {
	case "add":
		number := pos[0]
		if err := checkNewNumber(e.ctx, st, number); err != nil {
			return e.fail(cmd, err)
		}
		for k, dest := range options {
			if err := checkDestination(e.ctx, st, "--option "+k, dest, number); err != nil {
				return e.fail(cmd, err)
			}
		}
		if *def != "" {
			if err := checkDestination(e.ctx, st, "--default", *def, ""); err != nil {
				return e.fail(cmd, err)
			}
		}
		m := store.Menu{Number: number, Prompt: wav, Options: options, Timeout: *timeout, Retries: *retries,
			Default: *def, ExtensionDialing: *extDial, Created: time.Now()}
		if err := st.AddMenu(e.ctx, m); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "added IVR menu %s (prompt %v, %d option(s))\n", number, length.Round(100*time.Millisecond), len(options))
	case "list":
		ms, err := st.ListMenus(e.ctx)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NUMBER\tOPTIONS\tTIMEOUT\tRETRIES\tDEFAULT\tEXTENSIONS")
		for _, m := range ms {
			keys := make([]string, 0, len(m.Options))
			for k, v := range m.Options {
				keys = append(keys, k+"="+v)
			}
			sort.Strings(keys)
			ext := "no"
			if m.ExtensionDialing {
				ext = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\n", m.Number, dash(strings.Join(keys, " ")), m.Timeout, m.Retries, dash(m.Default), ext)
		}
		tw.Flush()
	case "del":
		if err := st.DeleteMenu(e.ctx, pos[0]); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted IVR menu %s\n", pos[0])
	}
	return exitOK
}
