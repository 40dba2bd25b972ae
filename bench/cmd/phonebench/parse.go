package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// phoneOut is what one `kaopu phone call|answer` printed on stdout.
type phoneOut struct {
	Answered   bool
	Codec      string // from "answered: PEER codec C srtp B"
	SRTP       bool
	MediaStart time.Time // "media started at T"
	// From the last status line: "[state] PEER codec=C srtp=B jitter=Jms
	// loss=L% in=N out=N concealed=N".
	HaveStats          bool
	JitterMs, LossPct  float64
	In, Out, Concealed int
}

// parsePhoneOut reads a phone's stdout.
func parsePhoneOut(text string) (phoneOut, error) {
	var o phoneOut
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "answered: "):
			o.Answered = true
			f := strings.Fields(line)
			for i := 0; i+1 < len(f); i++ {
				switch f[i] {
				case "codec":
					o.Codec = f[i+1]
				case "srtp":
					o.SRTP = f[i+1] == "true"
				}
			}
		case strings.HasPrefix(line, "media started at "):
			t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "media started at "))
			if err != nil {
				return o, fmt.Errorf("media start: %w", err)
			}
			o.MediaStart = t
		case strings.HasPrefix(line, "[") && strings.Contains(line, " codec=") && strings.Contains(line, " concealed="):
			o.HaveStats = true
			for _, kv := range strings.Fields(line) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					continue
				}
				switch k {
				case "jitter":
					o.JitterMs, _ = strconv.ParseFloat(strings.TrimSuffix(v, "ms"), 64)
				case "loss":
					o.LossPct, _ = strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
				case "in":
					o.In, _ = strconv.Atoi(v)
				case "out":
					o.Out, _ = strconv.Atoi(v)
				case "concealed":
					o.Concealed, _ = strconv.Atoi(v)
				}
			}
		}
	}
	if !o.Answered {
		return o, errors.New("no \"answered:\" line")
	}
	if o.MediaStart.IsZero() {
		return o, errors.New("no \"media started at\" line")
	}
	return o, nil
}

// parseProcStat returns utime+stime (clock ticks) from /proc/PID/stat.
func parseProcStat(b []byte) (int64, error) {
	// The command name is in parentheses and may hold spaces; the fields
	// after it are: state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime ...
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' in stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime")
	}
	return ut + st, nil
}

// parseMachineStat returns busy and total jiffies of all CPUs from the
// first line of /proc/stat (busy: all but idle and iowait; guest time is
// already in user).
func parseMachineStat(b []byte) (busy, total int64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("no cpu line")
	}
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total, nil
}
