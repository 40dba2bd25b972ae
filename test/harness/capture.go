package harness

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Capture is a tshark capture on the loopback interface, written to a
// pcap file while the test runs.
type Capture struct {
	t    testing.TB
	p    *proc
	bin  string
	File string
}

// StartCapture runs `tshark -i lo -f filter -w FILE` and returns once
// tshark says it is capturing. Stop it (by PID) with Stop; the test's end
// stops it too.
func StartCapture(t testing.TB, filter string) *Capture {
	t.Helper()
	bin := RequireTool(t, "tshark", "tshark")
	c := &Capture{t: t, bin: bin, File: filepath.Join(t.TempDir(), "capture.pcap")}
	cmd := exec.Command(bin, "-n", "-i", "lo", "-f", filter, "-w", c.File)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if c.p, err = startProc(cmd); err != nil {
		pw.Close()
		pr.Close()
		t.Fatalf("starting tshark: %v", err)
	}
	pw.Close()
	t.Cleanup(c.Stop)
	started := make(chan string, 1)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		var out []string
		for sc.Scan() {
			out = append(out, sc.Text())
			if strings.HasPrefix(sc.Text(), "Capturing on") {
				select {
				case started <- "":
				default:
				}
			}
		}
		select {
		case started <- strings.Join(out, "\n"):
		default:
		}
	}()
	select {
	case out := <-started:
		if out != "" || c.p.exited() {
			t.Fatalf("tshark did not start capturing:\n%s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tshark did not start capturing within 10 s")
	}
	t.Logf("tshark pid %d capturing %q on lo", c.p.pid(), filter)
	return c
}

// Stop ends the capture (SIGTERM by PID: tshark flushes its file).
func (c *Capture) Stop() {
	if c.p != nil && !c.p.exited() {
		c.p.stop(5 * time.Second)
	}
}

// RTPPacket is one captured UDP datagram that tshark decoded as RTP.
type RTPPacket struct {
	SrcPort, DstPort int
	PayloadType      int
	Payload          []byte // everything after the RTP header (with SRTP, the tag too)
}

// RTP reads the capture back with tshark, decoding UDP to and from ports
// as RTP (`-d udp.port==P,rtp`), and returns the packets tshark found to
// be RTP, in capture order.
func (c *Capture) RTP(ports ...int) []RTPPacket {
	c.t.Helper()
	c.Stop()
	args := []string{"-n", "-r", c.File}
	for _, p := range ports {
		args = append(args, "-d", fmt.Sprintf("udp.port==%d,rtp", p))
	}
	args = append(args, "-Y", "rtp", "-T", "fields", "-E", "separator=;",
		"-e", "udp.srcport", "-e", "udp.dstport", "-e", "rtp.p_type", "-e", "rtp.payload")
	out, err := exec.Command(c.bin, args...).Output()
	if err != nil {
		c.t.Fatalf("tshark -r %s: %v", c.File, err)
	}
	var pkts []RTPPacket
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ";")
		if len(f) != 4 {
			continue
		}
		var p RTPPacket
		p.SrcPort, _ = strconv.Atoi(f[0])
		p.DstPort, _ = strconv.Atoi(f[1])
		p.PayloadType, _ = strconv.Atoi(f[2])
		p.Payload, _ = hex.DecodeString(strings.ReplaceAll(f[3], ":", ""))
		pkts = append(pkts, p)
	}
	return pkts
}
