package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/voicemail"
)

const voicemailHelp = `kaopu voicemail on USER [--pin DIGITS]
       kaopu voicemail off USER
       kaopu voicemail list [USER]
       kaopu voicemail export ID FILE.wav
       kaopu voicemail del ID

A user whose mailbox is on gets the calls nobody answers within
calls.voicemail_after (and those to a busy or unregistered phone) as voice
messages. The user dials voicemail.access (default *97) from their own phone
to listen; anyone dials voicemail.deposit + extension (default *98) to leave
a message directly. The PIN is asked only from elsewhere (a DID whose --to
is voicemail:); without one, only the user's own phone gets in.`

// appNumbers are the numbers of media applications in the config: the
// calling-card service's and voicemail access.
func appNumbers(cfg config.Config) []string {
	return append(append([]string(nil), cfg.Cards.Access...), cfg.Voicemail.Access)
}

// voicemail manages mailboxes and their messages; a running server uses
// the changes at the next call.
func (e *env) voicemail(args []string) int {
	sub, rest, code, ok := e.subcommand("voicemail", voicemailHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("voicemail "+sub, voicemailHelp)
	pin := fs.String("pin", "", "DIGITS (4-12) asked when the mailbox is reached from elsewhere than the user's phone (a DID); keeps the old PIN when omitted")
	// Not e.positional: list takes an optional argument (a range of
	// counts per subcommand).
	pos, err := parse(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	want := map[string][2]int{"on": {1, 1}, "off": {1, 1}, "list": {0, 1}, "export": {2, 2}, "del": {1, 1}}
	n, known := want[sub]
	if !known {
		fmt.Fprintf(e.stderr, "kaopu voicemail: unknown subcommand %q\nUsage: %s\n", sub, voicemailHelp)
		return exitUsage
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		fmt.Fprintf(e.stderr, "kaopu voicemail %s: want %d argument(s), got %d\nUsage: %s\n", sub, n[1], len(pos), voicemailHelp)
		return exitUsage
	}
	if *pin != "" && (sub != "on" || !voicemail.ValidPIN(*pin)) {
		fmt.Fprintf(e.stderr, "kaopu voicemail %s: --pin: 4 to 12 digits, with on\n", sub)
		return exitUsage
	}
	var id int64
	if sub == "export" || sub == "del" {
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil || id <= 0 {
			fmt.Fprintf(e.stderr, "kaopu voicemail %s: %q is not a message ID (kaopu voicemail list)\n", sub, pos[0])
			return exitUsage
		}
	}
	st, ok := e.openStore("voicemail", c, fs)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	cmd := "voicemail " + sub
	// user resolves a name or an extension to the user's name.
	user := func(login string) (string, error) {
		if u, err := st.GetUser(e.ctx, login); err == nil {
			return u.Name, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		users, err := st.ListUsers(e.ctx)
		if err != nil {
			return "", err
		}
		for _, u := range users {
			if u.Ext != "" && u.Ext == login {
				return u.Name, nil
			}
		}
		return "", fmt.Errorf("%s: no such user or extension: %w", login, store.ErrNotFound)
	}
	switch sub {
	case "on", "off":
		name, err := user(pos[0])
		if err != nil {
			return e.fail(cmd, err)
		}
		mb, err := st.GetMailbox(e.ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			mb, err = store.Mailbox{User: name, Created: time.Now()}, nil
		}
		if err != nil {
			return e.fail(cmd, err)
		}
		mb.Enabled = sub == "on"
		if *pin != "" {
			if mb.PINHash, err = voicemail.HashPIN(name, *pin); err != nil {
				return e.fail(cmd, err)
			}
		}
		if err := st.PutMailbox(e.ctx, mb); err != nil {
			return e.fail(cmd, err)
		}
		pinNote := "no PIN: only from the user's own phone"
		if mb.PINHash != "" {
			pinNote = "PIN set"
		}
		fmt.Fprintf(e.stdout, "voicemail %s for %s (%s)\n", sub, name, pinNote)
	case "list":
		box := ""
		if len(pos) == 1 {
			if box, err = user(pos[0]); err != nil {
				return e.fail(cmd, err)
			}
		}
		msgs, err := st.ListMessages(e.ctx, box)
		if err != nil {
			return e.fail(cmd, err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMAILBOX\tFROM\tNAME\tRECEIVED\tLENGTH\tSTATUS")
		for _, m := range msgs {
			status := "new"
			if m.Heard {
				status = "old"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\t%s\n", m.ID, m.Mailbox, dash(m.CallerNumber), dash(m.CallerName),
				m.Received.Local().Format("2006-01-02 15:04:05"), m.Duration.Round(100*time.Millisecond), status)
		}
		tw.Flush()
	case "export":
		m, err := st.GetMessage(e.ctx, id)
		if err != nil {
			return e.fail(cmd, err)
		}
		if err := os.WriteFile(pos[1], m.WAV, 0o600); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "message %d (%s, from %s, %v) written to %s\n", m.ID, m.Mailbox, dash(m.CallerNumber),
			m.Duration.Round(100*time.Millisecond), pos[1])
	case "del":
		if err := st.DeleteMessage(e.ctx, id); err != nil {
			return e.fail(cmd, err)
		}
		fmt.Fprintf(e.stdout, "deleted message %d\n", id)
	}
	return exitOK
}
