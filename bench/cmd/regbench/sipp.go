package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sippStats is what one sipp run reports in its -trace_stat file.
type sippStats struct {
	created, ok, failed int
	retrans             int
	timeoutRecv         int
	unexpected          int
	maxRetrans          int
	elapsed             float64 // s, start to last dump
	createSecs          float64 // s, start to the moment the last call was created
	rtdMs               float64 // mean registration time (first REGISTER to 200), ms
}

// runSipp runs one bounded sipp step: rate calls/s for secs seconds.
func (b *bench) runSipp(ctx context.Context, tag string, target string, rate, secs int) (sippStats, *proc, error) {
	var st sippStats
	calls := rate * secs
	// One sipp port for the whole run: the Contact (sip:USER@127.0.0.1:PORT)
	// stays the same from step to step, so each step refreshes the one
	// binding of every user instead of adding another.
	if b.sippPort == 0 {
		p, err := b.ports.get()
		if err != nil {
			return st, nil, err
		}
		b.sippPort = p
	}
	ctlPort, err := b.ports.get()
	if err != nil {
		return st, nil, err
	}
	dir := filepath.Join(b.tmp, "sipp", tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, nil, err
	}
	statFile := filepath.Join(dir, "stat.csv")
	argv := []string{
		b.sippBin, target,
		"-sf", b.scenario,
		"-inf", b.sippCSV,
		"-key", "domain", b.domain,
		"-auth_uri", b.domain, // digest uri = Request-URI (sip:DOMAIN), not sipp's default remote ip:port
		"-t", "u1",
		"-i", "127.0.0.1",
		"-p", strconv.Itoa(b.sippPort),
		"-r", strconv.Itoa(rate), "-rp", "1000",
		"-m", strconv.Itoa(calls),
		"-l", strconv.Itoa(max(rate*3, 100)),
		"-buff_size", "4194304",
		"-ci", "127.0.0.1", "-cp", strconv.Itoa(ctlPort),
		"-nostdin",
		"-recv_timeout", "5000",
		"-timeout", fmt.Sprintf("%ds", secs+20),
		"-trace_stat", "-stf", statFile, "-fd", "1",
		"-trace_screen", "-screen_file", filepath.Join(dir, "screen.log"),
	}
	p, err := b.procs.start("sipp-"+tag, filepath.Join(dir, "sipp.out"), dir, argv...)
	if err != nil {
		return st, nil, err
	}
	// sipp stops by itself (-m, -timeout); this is the backstop.
	wctx, cancel := context.WithTimeout(ctx, time.Duration(secs+40)*time.Second)
	defer cancel()
	werr := p.wait(wctx)
	if errors.Is(werr, context.Canceled) || errors.Is(werr, context.DeadlineExceeded) {
		return st, p, fmt.Errorf("sipp did not stop: %w", werr)
	}
	st, err = parseSippStat(statFile)
	return st, p, err
}

// parseSippStat reads the columns it needs by name from a -trace_stat file.
func parseSippStat(path string) (sippStats, error) {
	var st sippStats
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return st, fmt.Errorf("%s: no data lines", path)
	}
	col := map[string]int{}
	for i, name := range strings.Split(lines[0], ";") {
		col[name] = i
	}
	rows := make([][]string, 0, len(lines)-1)
	for _, l := range lines[1:] {
		rows = append(rows, strings.Split(l, ";"))
	}
	get := func(row []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return ""
		}
		return row[i]
	}
	num := func(row []string, name string) int {
		v, _ := strconv.Atoi(strings.TrimSpace(get(row, name)))
		return v
	}
	// Time columns look like "2026-11-24\t02:14:12.807691\t1795486452.807691".
	epoch := func(row []string, name string) float64 {
		f := strings.Split(get(row, name), "\t")
		v, _ := strconv.ParseFloat(strings.TrimSpace(f[len(f)-1]), 64)
		return v
	}
	last := rows[len(rows)-1]
	st.created = num(last, "TotalCallCreated")
	st.ok = num(last, "SuccessfulCall(C)")
	st.failed = num(last, "FailedCall(C)")
	st.retrans = num(last, "Retransmissions(C)")
	st.timeoutRecv = num(last, "FailedTimeoutOnRecv(C)")
	st.unexpected = num(last, "FailedUnexpectedMessage(C)")
	st.maxRetrans = num(last, "FailedMaxUDPRetrans(C)")
	start := epoch(last, "StartTime")
	st.elapsed = epoch(last, "CurrentTime") - start
	if d := get(last, "ResponseTime1(C)"); d != "" {
		st.rtdMs = parseSippDuration(d) * 1000
	}
	// When was the last call created? Interpolate between the periodic dump
	// before and the first dump that shows the final count.
	prevT, prevN := start, 0
	st.createSecs = st.elapsed
	for _, r := range rows {
		t, n := epoch(r, "CurrentTime"), num(r, "TotalCallCreated")
		if n >= st.created && st.created > 0 {
			if n > prevN && t > prevT {
				st.createSecs = prevT - start + (t-prevT)*float64(st.created-prevN)/float64(n-prevN)
			} else {
				st.createSecs = t - start
			}
			break
		}
		prevT, prevN = t, n
	}
	return st, nil
}

// parseSippDuration parses "HH:MM:SS:uuuuuu" (sipp's duration format) to seconds.
func parseSippDuration(s string) float64 {
	f := strings.Split(strings.TrimSpace(s), ":")
	if len(f) != 4 {
		return 0
	}
	h, _ := strconv.Atoi(f[0])
	m, _ := strconv.Atoi(f[1])
	sec, _ := strconv.Atoi(f[2])
	us, _ := strconv.Atoi(f[3])
	return float64(h*3600+m*60+sec) + float64(us)/1e6
}
