package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kaopu/kaopu/internal/media/sound"
	"github.com/kaopu/kaopu/internal/ua"
)

const phoneHelp = `kaopu phone [call TARGET | answer [--auto] | msg TARGET TEXT] [flags]

A softphone. Without a subcommand it registers (with --server) or listens
(with --listen) and opens a prompt; type "help" there.

Audio: the sound card's default microphone and speaker, in a build with
-tags soundcard (without one, or without a sound card, calls need WAV
files); or --play FILE as the microphone and --record FILE as the speaker.

  call TARGET     call an extension or user of the server (1002, bob), or
                  sip:user@host:port directly; exit status 0 if answered
  answer          wait for a call and answer it (--auto: keep answering
                  further calls until interrupted); exit status 0 if one
                  was answered
  msg TARGET TEXT send an instant message; exit status 0 if accepted

Account: --server HOST:PORT --user NAME, the password from --password, the
KAOPU_PASSWORD environment variable, the config file or a prompt; or
--listen IP:PORT alone for direct calls without a server.`

// phoneFile is the --config file's account settings.
type phoneFile struct {
	Server      string   `yaml:"server"`
	User        string   `yaml:"user"`
	Password    string   `yaml:"password"`
	AuthUser    string   `yaml:"auth_user"`
	Domain      string   `yaml:"domain"`
	DisplayName string   `yaml:"display_name"`
	Transport   string   `yaml:"transport"`
	Listen      string   `yaml:"listen"`
	STUN        string   `yaml:"stun"`
	SRTP        string   `yaml:"srtp"`
	Codecs      []string `yaml:"codecs"`
	InsecureTLS bool     `yaml:"insecure_tls"`
}

