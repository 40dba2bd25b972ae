package test

// End-to-end tests of `kaopu phone` (issue 4): the softphone against
// baresip through kaopu serve, against itself directly by IP, DTMF and
// instant messages, and its interactive prompt driven through tmux.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/test/harness"
)

// toneFile writes d of freq Hz at toneLevel to dir/name (8 kHz WAV).
func toneFile(t *testing.T, dir, name string, freq float64, d time.Duration) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, harness.ToneWAV(freq, 8000, d, toneLevel), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkToneFile checks a recording: at least least long, and in at least
// 90% of its 100 ms windows (after the first 300 ms) the tone want at half
// the level played or more while notWant stays below a tenth of it.
func checkToneFile(t *testing.T, path string, want, notWant float64, least time.Duration) harness.Audio {
	t.Helper()
	a, err := harness.ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Duration() < least {
		t.Fatalf("%s holds %v of audio, want at least %v", path, a.Duration(), least)
	}
	windows := a.Windows(100 * time.Millisecond)[3:]
	good := 0
	var misses []string
	for i, w := range windows {
		in, out := w.Tone(want), w.Tone(notWant)
		if in >= toneLevel/2 && out < in/10 {
			good++
		} else if len(misses) < 10 {
			misses = append(misses, fmt.Sprintf("%.1fs: %.0f Hz at %.0f, %.0f Hz at %.0f", float64(i+3)/10, want, in, notWant, out))
		}
	}
	if good < len(windows)*9/10 {
		t.Errorf("%s (%v): %.0f Hz clear of %.0f Hz in only %d of %d windows; first misses:\n%s",
			filepath.Base(path), a.Duration(), want, notWant, good, len(windows), strings.Join(misses, "\n"))
	}
	t.Logf("%s: %v, %d/%d windows with %.0f Hz", filepath.Base(path), a.Duration(), good, len(windows), want)
	return a
}

