package cdr

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// TimeFormat is how exported times are written: RFC 3339 in UTC with
// milliseconds, the precision the store keeps.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// CSVHeader returns the header row of WriteCSV. Per-leg media counters
// are summarised for the "caller" and "callee" legs; WriteJSON has them
// all.
func CSVHeader() []string {
	return []string{
		"id", "call_id", "caller", "callee", "dialed",
		"start", "answer", "end", "duration", "billsec",
		"disposition", "cause", "codec", "flags", "active",
		"caller_packets_in", "caller_packets_out", "caller_lost", "caller_jitter_ms",
		"callee_packets_in", "callee_packets_out", "callee_lost", "callee_jitter_ms",
		"account", "destination", "rate", "billed", "cost", "currency",
		"trunk", "number", "trunk_answer",
	}
}

// WriteCSV writes records as CSV with a CSVHeader row. The rating columns
// (account to currency) are empty on calls that were not rated; rate and
// cost are exact decimals in the currency. trunk, number and
// trunk_answer describe the outbound leg through a trunk (empty when
// there was none). Times absent from a record are empty cells. Text cells
// that a spreadsheet would run as a formula (caller IDs come from the
// network) get a leading apostrophe;
// E.164 numbers such as +8613800000000 are left as they are.
func WriteCSV(w io.Writer, recs []store.CDR) error {
	cw := csv.NewWriter(w)
	header := CSVHeader()
	if err := cw.Write(header); err != nil {
		return err
	}
	row := make([]string, 0, len(header))
	for _, c := range recs {
		row = append(row[:0],
			strconv.FormatInt(c.ID, 10), cell(c.CallID), cell(c.Caller), cell(c.Callee), cell(c.Dialed),
			formatTime(c.Start), formatTime(c.Answer), formatTime(c.End),
			strconv.Itoa(c.Duration), strconv.Itoa(c.Billsec),
			c.Disposition, strconv.Itoa(c.Cause), cell(c.Codec), cell(c.Flags), strconv.FormatBool(c.Active))
		for _, name := range []string{"caller", "callee"} {
			l, ok := leg(c.Legs, name)
			if !ok {
				row = append(row, "", "", "", "")
				continue
			}
			row = append(row,
				strconv.FormatUint(l.PacketsIn, 10), strconv.FormatUint(l.PacketsOut, 10),
				strconv.FormatInt(l.Lost, 10), strconv.FormatFloat(l.JitterMs, 'f', -1, 64))
		}
		if r := c.Rating; r.IsZero() {
			row = append(row, "", "", "", "", "", "")
		} else {
			row = append(row, cell(r.Account), cell(r.Destination), r.Rate.String(), strconv.Itoa(r.Billed),
				r.Cost.String(), cell(r.Currency))
		}
		row = append(row, cell(c.Trunk), cell(c.Number), formatTime(c.TrunkAnswer))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func leg(legs []store.LegStats, name string) (store.LegStats, bool) {
	for _, l := range legs {
		if l.Leg == name {
			return l, true
		}
	}
	return store.LegStats{}, false
}

// cell defuses CSV injection (OWASP): a cell starting with =, @, tab or CR,
// or with + or - not followed by a plain number, is prefixed with '.
func cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if strings.Trim(s[1:], "0123456789") != "" || len(s) == 1 {
			return "'" + s
		}
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// Record is the JSON form of a call detail record, as WriteJSON writes it.
// Answer and End are null until reached.
type Record struct {
	ID          int64   `json:"id"`
	CallID      string  `json:"call_id"`
	Caller      string  `json:"caller"`
	Callee      string  `json:"callee"`
	Dialed      string  `json:"dialed"`
	Start       string  `json:"start"`
	Answer      *string `json:"answer"`
	End         *string `json:"end"`
	Duration    int     `json:"duration"`
	Billsec     int     `json:"billsec"`
	Disposition string  `json:"disposition"`
	Cause       int     `json:"cause"`
	Codec       string  `json:"codec"`
	Flags       string  `json:"flags"`
	Active      bool    `json:"active"`
	Legs        []Leg   `json:"legs"`
	// Rating, null on calls that were not rated. Money is an exact
	// decimal string ("0.0125"), never a JSON number.
	Account     *string `json:"account"`
	Destination *string `json:"destination"`
	Rate        *string `json:"rate"`
	Billed      *int    `json:"billed"`
	Cost        *string `json:"cost"`
	Currency    *string `json:"currency"`
	// The outbound leg through a trunk: "" and null when there was none.
	Trunk       string  `json:"trunk"`
	Number      string  `json:"number"`
	TrunkAnswer *string `json:"trunk_answer"`
}

// Leg is the JSON form of store.LegStats.
type Leg struct {
	Leg              string  `json:"leg"`
	PacketsIn        uint64  `json:"packets_in"`
	PacketsOut       uint64  `json:"packets_out"`
	BytesIn          uint64  `json:"bytes_in"`
	BytesOut         uint64  `json:"bytes_out"`
	Lost             int64   `json:"lost"`
	JitterMs         float64 `json:"jitter_ms"`
	StrangersDropped uint64  `json:"strangers_dropped"`
}

// ToRecord converts a stored record to its JSON form.
func ToRecord(c store.CDR) Record {
	r := Record{
		ID: c.ID, CallID: c.CallID, Caller: c.Caller, Callee: c.Callee, Dialed: c.Dialed,
		Start: formatTime(c.Start), Answer: optTime(c.Answer), End: optTime(c.End),
		Duration: c.Duration, Billsec: c.Billsec, Disposition: c.Disposition, Cause: c.Cause,
		Codec: c.Codec, Flags: c.Flags, Active: c.Active, Legs: make([]Leg, len(c.Legs)),
		Trunk: c.Trunk, Number: c.Number, TrunkAnswer: optTime(c.TrunkAnswer),
	}
	for i, l := range c.Legs {
		r.Legs[i] = Leg(l)
	}
	if x := c.Rating; !x.IsZero() {
		rate, cost := x.Rate.String(), x.Cost.String()
		r.Account, r.Destination, r.Rate, r.Billed, r.Cost, r.Currency = &x.Account, &x.Destination, &rate, &x.Billed, &cost, &x.Currency
	}
	return r
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// WriteJSON writes records as a JSON array of Record, one per line.
func WriteJSON(w io.Writer, recs []store.CDR) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i, c := range recs {
		b, err := json.Marshal(ToRecord(c))
		if err != nil {
			return err
		}
		sep := ",\n"
		if i == 0 {
			sep = "\n"
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	end := "\n]\n"
	if len(recs) == 0 {
		end = "]\n"
	}
	_, err := io.WriteString(w, end)
	return err
}
