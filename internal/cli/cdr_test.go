package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/store"
	"github.com/kaopu/kaopu/internal/store/sqlite"
)

var cdrT0 = time.Date(2024, 5, 1, 23, 0, 0, 0, time.UTC)

// seedCDRs writes three calls into the store of data dir: an answered one
// on May 1st, a busy one and one still active on May 2nd (UTC).
func seedCDRs(t *testing.T, data string) []store.CDR {
	t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(data, "kaopu.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs := []store.CDR{
		{CallID: "c1@host", Caller: "alice", Callee: "bob", Dialed: "1002", Start: cdrT0, Answer: cdrT0.Add(3 * time.Second),
			End: cdrT0.Add(63 * time.Second), Duration: 63, Billsec: 60, Disposition: store.DispositionAnswered, Cause: 200, Codec: "PCMU",
			Legs: []store.LegStats{
				{Leg: "caller", PacketsIn: 3000, PacketsOut: 2999, BytesIn: 516000, BytesOut: 515828, Lost: 1, JitterMs: 2.25, StrangersDropped: 3},
				{Leg: "callee", PacketsIn: 2999, PacketsOut: 3000, BytesIn: 515828, BytesOut: 516000, JitterMs: 0.5},
			}},
		{CallID: "c2@host", Caller: "bob", Callee: "carol", Dialed: "carol", Start: cdrT0.Add(2 * time.Hour),
			End: cdrT0.Add(2*time.Hour + 4*time.Second), Duration: 4, Disposition: store.DispositionBusy, Cause: 486},
		{CallID: "c3@host", Caller: "carol", Callee: "sip:dave@example.org", Dialed: "dave", Start: cdrT0.Add(3 * time.Hour),
			Answer: cdrT0.Add(3*time.Hour + time.Second), Codec: "G722", Active: true},
	}
	for i := range recs {
		c := &recs[i]
		id, err := st.StartCDR(ctx, *c)
		if err != nil {
			t.Fatal(err)
		}
		c.ID = id
		if !c.Active {
			if err := st.EndCDR(ctx, id, *c); err != nil {
				t.Fatal(err)
			}
		}
	}
	return recs
}

func TestCDRList(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	seedCDRs(t, data)
	code, out, errOut := run(t, "", "cdr", "list", "--data", data)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows, got %q", out)
	}
	wantRows := [][]string{
		{"START", "CALLER", "CALLEE", "DIALED", "DISPOSITION", "CAUSE", "DURATION", "BILLSEC", "CODEC", "FLAGS"},
		{"2024-05-01T23:00:00Z", "alice", "bob", "1002", "ANSWERED", "200", "63", "60", "PCMU", "-"},
		{"2024-05-02T01:00:00Z", "bob", "carol", "carol", "BUSY", "486", "4", "0", "-", "-"},
		{"2024-05-02T02:00:00Z", "carol", "sip:dave@example.org", "dave", "ACTIVE", "-", "0", "0", "G722", "-"},
	}
	for i, l := range lines {
		if got := strings.Fields(l); !reflect.DeepEqual(got, wantRows[i]) {
			t.Errorf("line %d = %q, want %q", i, got, wantRows[i])
		}
	}

	// Date filters: a --to day is included whole; RFC 3339 bounds are exact.
	filters := []struct {
		args    []string
		callers []string
	}{
		{[]string{"--from", "2024-05-02"}, []string{"bob", "carol"}},
		{[]string{"--to", "2024-05-01"}, []string{"alice"}},
		{[]string{"--from", "2024-05-01", "--to", "2024-05-01"}, []string{"alice"}},
		{[]string{"--from", "2024-05-02T09:00:00+08:00", "--to", "2024-05-02T02:00:00Z"}, []string{"bob"}},
		{[]string{"--limit", "2"}, []string{"bob", "carol"}},
		{[]string{"--limit", "0"}, []string{"alice", "bob", "carol"}},
		{[]string{"--from", "2024-06-01"}, nil},
	}
	for _, f := range filters {
		code, out, errOut := run(t, "", append([]string{"cdr", "list", "--data", data}, f.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", f.args, code, errOut)
		}
		var callers []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			callers = append(callers, strings.Fields(l)[1])
		}
		if !reflect.DeepEqual(callers, f.callers) {
			t.Errorf("cdr list %v: callers %q, want %q", f.args, callers, f.callers)
		}
		if limited := strings.Contains(errOut, "latest 2"); limited != (f.args[0] == "--limit" && f.args[1] == "2") {
			t.Errorf("cdr list %v: stderr %q", f.args, errOut)
		}
	}
}

