package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kaopu/kaopu/internal/config"
	"github.com/kaopu/kaopu/internal/server"
	"github.com/kaopu/kaopu/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `kaopu — a complete, secure VoIP system in one binary.

Usage:
  kaopu serve   [--config FILE] [--data DIR] [--db DSN] [--sip ADDR] [--sips ADDR]
                [--http ADDR] [--domain NAME] [--public-ip IP] [--rtp-ports LOW-HIGH]
                [--log-format text|json] [--log-level debug|info|warn|error]
  kaopu user    add NAME --password PW [--ext NUM] [policy flags] | list | del NAME |
                set NAME [--media-encryption M] [--signalling S] [--allow CLASSES]
                [--max-concurrent N] [--max-per-minute N] [--account ACCOUNT] |
                passwd NAME --password PW | import FILE.csv
  kaopu ban     list [--all] | del IP | add IP [--for DURATION] [--reason TEXT]
  kaopu rate    import DECK FILE.csv [--currency EUR] [--replace] |
                list [DECK] [--prefix P] | lookup DECK NUMBER | del DECK
  kaopu account add NAME --prepaid|--postpaid [--credit-limit X] [--plan DECK]
                [--currency EUR] | set NAME ... | credit NAME AMOUNT [--reason TEXT] |
                list | show NAME
  kaopu trunk   add NAME --address HOST[:PORT] [--transport auto|udp|tcp|tls] [--auth ip|register]
                [--tls-verify=false] [--tls-ca FILE]
                [--username U --password PW] [--networks CIDRS] [--channels N]
                [--caller-id NUM] [--pai] [--number-format e164|digits|national]
                [--qualify SECONDS] | set NAME [flags] | list | show NAME | del NAME
  kaopu route   add NAME --pattern P --trunks T1,T2 [--strip N] [--prepend D]
                [--priority N] | list | del NAME
  kaopu did     add NUMBER --to USER_EXT_ROOM_GROUP_MENU_OR_voicemail:USER [--trunk NAME] | list | del NUMBER
  kaopu conf    add NUMBER [--pin DIGITS] [--max N] [--name TEXT] | list | del NUMBER
  kaopu group   add NUMBER --members alice,bob,102 [--strategy ringall|hunt] [--ring-time 20s]
                [--fallback NUMBER] | list | del NUMBER
  kaopu ivr     add NUMBER --prompt FILE.wav [--option 1=alice --option 2=600 ...] [--timeout 5s]
                [--retries 3] [--default NUMBER] [--extension-dialing] | list | del NUMBER
  kaopu voicemail on USER [--pin DIGITS] | off USER | list [USER] | export ID FILE.wav | del ID
  kaopu card    generate --count N --value AMOUNT --plan DECK [--currency C] [--expires DATE]
                [--prefix DIGITS] | import FILE.csv [--plan DECK] | list | block NUMBER |
                unblock NUMBER
  kaopu cdr     list [--from DATE] [--to DATE] [--limit N] |
                export --format csv|json [--from DATE] [--to DATE]
  kaopu phone   [call TARGET | answer [--auto] | msg TARGET TEXT]
                [--server HOST:PORT --user NAME [--password PW]] [--listen ADDR]
                [--play FILE] [--record FILE] [--duration D] [--config FILE]
                (no subcommand: an interactive softphone)
  kaopu version

