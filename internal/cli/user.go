package cli

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaopu/kaopu/internal/account"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/store"
)

const userHelp = `kaopu user add NAME --password PW [--ext NUM] [POLICY FLAGS]
       kaopu user set NAME [POLICY FLAGS] [--account ACCOUNT|none]
       kaopu user list
       kaopu user del NAME
       kaopu user passwd NAME --password PW
       kaopu user import FILE.csv      (lines: name,password[,ext]; "-" reads stdin)

Policy flags (what is not given keeps its value; "default" follows the server):
  --media-encryption optional|required|default   SRTP for this user's calls
  --signalling any|tls_required|default          SIP over TLS only
  --allow CLASSES|none        destination classes: international,premium
  --max-concurrent N          calls at once (0: server's calls.max_concurrent, -1: no cap)
  --max-per-minute N          calls started a minute (0: server's, -1: no cap)

--account ACCOUNT charges the user's rated calls to that billing account
(see kaopu account); "none" detaches the user.`

func (e *env) user(args []string) int {
	sub, rest, code, ok := e.subcommand("user", userHelp, args)
	if !ok {
		return code
	}
	fs, c := e.flagSet("user "+sub, userHelp)
	password := fs.String("password", "", "password (or KAOPU_PASSWORD)")
	ext := fs.String("ext", "", "extension number")
	mediaEnc := fs.String("media-encryption", "", "SRTP policy: optional, required or default")
	signalling := fs.String("signalling", "", "signalling policy: any, tls_required or default")
	allow := fs.String("allow", "", "destination classes permitted (international,premium) or none")
	maxConc := fs.Int("max-concurrent", 0, "calls at once (0 the server's, -1 no cap)")
	maxRate := fs.Int("max-per-minute", 0, "calls started per minute (0 the server's, -1 no cap)")
	acct := fs.String("account", "", "set: billing `ACCOUNT` the user's calls are charged to (none: detach)")
	pos, code, ok := e.positional("user", sub, userHelp, fs, rest, map[string]int{"add": 1, "set": 1, "del": 1, "passwd": 1, "list": 0, "import": 1})
	if !ok {
		return code
	}
	cfg, err := c.load(fs)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu user: config: %v\n", err)
		return exitUsage
	}
	// Policy flags apply over the user's current policy.
	setPolicy := func(p *store.Policy) error {
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "media-encryption":
				p.MediaEncryption = orDefault(*mediaEnc)
			case "signalling":
				p.Signalling = orDefault(*signalling)
			case "allow":
				p.Allow = nil
				if *allow != "none" && *allow != "" {
					for _, c := range strings.Split(*allow, ",") {
						p.Allow = append(p.Allow, strings.TrimSpace(c))
					}
				}
			case "max-concurrent":
				p.MaxConcurrent = *maxConc
			case "max-per-minute":
				p.MaxPerMinute = *maxRate
			}
		})
		return account.CheckPolicy(*p)
	}
	pw := *password
	if pw == "" {
		pw = os.Getenv("KAOPU_PASSWORD")
	}
	if (sub == "add" || sub == "passwd") && pw == "" {
		fmt.Fprintf(e.stderr, "kaopu user %s: --password is required\n", sub)
		return exitUsage
	}

	st, err := server.OpenStore(e.ctx, cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu user: %v\n", err)
		return exitFail
	}
	defer st.Close()
	realm, err := server.EnsureRealm(e.ctx, cfg, st)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu user: %v\n", err)
		return exitFail
	}
	now := time.Now()

	switch sub {
	case "add":
		u, err := account.NewUser(pos[0], *ext, realm, pw, now)
		if err == nil {
			err = setPolicy(&u.Policy)
		}
		var inUse map[string]string
		if err == nil {
			inUse, err = numbersInUse(e.ctx, st, appNumbers(cfg))
		}
		if err == nil {
			err = numberFree(inUse, u.Name, u.Ext)
		}
		if err == nil {
			err = st.AddUser(e.ctx, u)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu user add: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "added user %s%s (realm %s)\n", u.Name, extNote(u.Ext), realm)
	case "passwd":
		old, err := st.GetUser(e.ctx, pos[0])
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu user passwd: %v\n", err)
			return exitFail
		}
		if *ext != "" {
			old.Ext = *ext
		}
		u, err := account.NewUser(old.Name, old.Ext, realm, pw, old.Created)
		u.Policy = old.Policy
		if err == nil {
			err = st.UpdateUser(e.ctx, u)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu user passwd: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "password of %s changed\n", u.Name)
	case "set":
		u, err := st.GetUser(e.ctx, pos[0])
		if err == nil {
			err = setPolicy(&u.Policy)
		}
		if err == nil {
			err = st.UpdateUser(e.ctx, u)
		}
		accountSet := false
		fs.Visit(func(f *flag.Flag) { accountSet = accountSet || f.Name == "account" })
		if err == nil && accountSet {
			a := *acct
			if a == "none" {
				a = ""
			}
			err = st.SetUserAccount(e.ctx, u.Name, a)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu user set: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "policy of %s: %s\n", u.Name, policyText(u.Policy))
		if accountSet {
			if a, err := st.UserAccount(e.ctx, u.Name); err == nil {
				fmt.Fprintf(e.stdout, "account of %s: %s (%s)\n", u.Name, a.Name, a.Type)
			} else {
				fmt.Fprintf(e.stdout, "account of %s: none\n", u.Name)
			}
		}
	case "del":
		if err := st.DeleteUser(e.ctx, pos[0]); err != nil {
			fmt.Fprintf(e.stderr, "kaopu user del: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "deleted user %s\n", pos[0])
	case "list":
		us, err := st.ListUsers(e.ctx)
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu user list: %v\n", err)
			return exitFail
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tEXT\tREALM\tCREATED\tPOLICY")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Ext, u.Realm, u.Created.UTC().Format(time.RFC3339), policyText(u.Policy))
		}
		tw.Flush()
	case "import":
		n, err := e.importUsers(st, appNumbers(cfg), pos[0], realm, now)
		if err != nil {
			fmt.Fprintf(e.stderr, "kaopu user import: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(e.stdout, "imported %d users (realm %s)\n", n, realm)
	}
	return exitOK
}

// orDefault maps "default" (follow the server) to the empty policy value.
func orDefault(v string) string {
	if v == "default" {
		return ""
	}
	return v
}

// policyText shows what a user's policy changes from the server's settings.
func policyText(p store.Policy) string {
	if p.IsZero() {
		return "default"
	}
	var parts []string
	if p.MediaEncryption != "" {
		parts = append(parts, "media-encryption="+p.MediaEncryption)
	}
	if p.Signalling != "" {
		parts = append(parts, "signalling="+p.Signalling)
	}
	if len(p.Allow) > 0 {
		parts = append(parts, "allow="+strings.Join(p.Allow, ","))
	}
	if p.MaxConcurrent != 0 {
		parts = append(parts, fmt.Sprintf("max-concurrent=%d", p.MaxConcurrent))
	}
	if p.MaxPerMinute != 0 {
		parts = append(parts, fmt.Sprintf("max-per-minute=%d", p.MaxPerMinute))
	}
	return strings.Join(parts, " ")
}

func extNote(ext string) string {
	if ext == "" {
		return ""
	}
	return " ext " + ext
}

// importUsers reads name,password[,ext] lines and adds them in one transaction.
func (e *env) importUsers(st store.Store, apps []string, path, realm string, now time.Time) (int, error) {
	inUse, err := numbersInUse(e.ctx, st, apps)
	if err != nil {
		return 0, err
	}
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		r = f
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	var us []store.User
	line := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return 0, err
		}
		if len(rec) < 2 || len(rec) > 3 {
			return 0, fmt.Errorf("line %d: want name,password[,ext]", line)
		}
		ext := ""
		if len(rec) == 3 {
			ext = strings.TrimSpace(rec[2])
		}
		u, err := account.NewUser(strings.TrimSpace(rec[0]), ext, realm, rec[1], now)
		if err == nil {
			err = numberFree(inUse, u.Name, u.Ext)
		}
		if err != nil {
			return 0, fmt.Errorf("line %d: %v", line, oneLine(err.Error()))
		}
		us = append(us, u)
	}
	return len(us), st.AddUsers(e.ctx, us)
}
