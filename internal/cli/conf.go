package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

const confHelp = `kaopu conf add NUMBER [--pin DIGITS] [--max N] [--name TEXT]
       kaopu conf list
       kaopu conf del NUMBER`

// conf manages conference rooms; a running server picks changes up
// within a second. Dialing a room's number (or a DID whose --to is one)
// joins the room.
func (e *env) conf(args []string) int {
	sub, rest, code, ok := e.subcommand("conf", confHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("conf "+sub, confHelp)
	pin := fs.String("pin", "", "DIGITS (0-9, up to 12) every caller must enter, ended by #; none by default")
	maxN := fs.Int("max", 0, "participants at once; further callers get 486 Busy Here (0: no limit)")
	name := fs.String("name", "", "a name for the room, shown in lists and logs")
	pos, code, ok := e.positional("conf", sub, confHelp, fs, rest, map[string]int{"add": 1, "list": 0, "del": 1})
	if !ok {
		return code
	}
	if sub == "add" {
		var err error
		switch {
		case !digits(pos[0], 20):
			err = fmt.Errorf("%q: a room number is 1-20 digits", pos[0])
		case *pin != "" && !digits(*pin, 12):
			err = fmt.Errorf("--pin: 1-12 digits 0-9")
		case *maxN < 0:
			err = fmt.Errorf("--max %d: must be 0 (no limit) or more", *maxN)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu conf add: %v\n", err)
			return exitUsage
		}
	}
	st, ok := e.openStore("conf", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	cmd := "conf " + sub
	switch sub {
	case "add":
		number := pos[0]
		// The number must not already mean something else: a user or an
		// extension, a group, a menu, another room or an application.
		kind, err := destination(e.ctx, st, number)
		if err != nil {
			return e.fail(cmd, err)
		}
		if kind != "" {
			return e.fail(cmd, fmt.Errorf("%s is already a %s's number: %w", number, kind, store.ErrExists))
		}
		r := store.Conference{Number: number, Name: *name, PIN: *pin, Max: *maxN, Created: time.Now()}
		if err := st.AddConference(e.ctx, r); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "added conference room %s\n", number)
	case "list":
		rooms, err := st.ListConferences(e.ctx)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NUMBER\tNAME\tPIN\tMAX")
		for _, r := range rooms {
			pinSet, limit := "-", "-"
			if r.PIN != "" {
				pinSet = "yes"
			}
			if r.Max > 0 {
				limit = strconv.Itoa(r.Max)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Number, r.Name, pinSet, limit)
		}
		tw.Flush()
	case "del":
		if err := st.DeleteConference(e.ctx, pos[0]); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted conference room %s\n", pos[0])
	}
	return exitOK
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