func TestCDRExportCSV(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	recs := seedCDRs(t, data)
	code, out, errOut := run(t, "", "cdr", "export", "--format", "csv", "--data", data)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(recs) || !reflect.DeepEqual(rows[0], cdr.CSVHeader()) {
		t.Fatalf("rows %q", rows)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, c := range recs {
		row := rows[i+1]
		get := func(name string) string { return row[col[name]] }
		parsed := store.CDR{CallID: get("call_id"), Caller: get("caller"), Callee: get("callee"), Dialed: get("dialed"),
			Disposition: get("disposition"), Codec: get("codec"), Flags: get("flags"), Active: get("active") == "true"}
		fmt.Sscan(get("id"), &parsed.ID)
		fmt.Sscan(get("duration"), &parsed.Duration)
		fmt.Sscan(get("billsec"), &parsed.Billsec)
		fmt.Sscan(get("cause"), &parsed.Cause)
		for _, tf := range []struct {
			name string
			dst  *time.Time
		}{{"start", &parsed.Start}, {"answer", &parsed.Answer}, {"end", &parsed.End}} {
			if s := get(tf.name); s != "" {
				tm, err := time.Parse(time.RFC3339, s)
				if err != nil {
					t.Fatalf("%s %q is not RFC 3339: %v", tf.name, s, err)
				}
				*tf.dst = tm
			}
		}
		want := c
		want.Legs = nil
		if !reflect.DeepEqual(parsed, want) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, parsed, want)
		}
	}
	// The legs are summarised.
	if r := rows[1]; r[col["caller_packets_in"]] != "3000" || r[col["caller_lost"]] != "1" || r[col["caller_jitter_ms"]] != "2.25" ||
		r[col["callee_packets_out"]] != "3000" || rows[2][col["caller_packets_in"]] != "" {
		t.Errorf("leg summary: %q / %q", rows[1], rows[2])
	}
	// Without --format, CSV; with a range, only that range.
	code, out, _ = run(t, "", "cdr", "export", "--data", data, "--from", "2024-05-02", "--to", "2024-05-02T02:00:00Z")
	if rows, _ := csv.NewReader(strings.NewReader(out)).ReadAll(); code != 0 || len(rows) != 2 || rows[1][col["call_id"]] != "c2@host" {
		t.Fatalf("filtered export: %d %q", code, out)
	}
}

func TestCDRExportJSON(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	recs := seedCDRs(t, data)
	code, out, errOut := run(t, "", "cdr", "export", "--data", data, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []struct {
		ID          int64      `json:"id"`
		CallID      string     `json:"call_id"`
		Caller      string     `json:"caller"`
		Callee      string     `json:"callee"`
		Dialed      string     `json:"dialed"`
		Start       time.Time  `json:"start"`
		Answer      *time.Time `json:"answer"`
		End         *time.Time `json:"end"`
		Duration    int        `json:"duration"`
		Billsec     int        `json:"billsec"`
		Disposition string     `json:"disposition"`
		Cause       int        `json:"cause"`
		Codec       string     `json:"codec"`
		Flags       string     `json:"flags"`
		Active      bool       `json:"active"`
		Legs        []struct {
			Leg              string  `json:"leg"`
			PacketsIn        uint64  `json:"packets_in"`
			PacketsOut       uint64  `json:"packets_out"`
			BytesIn          uint64  `json:"bytes_in"`
			BytesOut         uint64  `json:"bytes_out"`
			Lost             int64   `json:"lost"`
			JitterMs         float64 `json:"jitter_ms"`
			StrangersDropped uint64  `json:"strangers_dropped"`
		} `json:"legs"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i, g := range got {
		parsed := store.CDR{ID: g.ID, CallID: g.CallID, Caller: g.Caller, Callee: g.Callee, Dialed: g.Dialed,
			Start: g.Start, Duration: g.Duration, Billsec: g.Billsec, Disposition: g.Disposition, Cause: g.Cause,
			Codec: g.Codec, Flags: g.Flags, Active: g.Active}
		if g.Answer != nil {
			parsed.Answer = *g.Answer
		}
		if g.End != nil {
			parsed.End = *g.End
		}
		for _, l := range g.Legs {
			parsed.Legs = append(parsed.Legs, store.LegStats(l))
		}
		if !reflect.DeepEqual(parsed, recs[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, parsed, recs[i])
		}
	}
	// An empty range is an empty array, not null.
	if _, out, _ := run(t, "", "cdr", "export", "--data", data, "--format", "json", "--from", "2030-01-01"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty export = %q", out)
	}
}

func TestCDRUsage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cdr"}, 2, "Usage"},
		{[]string{"cdr", "frob"}, 2, "unknown subcommand"},
		{[]string{"cdr", "export", "--format", "xml", "--data", data}, 2, "csv or json"},
		{[]string{"cdr", "list", "--from", "yesterday", "--data", data}, 2, "RFC 3339"},
		{[]string{"cdr", "list", "--to", "2024-13-01", "--data", data}, 2, "--to"},
		{[]string{"cdr", "list", "--limit", "-1", "--data", data}, 2, "--limit"},
		{[]string{"cdr", "list", "--format", "json", "--data", data}, 2, "does not apply"},
		{[]string{"cdr", "export", "--limit", "3", "--data", data}, 2, "does not apply"},
		{[]string{"cdr", "list", "extra", "--data", data}, 2, "unexpected argument"},
		{[]string{"cdr", "list", "--db", "postgres://x/y"}, 1, "PostgreSQL"},
	}
	for _, tc := range tests {
		code, _, errOut := run(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("kaopu %s: exit %d, %q; want %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.msg)
		}
	}
	// An empty store lists just the header.
	if code, out, _ := run(t, "", "cdr", "list", "--data", data); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("empty list: %d %q", code, out)
	}
}

func TestCDRListSanitisesCallerIDs(t *testing.T) {
	data := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "kaopu.db"))
	if err == nil {
		_, err = st.StartCDR(context.Background(), store.CDR{CallID: "x", Caller: "evil\x1b[2J\tname", Start: cdrT0})
		st.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	_, out, _ := run(t, "", "cdr", "list", "--data", data)
	if strings.Contains(out, "\x1b") || !strings.Contains(out, "evil?[2J?name") {
		t.Fatalf("list = %q", out)
	}
}
