package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/ua"
)

const promptHelp = `commands:
  call TARGET        call an extension, a user or sip:user@host:port
  answer             answer the ringing call
  reject             refuse the ringing call (486 Busy Here)
  hangup             end (or cancel) the current call
  hold | resume      put the current call on hold, take it off
  dtmf DIGITS        send DTMF (0-9 * # A-D)
  transfer TARGET    blind-transfer the current call
  msg TARGET TEXT    send an instant message
  status             show the current call's state and quality
  quit               hang up, unregister and leave`

// interactive runs the prompt: one command per line from stdin, events
// printed as they happen, and while a call is up a status line (state,
// codec, jitter, loss) redrawn every second on a terminal.
func (p *phone) interactive(cfg ua.Config) int {
	if !p.openAudio() {
		return exitFail
	}
	defer p.closeAudio()
	if err := p.start(cfg, func(c *ua.Call) {
		p.mu.Lock()
		p.ringing = append(p.ringing, c)
		p.mu.Unlock()
		if p.flags.auto {
			go p.answerCall(c)
		} else {
			p.out.printf("type \"answer\" or \"reject\"\n")
		}
	}); err != nil {
		fmt.Fprintf(p.stderr, "kaopu phone: %v\n", err)
		return exitFail
	}
	defer p.agent.Close()
	p.out.printf("type \"help\" for commands\n")
	if f, ok := p.stdout.(*os.File); ok && isTerminal(f) {
		go p.statusTicker()
	}

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(p.stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	p.out.printf("> ")
	for {
		select {
		case <-p.ctx.Done():
			return exitOK
		case line, ok := <-lines:
			if !ok {
				return exitOK
			}
			if quit := p.command(strings.TrimSpace(line)); quit {
				return exitOK
			}
			p.out.printf("> ")
		}
	}
}

func (p *phone) statusTicker() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			if c := p.active(); c != nil && c.State() != ua.StateEnded {
				// Redraw one line: carriage return, clear to end of line.
				p.out.printf("\r\x1b[K%s\n> ", statsLine(c))
			}
		}
	}
}

// active is the call the commands act on: the current one if it is not
// over.
func (p *phone) active() *ua.Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != nil && p.current.State() == ua.StateEnded {
		p.current = nil
	}
	return p.current
}

func (p *phone) nextRinging() *ua.Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ringing) > 0 {
		c := p.ringing[0]
		p.ringing = p.ringing[1:]
		if c.State() == ua.StateIncoming {
			return c
		}
	}
	return nil
}

func (p *phone) answerCall(c *ua.Call) {
	if cur := p.active(); cur != nil {
		p.out.printf("hang up the current call first\n")
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	p.mu.Lock()
	p.current = c
	p.mu.Unlock()
	if err := c.Answer(ctx, p.audio()); err != nil {
		p.out.printf("answer: %v\n", err)
	}
}

// command runs one prompt line and reports whether to quit.
func (p *phone) command(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	need := func() *ua.Call {
		c := p.active()
		if c == nil {
			p.out.printf("no call\n")
		}
		return c
	}
	report := func(what string, err error) {
		if err != nil {
			p.out.printf("%s: %v\n", what, err)
		}
	}
	switch cmd := strings.ToLower(f[0]); cmd {
	case "help", "?":
		p.out.printf("%s\n", promptHelp)
	case "quit", "exit":
		return true
	case "call", "dial":
		if len(f) != 2 {
			p.out.printf("usage: call TARGET\n")
			break
		}
		if p.active() != nil {
			p.out.printf("hang up the current call first\n")
			break
		}
		c, err := p.agent.Dial(ctx, f[1], p.audio())
		if err != nil {
			report("call", err)
			break
		}
		p.mu.Lock()
		p.current = c
		p.mu.Unlock()
		p.out.printf("calling %s\n", c.Peer())
	case "answer":
		c := p.nextRinging()
		if c == nil {
			p.out.printf("no incoming call\n")
			break
		}
		p.answerCall(c)
	case "reject":
		c := p.nextRinging()
		if c == nil {
			p.out.printf("no incoming call\n")
			break
		}
		report("reject", c.Reject(ctx, 486, "Busy Here"))
	case "hangup", "bye":
		if c := need(); c != nil {
			report("hangup", c.Hangup(ctx))
		}
	case "hold":
		if c := need(); c != nil {
			report("hold", c.Hold(ctx))
		}
	case "resume", "unhold":
		if c := need(); c != nil {
			err := c.Resume(ctx)
			report("resume", err)
			if err == nil {
				p.out.printf("resumed\n")
			}
		}
	case "dtmf":
		if len(f) != 2 {
			p.out.printf("usage: dtmf DIGITS\n")
			break
		}
		if c := need(); c != nil {
			err := c.SendDTMF(ctx, f[1])
			report("dtmf", err)
			if err == nil {
				p.out.printf("dtmf sent: %s\n", f[1])
			}
		}
	case "transfer", "xfer":
		if len(f) != 2 {
			p.out.printf("usage: transfer TARGET\n")
			break
		}
		if c := need(); c != nil {
			report("transfer", c.Transfer(ctx, f[1]))
		}
	case "msg", "message":
		if len(f) < 3 {
			p.out.printf("usage: msg TARGET TEXT\n")
			break
		}
		err := p.agent.SendMessage(ctx, f[1], strings.Join(f[2:], " "))
		report("msg", err)
		if err == nil {
			p.out.printf("message sent to %s\n", f[1])
		}
	case "status":
		if c := p.active(); c != nil {
			p.out.printf("%s\n", statsLine(c))
		} else {
			reg := "not registered"
			if p.agent.Registered() {
				reg = "registered as " + p.agent.AOR()
			}
			p.out.printf("[idle] %s, listening on %s\n", reg, p.agent.LocalAddr())
		}
	default:
		p.out.printf("unknown command %q; type \"help\"\n", cmd)
	}
	return false
}