Every admin command accepts --data DIR, --db DSN and --config FILE and works on
the same store as the server, also while it runs.
Run "kaopu COMMAND --help" for the flags of one command.
`

// Run executes the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	env := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	switch args[0] {
	case "serve":
		return env.serve(args[1:])
	case "user", "users":
		return env.user(args[1:])
	case "cdr":
		return env.cdr(args[1:])
	case "ban", "bans":
		return env.ban(args[1:])
	case "rate", "rates":
		return env.rate(args[1:])
	case "account", "accounts":
		return env.account(args[1:])
	case "trunk", "trunks":
		return env.trunk(args[1:])
	case "route", "routes":
		return env.route(args[1:])
	case "did", "dids":
		return env.did(args[1:])
	case "card", "cards":
		return env.card(args[1:])
	case "conf", "confs", "conference", "conferences":
		return env.conf(args[1:])
	case "group", "groups":
		return env.group(args[1:])
	case "ivr":
		return env.ivr(args[1:])
	case "voicemail", "vm":
		return env.voicemail(args[1:])
	case "phone":
		return env.phone(args[1:])
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "kaopu %s\n", version.Version)
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "kaopu: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
}

// common are the flags every command that touches the store takes.
type common struct {
	config, data, db, domain string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "YAML config `FILE`")
	fs.StringVar(&c.data, "data", "", "data `DIR` (default ./kaopu-data)")
	fs.StringVar(&c.db, "db", "", "store `DSN` (default SQLite in the data dir)")
	fs.StringVar(&c.domain, "domain", "", "SIP domain and digest realm (default: the server's, else the host name)")
}

// load reads the config file and applies the common flags over it.
func (c *common) load(fs *flag.FlagSet) (config.Config, error) {
	cfg, err := config.Load(c.config)
	if err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["data"] {
		cfg.Data = c.data
	}
	if set["db"] {
		cfg.DB = c.db
	}
	if set["domain"] {
		cfg.Domain = c.domain
	}
	return cfg, nil
}

// parse parses flags that may come before, between or after positional
// arguments ("user add alice --password x" and "user add --password x alice").
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func newFlagSet(name string, stderr io.Writer, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (e *env) serve(args []string) int {
	fs := newFlagSet("serve", e.stderr, "kaopu serve [flags]")
	var c common
	c.register(fs)
	sipAddr := fs.String("sip", "", "SIP UDP+TCP listen `ADDR` (default :5060)")
	sipsAddr := fs.String("sips", "", "SIP TLS listen `ADDR` (default :5061; off disables)")
	httpAddr := fs.String("http", "", "HTTP listen `ADDR` (default :8080; off disables)")
	publicIP := fs.String("public-ip", "", "public `IP` announced to phones")
	rtpPorts := fs.String("rtp-ports", "", "RTP port range `LOW-HIGH` (default 10000-20000)")
	logFormat := fs.String("log-format", "", "log format: text or json (default text)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (default info)")
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) > 0 {
		fmt.Fprintf(e.stderr, "kaopu serve: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	cfg, err := c.load(fs)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu serve: %v\n", err)
		return exitUsage
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "sip":
			cfg.SIP.Listen = *sipAddr
		case "sips":
			cfg.SIP.TLSListen = *sipsAddr
		case "http":
			cfg.HTTP.Listen = *httpAddr
		case "public-ip":
			cfg.PublicIP = *publicIP
		case "rtp-ports":
			cfg.RTP.Ports = *rtpPorts
		case "log-format":
			cfg.Log.Format = *logFormat
		case "log-level":
			cfg.Log.Level = *logLevel
		}
	})
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(e.stderr, "kaopu serve: config: %v\n", err)
		return exitUsage
	}
	log := newLogger(e.stderr, cfg.Log.Format, cfg.Log.Level)
	srv, err := server.New(e.ctx, cfg, log, e.stdout)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu serve: %v\n", err)
		return exitFail
	}
	if err := srv.Start(e.ctx); err != nil {
		srv.Close()
		fmt.Fprintf(e.stderr, "kaopu serve: %v\n", err)
		return exitFail
	}
	// SIGHUP reads the TLS certificate files again (they are also read
	// again by themselves when they change).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-e.ctx.Done():
			break wait
		case <-hup:
			if err := srv.ReloadTLS(); err == nil {
				log.Info("SIGHUP: TLS certificate files read again")
			}
		}
	}
	log.Info("shutting down")
	if err := srv.Close(); err != nil {
		log.Error("shutdown", "error", err)
		return exitFail
	}
	return exitOK
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// positional parses a subcommand's flags and checks its positional
// arguments: want maps each subcommand of cmd to how many it takes. When
// ok is false the help or a usage error has been printed and code is the
// exit status.
func (e *env) positional(cmd, sub, help string, fs *flag.FlagSet, args []string, want map[string]int) (pos []string, code int, ok bool) {
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		}
		return nil, exitUsage, false
	}
	n, known := want[sub]
	if !known {
		fmt.Fprintf(e.stderr, "kaopu %s: unknown subcommand %q\nUsage: %s\n", cmd, sub, help)
		return nil, exitUsage, false
	}
	if len(pos) != n {
		fmt.Fprintf(e.stderr, "kaopu %s %s: want %d argument(s), got %d\nUsage: %s\n", cmd, sub, n, len(pos), help)
		return nil, exitUsage, false
	}
	return pos, 0, true
}

// flagSet makes the flag set of a subcommand ("trunk add"), with the
// flags every command takes (common) registered on it.
func (e *env) flagSet(name, help string) (*flag.FlagSet, *common) {
	fs := newFlagSet(name, e.stderr, help)
	c := new(common)
	c.register(fs)
	return fs, c
}

// subcommand splits args into the subcommand and its flags (or prints the
// help when there is none, or it is -h/--help); code is
// the exit code when there is nothing more to do.
func (e *env) subcommand(cmd, help string, args []string) (string, []string, int, bool) {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintf(e.stderr, "Usage: %s\n", help)
		if len(args) == 0 {
			return "", nil, exitUsage, false
		}
		return "", nil, exitOK, false
	}
	return args[0], args[1:], 0, true
}
