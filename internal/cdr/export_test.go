package cdr_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/cdr"
	"github.com/kaopu/kaopu/internal/store"
)

func TestWriteCSV(t *testing.T) {
	recs := []store.CDR{
		{ID: 1, CallID: "a@h", Caller: "+8613800000000", Callee: "=HYPERLINK(\"http://x\")", Dialed: "-2+3",
			Start: at(0).Add(5 * time.Millisecond), Answer: at(2), End: at(12), Duration: 12, Billsec: 10,
			Disposition: store.DispositionAnswered, Cause: 200, Codec: "PCMU",
			Legs:  []store.LegStats{{Leg: "callee", PacketsIn: 5, PacketsOut: 6, Lost: -1, JitterMs: 0.25}},
			Trunk: "carrier", Number: "+4930123456", TrunkAnswer: at(2)},
		{ID: 2, CallID: "b@h", Caller: "@SUM(1)", Start: at(20), Active: true},
	}
	var b bytes.Buffer
	if err := cdr.WriteCSV(&b, recs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		cdr.CSVHeader(),
		{"1", "a@h", "+8613800000000", "'=HYPERLINK(\"http://x\")", "'-2+3",
			"2024-05-01T10:00:00.005Z", "2024-05-01T10:00:02.000Z", "2024-05-01T10:00:12.000Z", "12", "10",
			"ANSWERED", "200", "PCMU", "", "false",
			"", "", "", "", "5", "6", "-1", "0.25",
			"", "", "", "", "", "", // not rated
			"carrier", "+4930123456", "2024-05-01T10:00:02.000Z"},
		{"2", "b@h", "'@SUM(1)", "", "", "2024-05-01T10:00:20.000Z", "", "", "0", "0", "", "0", "", "", "true",
			"", "", "", "", "", "", "", "",
			"", "", "", "", "", "",
			"", "", ""},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("CSV:\n got %q\nwant %q", rows, want)
	}
}

func TestWriteJSON(t *testing.T) {
	for _, n := range []int{0, 1, 2} {
		recs := []store.CDR{
			{ID: 1, CallID: "a", Start: at(0), Answer: at(1), End: at(3), Duration: 3, Billsec: 2, Disposition: store.DispositionAnswered,
				Cause: 200, Legs: []store.LegStats{{Leg: "caller", PacketsIn: 1 << 60, BytesOut: 9, StrangersDropped: 4, JitterMs: 1.5}},
				Trunk: "carrier", Number: "+4930123456", TrunkAnswer: at(2)},
			{ID: 2, CallID: "b", Start: at(5), Active: true},
		}[:n]
		var b bytes.Buffer
		if err := cdr.WriteJSON(&b, recs); err != nil {
			t.Fatal(err)
		}
		var raw []map[string]any
		if err := json.Unmarshal(b.Bytes(), &raw); err != nil || len(raw) != n {
			t.Fatalf("%d records: %v, %q", n, err, b.String())
		}
		var got []cdr.Record
		json.Unmarshal(b.Bytes(), &got)
		for i, r := range recs {
			if want := cdr.ToRecord(r); !reflect.DeepEqual(got[i], want) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want)
			}
		}
		if n == 2 {
			if raw[1]["answer"] != nil || raw[1]["end"] != nil || raw[0]["answer"] != "2024-05-01T10:00:01.000Z" ||
				raw[0]["trunk"] != "carrier" || raw[0]["trunk_answer"] != "2024-05-01T10:00:02.000Z" || raw[1]["trunk_answer"] != nil {
				t.Errorf("times: %v / %v", raw[0], raw[1])
			}
			if got[0].Legs[0].PacketsIn != 1<<60 || len(got[1].Legs) != 0 || raw[1]["legs"] == nil {
				t.Errorf("legs: %+v, %v", got[0].Legs, raw[1]["legs"])
			}
		}
	}
}