func loadPhoneFile(path string) (phoneFile, error) {
	var f phoneFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

type phoneFlags struct {
	config, server, user, password, domain, transport, listen, stun, srtp, codecs string
	play, record, dtmf                                                            string
	duration, ringTimeout                                                         time.Duration
	auto, insecureTLS                                                             bool
	logLevel                                                                      string
}

func (e *env) phone(args []string) int {
	fs := newFlagSet("phone", e.stderr, phoneHelp)
	var f phoneFlags
	fs.StringVar(&f.config, "config", "", "account settings `FILE` (YAML: server, user, password, domain, transport, listen, stun, srtp, codecs, display_name, auth_user, insecure_tls)")
	fs.StringVar(&f.server, "server", "", "registrar and proxy `HOST:PORT`")
	fs.StringVar(&f.user, "user", "", "user `NAME`")
	fs.StringVar(&f.password, "password", "", "password (default $KAOPU_PASSWORD, else a prompt)")
	fs.StringVar(&f.domain, "domain", "", "SIP domain (default: the server's host)")
	fs.StringVar(&f.transport, "transport", "", "transport to the server: udp, tcp or tls (default udp)")
	fs.StringVar(&f.listen, "listen", "", "local SIP `ADDR` (IP:PORT); alone, for direct calls without a server")
	fs.StringVar(&f.stun, "stun", "", "STUN server `HOST:PORT` for the public media address")
	fs.StringVar(&f.srtp, "srtp", "", "SRTP: off, offer or require (default offer)")
	fs.StringVar(&f.codecs, "codecs", "", "codecs in order of preference (default PCMU,PCMA,G722, then opus in a build with -tags opus)")
	fs.StringVar(&f.play, "play", "", "WAV `FILE` to send as the microphone, instead of the sound card")
	fs.StringVar(&f.record, "record", "", "WAV `FILE` to record what is heard, instead of the sound card")
	fs.StringVar(&f.dtmf, "dtmf", "", "DTMF `DIGITS` to send one second into the call (call, answer)")
	fs.DurationVar(&f.duration, "duration", 0, "hang up after this long in the call (0: when the other side does)")
	fs.DurationVar(&f.ringTimeout, "ring-timeout", 60*time.Second, "give up on an unanswered call, or on waiting for one, after this long")
	fs.BoolVar(&f.auto, "auto", false, "answer every incoming call (answer: keep going after the first)")
	fs.BoolVar(&f.insecureTLS, "insecure-tls", false, "do not verify the server's TLS certificate")
	fs.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := f.agentConfig(fs, e)
	if err != nil {
		fmt.Fprintf(e.stderr, "kaopu phone: %v\n", err)
		return exitUsage
	}
	cfg.Log = newLogger(e.stderr, "text", f.logLevel)
	p := &phone{env: e, flags: f, out: &syncWriter{w: e.stdout}}
	if len(pos) == 0 {
		return p.interactive(cfg)
	}
	switch pos[0] {
	case "call":
		if len(pos) != 2 {
			fmt.Fprintln(e.stderr, "kaopu phone call: want exactly one TARGET")
			return exitUsage
		}
		return p.call(cfg, pos[1])
	case "answer":
		if len(pos) != 1 {
			fmt.Fprintf(e.stderr, "kaopu phone answer: unexpected argument %q\n", pos[1])
			return exitUsage
		}
		return p.answer(cfg)
	case "msg", "message":
		if len(pos) < 3 {
			fmt.Fprintln(e.stderr, "kaopu phone msg: want TARGET TEXT")
			return exitUsage
		}
		return p.msg(cfg, pos[1], strings.Join(pos[2:], " "))
	}
	fmt.Fprintf(e.stderr, "kaopu phone: unknown subcommand %q\n\nUsage: %s\n", pos[0], phoneHelp)
	return exitUsage
}

// agentConfig merges the config file, the environment and the flags.
func (f *phoneFlags) agentConfig(fs *flag.FlagSet, e *env) (ua.Config, error) {
	var file phoneFile
	if f.config != "" {
		var err error
		if file, err = loadPhoneFile(f.config); err != nil {
			return ua.Config{}, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	pick := func(name, flagVal, fileVal string) string {
		if set[name] {
			return flagVal
		}
		return fileVal
	}
	cfg := ua.Config{
		Server:      pick("server", f.server, file.Server),
		User:        pick("user", f.user, file.User),
		Password:    pick("password", f.password, ""),
		AuthUser:    file.AuthUser,
		Domain:      pick("domain", f.domain, file.Domain),
		DisplayName: file.DisplayName,
		Transport:   pick("transport", f.transport, file.Transport),
		Listen:      pick("listen", f.listen, file.Listen),
		STUN:        pick("stun", f.stun, file.STUN),
		InsecureTLS: f.insecureTLS || file.InsecureTLS,
		RingTimeout: f.ringTimeout,
	}
	mode, err := ua.ParseSRTPMode(pick("srtp", f.srtp, file.SRTP))
	if err != nil {
		return cfg, err
	}
	cfg.SRTP = mode
	if set["codecs"] {
		cfg.Codecs = strings.Split(f.codecs, ",")
	} else {
		cfg.Codecs = file.Codecs
	}
	if cfg.Server == "" && cfg.Listen == "" {
		return cfg, errors.New("give --server HOST:PORT --user NAME, or --listen IP:PORT for direct calls")
	}
	if cfg.User == "" {
		if cfg.Server != "" {
			return cfg, errors.New("--user NAME is required with --server")
		}
		cfg.User = "kaopu"
	}
	if cfg.Password == "" && cfg.Server != "" {
		switch {
		case os.Getenv("KAOPU_PASSWORD") != "":
			cfg.Password = os.Getenv("KAOPU_PASSWORD")
		case file.Password != "":
			cfg.Password = file.Password
		default:
			pw, err := promptPassword(e.stdin, e.stderr, fmt.Sprintf("Password for %s: ", cfg.User))
			if err != nil {
				return cfg, fmt.Errorf("no password (--password, KAOPU_PASSWORD or the prompt): %w", err)
			}
			cfg.Password = pw
		}
	}
	return cfg, nil
}

// promptPassword reads a line from in, with terminal echo off when in is a
// terminal.
func promptPassword(in io.Reader, out io.Writer, prompt string) (string, error) {
	fmt.Fprint(out, prompt)
	if f, ok := in.(*os.File); ok {
		if restore, err := echoOff(f); err == nil {
			defer func() { restore(); fmt.Fprintln(out) }()
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err == nil {
			err = errors.New("empty password")
		}
		return "", err
	}
	return line, nil
}

// syncWriter serializes the lines printed from the agent's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// phone runs one `kaopu phone` command.
type phone struct {
	*env
	flags phoneFlags
	out   *syncWriter
	agent *ua.Agent
	card  *sound.Card // nil when the audio is WAV files

	mu      sync.Mutex
	current *ua.Call // the call the prompt acts on
	ringing []*ua.Call
}

// openAudio opens the sound card when no WAV file is given: every call
// then talks and listens through it. With no sound card (or none in this
// build) it says so, and how to do without, and returns false.
func (p *phone) openAudio() bool {
	if p.flags.play != "" || p.flags.record != "" {
		return true
	}
	card, err := sound.Open()
	if err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone: %v\n", err)
		fmt.Fprintln(p.stderr, "kaopu phone: to call without a sound card, give WAV files: --play FILE (sent as the microphone) and --record FILE (what is heard)")
		return false
	}
	p.card = card
	return true
}

func (p *phone) closeAudio() {
	if p.card != nil {
		p.card.Close()
	}
}

// audio is a new call's audio: the sound card, or the WAV files.
func (p *phone) audio() ua.CallOptions {
	var o ua.CallOptions
	if p.card != nil {
		o.Source, o.Sink = p.card.Source(), p.card.Sink()
		return o
	}
	if p.flags.play != "" {
		o.Source = &ua.WAVSource{Path: p.flags.play}
	}
	if p.flags.record != "" {
		o.Sink = &ua.WAVSink{Path: p.flags.record}
	}
	return o
}

// start makes and starts the agent with hooks that print events.
func (p *phone) start(cfg ua.Config, onIncoming func(*ua.Call)) error {
	cfg.Hooks = ua.Hooks{
		OnIncoming: func(c *ua.Call) {
			p.out.printf("incoming call from %s\n", c.Peer())
			if onIncoming != nil {
				onIncoming(c)
			}
		},
		OnState: func(c *ua.Call, s ua.State) {
			switch s {
			case ua.StateRinging:
				p.out.printf("ringing\n")
			case ua.StateActive:
				st := c.Stats()
				p.out.printf("answered: %s codec %s srtp %v\n", c.Peer(), st.Codec, st.SRTP)
			case ua.StateHeld:
				p.out.printf("on hold\n")
			case ua.StateEnded:
				code, reason := c.EndStatus()
				p.out.printf("call ended: %d %s\n", code, reason)
			}
		},
		OnDTMF:    func(_ *ua.Call, r rune) { p.out.printf("dtmf received: %c\n", r) },
		OnMessage: func(from, text string) { p.out.printf("message from %s: %s\n", from, text) },
		OnRegister: func(granted time.Duration, err error) {
			if err != nil {
				p.out.printf("registration failed: %v\n", err)
			}
		},
		OnTransfer: func(old, n *ua.Call) {
			p.out.printf("transferred to %s\n", n.Peer())
			p.mu.Lock()
			if p.current == old {
				p.current = n
			}
			p.mu.Unlock()
		},
	}
	a, err := ua.New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		a.Close()
		return err
	}
	p.agent = a
	if cfg.Server != "" {
		p.out.printf("registered as %s via %s\n", a.AOR(), cfg.Server)
	}
	p.out.printf("listening on sip:%s@%s\n", cfg.User, a.LocalAddr())
	return nil
}

func statsLine(c *ua.Call) string {
	st := c.Stats()
	return fmt.Sprintf("[%s] %s codec=%s srtp=%v jitter=%.1fms loss=%.1f%% in=%d out=%d concealed=%d",
		c.State(), c.Peer(), orDash(st.Codec), st.SRTP, st.JitterMs, st.LossPct, st.PacketsIn, st.PacketsOut, st.Concealed)
}

// printMediaStart says when the call's media clock started: the --record
// file's first sample was played then, and the --play file's first frame
// sent (ua.Stats.MediaStart). Benchmarks use it to time what was heard.
func (p *phone) printMediaStart(c *ua.Call) {
	if t := c.Stats().MediaStart; !t.IsZero() {
		p.out.printf("media started at %s\n", t.UTC().Format(time.RFC3339Nano))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// follow waits for the call (and any call a transfer replaces it with) to
// end, hanging up after the duration when one is set, and returns the last
// call.
func (p *phone) follow(c *ua.Call, duration time.Duration) *ua.Call {
	var timeout <-chan time.Time
	if duration > 0 {
		timeout = time.After(duration)
	}
	if p.flags.dtmf != "" {
		go func() {
			select {
			case <-time.After(time.Second):
			case <-c.Done():
				return
			}
			ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
			defer cancel()
			if err := c.SendDTMF(ctx, p.flags.dtmf); err != nil {
				p.out.printf("dtmf: %v\n", err)
				return
			}
			p.out.printf("dtmf sent: %s\n", p.flags.dtmf)
		}()
	}
	p.mu.Lock()
	p.current = c
	p.mu.Unlock()
	for {
		p.mu.Lock()
		cur := p.current
		p.mu.Unlock()
		select {
		case <-cur.Done():
			p.mu.Lock()
			next := p.current
			p.mu.Unlock()
			if next != cur {
				continue // transferred
			}
			time.Sleep(200 * time.Millisecond) // a transfer's new call may still be coming
			p.mu.Lock()
			next = p.current
			p.mu.Unlock()
			if next != cur {
				continue
			}
			return cur
		case <-timeout:
			p.out.printf("%s\n", statsLine(cur))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cur.Hangup(ctx)
			cancel()
			return cur
		case <-p.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cur.Hangup(ctx)
			cancel()
			return cur
		}
	}
}

func (p *phone) call(cfg ua.Config, target string) int {
	if !p.openAudio() {
		return exitFail
	}
	defer p.closeAudio()
	if err := p.start(cfg, nil); err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone: %v\n", err)
		return exitFail
	}
	defer p.agent.Close()
	c, err := p.agent.Dial(p.ctx, target, p.audio())
	if err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone call: %v\n", err)
		return exitFail
	}
	p.out.printf("calling %s\n", c.Peer())
	ctx, cancel := context.WithTimeout(p.ctx, p.flags.ringTimeout)
	err = c.WaitAnswer(ctx)
	cancel()
	if err != nil {
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Hangup(hctx)
		hcancel()
		fmt.Fprintf(p.stderr, "kaopu phone call: not answered: %v\n", err)
		return exitFail
	}
	last := p.follow(c, p.flags.duration)
	<-last.Done()
	p.out.printf("%s\n", statsLine(last))
	p.printMediaStart(last)
	return exitOK
}

func (p *phone) answer(cfg ua.Config) int {
	calls := make(chan *ua.Call, 8)
	if !p.openAudio() {
		return exitFail
	}
	defer p.closeAudio()
	if err := p.start(cfg, func(c *ua.Call) { calls <- c }); err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone: %v\n", err)
		return exitFail
	}
	defer p.agent.Close()
	answered := 0
	wait := time.After(p.flags.ringTimeout)
	for {
		var c *ua.Call
		select {
		case c = <-calls:
		case <-wait:
			if answered == 0 {
				fmt.Fprintf(p.stderr, "kaopu phone answer: no call within %v\n", p.flags.ringTimeout)
				return exitFail
			}
			continue
		case <-p.ctx.Done():
			if answered == 0 {
				return exitFail
			}
			return exitOK
		}
		if answered > 0 && !p.flags.auto {
			c.Reject(p.ctx, 486, "Busy Here")
			continue
		}
		if err := c.Answer(p.ctx, p.audio()); err != nil {
			fmt.Fprintf(p.stderr, "kaopu phone answer: %v\n", err)
			if !p.flags.auto {
				return exitFail
			}
			continue
		}
		answered++
		last := p.follow(c, p.flags.duration)
		<-last.Done()
		p.out.printf("%s\n", statsLine(last))
		p.printMediaStart(last)
		if !p.flags.auto || p.ctx.Err() != nil {
			return exitOK
		}
		wait = nil
	}
}

func (p *phone) msg(cfg ua.Config, target, text string) int {
	if err := p.start(cfg, nil); err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone: %v\n", err)
		return exitFail
	}
	defer p.agent.Close()
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if err := p.agent.SendMessage(ctx, target, text); err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone msg: %v\n", err)
		return exitFail
	}
	p.out.printf("message sent to %s\n", target)
	return exitOK
}
