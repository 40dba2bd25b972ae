package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/media/sound"
	"github.com/kaopu/kaopu/internal/ua"
)

func TestPhoneUsage(t *testing.T) {
	if code, out, _ := run(t, "", "--help"); code != 0 || !strings.Contains(out, "kaopu phone   [call TARGET") {
		t.Errorf("kaopu --help does not list phone: %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "", "phone", "--help"); code != 0 || !strings.Contains(errOut, "msg TARGET TEXT") || !strings.Contains(errOut, "-record") {
		t.Errorf("phone --help: %d\n%s", code, errOut)
	}
	cases := [][]string{
		{"phone", "call"},                       // no target
		{"phone", "call", "bob"},                // no server, no listen
		{"phone", "--server", "127.0.0.1:5060"}, // no user
		{"phone", "frobnicate", "--listen", "127.0.0.1:0"},
		{"phone", "--listen", "127.0.0.1:0", "--srtp", "maybe"},
	}
	for _, args := range cases {
		if code, _, errOut := run(t, "", args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)\n%s", args, code, errOut)
		}
	}
}

func TestPhoneConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "phone.yaml")
	os.WriteFile(path, []byte("server: 192.0.2.1:5060\nuser: alice\npassword: from-file\ncodecs: [G722, PCMU]\nsrtp: require\n"), 0o600)
	fs := newFlagSet("phone", os.Stderr, "")
	var f phoneFlags
	fs.StringVar(&f.config, "config", "", "")
	fs.StringVar(&f.user, "user", "", "")
	fs.StringVar(&f.password, "password", "", "")
	if _, err := parse(fs, []string{"--config", path, "--user", "bob"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAOPU_PASSWORD", "")
	cfg, err := f.agentConfig(fs, &env{stdin: strings.NewReader("")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "192.0.2.1:5060" || cfg.User != "bob" || cfg.Password != "from-file" ||
		strings.Join(cfg.Codecs, ",") != "G722,PCMU" || cfg.SRTP != ua.SRTPRequire {
		t.Errorf("config %+v", cfg)
	}
	t.Setenv("KAOPU_PASSWORD", "from-env")
	if cfg, _ := f.agentConfig(fs, &env{}); cfg.Password != "from-env" {
		t.Errorf("KAOPU_PASSWORD ignored: %q", cfg.Password)
	}
	os.WriteFile(path, []byte("server: x:1\nusr: typo\n"), 0o600)
	if _, err := f.agentConfig(fs, &env{}); err == nil || !strings.Contains(err.Error(), "usr") {
		t.Errorf("unknown key accepted: %v", err)
	}
	// No password anywhere: the prompt reads one line from stdin.
	os.WriteFile(path, []byte("server: 192.0.2.1:5060\n"), 0o600)
	t.Setenv("KAOPU_PASSWORD", "")
	var prompt strings.Builder
	cfg, err = f.agentConfig(fs, &env{stdin: strings.NewReader("typed-pw\n"), stderr: &prompt})
	if err != nil || cfg.Password != "typed-pw" || !strings.Contains(prompt.String(), "Password for bob") {
		t.Errorf("prompt: %q, %v (%q)", cfg.Password, err, prompt.String())
	}
}

// TestPhoneMessageDirect runs two phones in-process: `answer` receives the
// message `msg` sends, by address, without a server.
func TestPhoneMessageDirect(t *testing.T) {
	got := make(chan string, 1)
	a, err := ua.New(ua.Config{User: "bob", Listen: "127.0.0.1:0",
		Hooks: ua.Hooks{OnMessage: func(from, text string) { got <- text }}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	code, out, errOut := run(t, "", "phone", "msg", "sip:bob@"+a.LocalAddr().String(), "hi", "there", "--listen", "127.0.0.1:0")
	if code != 0 || !strings.Contains(out, "message sent") {
		t.Fatalf("msg: %d %s %s", code, out, errOut)
	}
	select {
	case text := <-got:
		if text != "hi there" {
			t.Errorf("got %q", text)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no message")
	}
}

// TestPhoneNoSoundCard: without --play and --record a phone talks through
// the sound card; where there is none (or the build has no sound card
// support), call, answer and the prompt refuse to start, say why and what
// to do instead, exit 1, and no call is placed.
func TestPhoneNoSoundCard(t *testing.T) {
	card, want := sound.Open()
	if want == nil {
		card.Close()
		t.Skip("this machine has a sound card")
	}
	incoming := make(chan *ua.Call, 1)
	bob, err := ua.New(ua.Config{User: "bob", Listen: "127.0.0.1:0", Hooks: ua.Hooks{OnIncoming: func(c *ua.Call) { incoming <- c }}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	for _, args := range [][]string{
		{"phone", "call", "sip:bob@" + bob.LocalAddr().String(), "--listen", "127.0.0.1:0"},
		{"phone", "answer", "--listen", "127.0.0.1:0"},
		{"phone", "--listen", "127.0.0.1:0"},
	} {
		code, out, errOut := run(t, "quit\n", args...)
		if code != 1 || !strings.Contains(errOut, want.Error()) || !strings.Contains(errOut, "--play FILE") ||
			!strings.Contains(errOut, "--record FILE") || strings.Contains(out, "listening on") {
			t.Errorf("%q: exit %d, want 1 with %q and the WAV flags before listening:\n%s%s", args, code, want, out, errOut)
		}
	}
	select {
	case c := <-incoming:
		t.Errorf("a call from %s was placed without audio", c.Peer())
	case <-time.After(200 * time.Millisecond):
	}
	// With a WAV file the same call goes ahead (bob rejects it).
	go func() {
		if c := <-incoming; c != nil {
			c.Reject(t.Context(), 486, "Busy Here")
		}
	}()
	code, _, errOut := run(t, "", "phone", "call", "sip:bob@"+bob.LocalAddr().String(), "--listen", "127.0.0.1:0",
		"--record", filepath.Join(t.TempDir(), "heard.wav"))
	if code != 1 || !strings.Contains(errOut, "486") {
		t.Errorf("call with --record: exit %d, want 1 with 486:\n%s", code, errOut)
	}
}

// TestPhoneCallPrintsMediaStart: a scripted call ends by printing when its
// media clock started, the time origin of its --record file.
func TestPhoneCallPrintsMediaStart(t *testing.T) {
	bob, err := ua.New(ua.Config{User: "bob", Listen: "127.0.0.1:0", Hooks: ua.Hooks{OnIncoming: func(c *ua.Call) {
		go func() {
			if c.Answer(t.Context(), ua.CallOptions{}) == nil {
				time.Sleep(300 * time.Millisecond)
				c.Hangup(t.Context())
			}
		}()
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	before := time.Now()
	code, out, errOut := run(t, "", "phone", "call", "sip:bob@"+bob.LocalAddr().String(), "--listen", "127.0.0.1:0",
		"--record", filepath.Join(t.TempDir(), "heard.wav"))
	if code != 0 {
		t.Fatalf("call: exit %d\n%s%s", code, out, errOut)
	}
	_, rest, ok := strings.Cut(out, "media started at ")
	line, _, _ := strings.Cut(rest, "\n")
	at, err := time.Parse(time.RFC3339Nano, line)
	if !ok || err != nil || at.Before(before) || at.After(time.Now()) {
		t.Errorf("media start %q (%v), want a time during the call:\n%s", line, err, out)
	}
}