// TestPhoneWithBaresipThroughServer: kaopu phone and baresip register with
// kaopu serve and call each other both ways; each records the other's tone
// (so audio crossed both ways through the server's relay); the kaopu phone
// exits 0 for an answered call; DTMF the phone sends is reported by
// baresip; the CDR says ANSWERED.
func TestPhoneWithBaresipThroughServer(t *testing.T) {
	const callLength = 4 * time.Second
	srv := harness.StartServer(t, harness.ServerOptions{Config: sippConfig})
	harness.AddUser(t, srv.DataDir, "alice", "alice-secret-1", "1001")
	harness.AddUser(t, srv.DataDir, "bob", "bob-secret-2", "1002")
	dir := t.TempDir()
	bob := harness.StartBaresip(t, harness.BaresipOptions{User: "bob", Password: "bob-secret-2",
		Server: srv.SIPAddr(), AnswerMode: "auto", AudioSource: toneFile(t, dir, "bob.wav", bobTone, 30*time.Second)})
	if err := bob.WaitRegisterOKs(0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	alicePlay := toneFile(t, dir, "alice.wav", aliceTone, 30*time.Second)

	t.Run("phone calls baresip", func(t *testing.T) {
		rec := filepath.Join(dir, "alice-heard.wav")
		// The password from the environment, as a user would keep it out
		// of the process list.
		ph := harness.StartPhone(t, "alice", nil, []string{"KAOPU_PASSWORD=alice-secret-1"},
			"call", "1002", "--server", srv.SIPAddr(), "--user", "alice", "--domain", srv.Domain,
			"--play", alicePlay, "--record", rec, "--duration", callLength.String(), "--dtmf", "159#")
		if code := ph.Wait(30 * time.Second); code != 0 {
			t.Fatalf("kaopu phone call exited %d, want 0 (answered):\n%s", code, ph.Output())
		}
		for _, want := range []string{`^registered as sip:alice@`, `^answered: .* codec PCMU`, `^dtmf sent: 159#`, `^call ended: 200 `} {
			if _, err := ph.WaitOutput(0, want); err != nil {
				t.Error(err)
			}
		}
		checkToneFile(t, rec, bobTone, aliceTone, callLength-time.Second)
		if _, err := bob.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
		for _, d := range "159#" {
			// baresip 1.0 prints each RFC 4733 event it decodes, start and end.
			if _, err := bob.WaitOutput(0, fmt.Sprintf(`received event: '%s' \(end=1\)`, regexp.QuoteMeta(string(d)))); err != nil {
				t.Errorf("baresip did not report the DTMF digit %c: %v", d, err)
			}
		}
		c := lastCDR(t, srv)
		if c.Disposition != "ANSWERED" || c.Caller != "alice" || c.Dialed != "1002" || c.Codec != "PCMU" {
			t.Errorf("CDR %+v, want ANSWERED alice dialed 1002 with PCMU", c)
		}
		bob.Stop()
		files := bob.Recordings()
		if len(files) != 1 {
			t.Fatalf("baresip recordings %q, want 1", files)
		}
		checkToneFile(t, files[0], aliceTone, bobTone, callLength-time.Second)
	})

	t.Run("baresip calls phone", func(t *testing.T) {
		carolPlay := toneFile(t, dir, "carol.wav", bobTone, 30*time.Second)
		harness.AddUser(t, srv.DataDir, "carol", "carol-secret-3", "1003")
		caller := harness.StartBaresip(t, harness.BaresipOptions{User: "carol", Password: "carol-secret-3",
			Server: srv.SIPAddr(), AudioSource: carolPlay})
		if err := caller.WaitRegisterOKs(0, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		rec := filepath.Join(dir, "alice-answered.wav")
		ph := harness.StartPhone(t, "alice", nil, nil,
			"answer", "--server", srv.SIPAddr(), "--user", "alice", "--password", "alice-secret-1",
			"--domain", srv.Domain, "--play", alicePlay, "--record", rec, "--duration", callLength.String())
		if _, err := ph.WaitOutput(10*time.Second, `^registered as `); err != nil {
			t.Fatal(err)
		}
		if err := caller.Dial("sip:1001@" + srv.Domain); err != nil {
			t.Fatal(err)
		}
		if code := ph.Wait(30 * time.Second); code != 0 {
			t.Fatalf("kaopu phone answer exited %d, want 0:\n%s", code, ph.Output())
		}
		if _, err := ph.WaitOutput(0, `^incoming call from sip:carol@`); err != nil {
			t.Error(err)
		}
		checkToneFile(t, rec, bobTone, aliceTone, callLength-time.Second)
		if _, err := caller.WaitOutput(5*time.Second, `Call with sip:\S+ terminated`); err != nil {
			t.Fatal(err)
		}
		caller.Stop()
		files := caller.Recordings()
		if len(files) != 1 {
			t.Fatalf("baresip recordings %q, want 1", files)
		}
		checkToneFile(t, files[0], aliceTone, bobTone, callLength-time.Second)
	})

	t.Run("register over tcp and tls", func(t *testing.T) {
		for _, c := range []struct{ transport, addr string }{{"tcp", srv.SIPAddr()}, {"tls", srv.SIPSAddr()}} {
			out, code := harness.RunCLI(t, "phone", "msg", "nobody", "hi", "--server", c.addr, "--transport", c.transport,
				"--insecure-tls", "--user", "alice", "--password", "alice-secret-1", "--domain", srv.Domain)
			// Registered (digest over that transport), then the MESSAGE is
			// refused: nobody is no user.
			if code != 1 || !strings.Contains(out, "registered as sip:alice@"+srv.Domain) {
				t.Errorf("%s: exit %d, want 1 after registering:\n%s", c.transport, code, out)
			}
		}
		if _, err := srv.WaitLog(5*time.Second, `msg="binding added" aor=alice .*transport=TLS`); err != nil {
			t.Error(err)
		}
	})

	t.Run("unanswered call exits 1", func(t *testing.T) {
		rec := filepath.Join(t.TempDir(), "heard.wav") // WAV audio: this machine has no sound card
		out, code := harness.RunCLI(t, "phone", "call", "nobody", "--server", srv.SIPAddr(), "--user", "alice",
			"--password", "alice-secret-1", "--domain", srv.Domain, "--record", rec)
		if code != 1 || !strings.Contains(out, "not answered") || !strings.Contains(out, "404") {
			t.Errorf("call to an unknown user: exit %d, want 1 with 404:\n%s", code, out)
		}
		out, code = harness.RunCLI(t, "phone", "call", "bob", "--server", srv.SIPAddr(), "--user", "alice",
			"--password", "wrong-password", "--domain", srv.Domain, "--record", rec)
		if code != 1 || !strings.Contains(out, "403") && !strings.Contains(out, "401") {
			t.Errorf("wrong password: exit %d, want 1 with a registration failure:\n%s", code, out)
		}
	})
}

// TestPhoneDirect: two kaopu phones call each other by IP with no server:
// each hears the other's tone; DTMF and instant messages cross.
func TestPhoneDirect(t *testing.T) {
	// Long enough that the DTMF (which replaces audio while it is sent, RFC
	// 4733) stays under a tenth of the call.
	const callLength = 6 * time.Second
	dir := t.TempDir()
	port := harness.FreePort(t, "both")
	bobAddr := fmt.Sprintf("127.0.0.1:%d", port)
	bobRec, aliceRec := filepath.Join(dir, "bob-heard.wav"), filepath.Join(dir, "alice-heard.wav")
	bob := harness.StartPhone(t, "bob", nil, nil, "answer", "--listen", bobAddr, "--user", "bob",
		"--play", toneFile(t, dir, "bob.wav", bobTone, 10*time.Second), "--record", bobRec)
	if _, err := bob.WaitOutput(5*time.Second, `^listening on sip:bob@`+regexp.QuoteMeta(bobAddr)); err != nil {
		t.Fatal(err)
	}
	out, code := harness.RunCLI(t, "phone", "msg", "sip:bob@"+bobAddr, "hello bob, no server here", "--listen", "127.0.0.1:0", "--user", "alice")
	if code != 0 {
		t.Fatalf("kaopu phone msg exited %d:\n%s", code, out)
	}
	if _, err := bob.WaitOutput(5*time.Second, `^message from sip:alice@127\.0\.0\.1\S*: hello bob, no server here$`); err != nil {
		t.Fatal(err)
	}
	alice := harness.StartPhone(t, "alice", nil, nil, "call", "sip:bob@"+bobAddr, "--listen", "127.0.0.1:0", "--user", "alice",
		"--play", toneFile(t, dir, "alice.wav", aliceTone, 10*time.Second), "--record", aliceRec,
		"--duration", callLength.String(), "--dtmf", "2*7")
	if code := alice.Wait(20 * time.Second); code != 0 {
		t.Fatalf("caller exited %d, want 0", code)
	}
	if code := bob.Wait(10 * time.Second); code != 0 {
		t.Fatalf("answerer exited %d, want 0", code)
	}
	for _, d := range []string{"2", `\*`, "7"} {
		if _, err := bob.WaitOutput(0, `^dtmf received: `+d+`$`); err != nil {
			t.Error(err)
		}
	}
	checkToneFile(t, aliceRec, bobTone, aliceTone, callLength-time.Second)
	checkToneFile(t, bobRec, aliceTone, bobTone, callLength-time.Second)
}

// TestPhoneInteractiveTmux drives the prompt as a person would, in a
// terminal (tmux): call, see the call answered and its status line, send
// DTMF, hold and resume, exchange messages, hang up, quit.
func TestPhoneInteractiveTmux(t *testing.T) {
	tmux := harness.RequireTool(t, "tmux", "tmux")
	dir := t.TempDir()
	port := harness.FreePort(t, "both")
	bobAddr := fmt.Sprintf("127.0.0.1:%d", port)
	bob := harness.StartPhone(t, "bob", nil, nil, "answer", "--listen", bobAddr, "--user", "bob",
		"--play", toneFile(t, dir, "bob.wav", bobTone, 30*time.Second))
	if _, err := bob.WaitOutput(5*time.Second, `^listening on `); err != nil {
		t.Fatal(err)
	}
	alicePort := harness.FreePort(t, "both")
	aliceAddr := fmt.Sprintf("127.0.0.1:%d", alicePort)

	// A tmux server of our own (its own socket), killed at the end.
	sock := fmt.Sprintf("kaopu-test-%d", os.Getpid())
	run := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { run("kill-server") })
	// WAV audio: the test machine has no sound card.
	cmd := fmt.Sprintf("%s phone --listen %s --user alice --log-level error --record %s", harness.Binary(t), aliceAddr,
		filepath.Join(dir, "alice-heard.wav"))
	if out, err := run("new-session", "-d", "-s", "phone", "-x", "200", "-y", "50", cmd); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	screen := func() string { out, _ := run("capture-pane", "-p", "-t", "phone", "-S", "-200"); return out }
	waitScreen := func(pattern string) {
		t.Helper()
		re := regexp.MustCompile(pattern)
		deadline := time.Now().Add(10 * time.Second)
		for !re.MatchString(screen()) {
			if time.Now().After(deadline) {
				t.Fatalf("the screen never showed %q:\n%s", pattern, screen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	typeLine := func(s string) {
		t.Helper()
		if out, err := run("send-keys", "-t", "phone", s, "Enter"); err != nil {
			t.Fatalf("tmux send-keys: %v\n%s", err, out)
		}
	}
	waitScreen(`type "help" for commands`)
	typeLine("status")
	waitScreen(`\[idle\] not registered, listening on ` + regexp.QuoteMeta(aliceAddr))
	typeLine("call sip:bob@" + bobAddr)
	waitScreen(`answered: sip:bob@\S+ codec PCMU`)
	// The status line is redrawn every second on a terminal.
	waitScreen(`\[active\] sip:bob@\S+ codec=PCMU srtp=true jitter=[0-9.]+ms loss=[0-9.]+% in=[1-9]`)
	typeLine("dtmf 42")
	waitScreen(`dtmf sent: 42`)
	if _, err := bob.WaitOutput(5*time.Second, `^dtmf received: 2$`); err != nil {
		t.Fatal(err)
	}
	typeLine("hold")
	waitScreen(`on hold`)
	waitScreen(`\[held\] `)
	typeLine("resume")
	waitScreen(`resumed`)
	typeLine("msg sip:bob@" + bobAddr + " typed in tmux")
	waitScreen(`message sent to sip:bob@`)
	if _, err := bob.WaitOutput(5*time.Second, `^message from sip:alice@\S+: typed in tmux$`); err != nil {
		t.Fatal(err)
	}
	out, code := harness.RunCLI(t, "phone", "msg", "sip:alice@"+aliceAddr, "hello tmux", "--listen", "127.0.0.1:0", "--user", "carol")
	if code != 0 {
		t.Fatalf("kaopu phone msg exited %d:\n%s", code, out)
	}
	waitScreen(`message from sip:carol@\S+: hello tmux`)
	typeLine("hangup")
	waitScreen(`call ended: 200 we hung up`)
	if code := bob.Wait(10 * time.Second); code != 0 {
		t.Errorf("bob exited %d", code)
	}
	typeLine("quit")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, err := run("has-session", "-t", "phone"); err != nil {
			break // the phone exited and took its session with it
		} else if time.Now().After(deadline) {
			t.Fatalf("the phone did not quit:\n%s\n%s", out, screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPhoneWithoutSoundCard: a call without WAV files needs the sound
// card; the binary the tests build has none (nor does this machine), and
// says so, with the WAV flags to use instead, before it calls anyone.
func TestPhoneWithoutSoundCard(t *testing.T) {
	out, code := harness.RunCLI(t, "phone", "call", "sip:bob@127.0.0.1:9", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(out, "sound card") || !strings.Contains(out, "--play FILE") ||
		!strings.Contains(out, "--record FILE") || strings.Contains(out, "calling") {
		t.Errorf("call without a sound card or WAV files: exit %d, want 1 naming the sound card and the WAV flags:\n%s", code, out)
	}
}
