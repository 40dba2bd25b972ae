package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strconv"
)

// Metric is one sample in the Prometheus text format.
type Metric struct {
	Name, Help, Type string // Type: counter, gauge or histogram (see Histogram)
	// Labels is "" or the sample's labels as written: {trunk="a"}.
	// Samples of one name share its Help and Type.
	Labels string
	Value  float64
}

// Handler returns the HTTP handler. ready reports whether every listener is
// up; metrics returns the current samples.
func Handler(ready func() bool, metrics func() []Metric) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "starting\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		ms := metrics()
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
		for i, m := range ms {
			if f := family(m); i == 0 || family(ms[i-1]) != f {
				fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f, m.Help, f, m.Type)
			}
			fmt.Fprintf(w, "%s%s %g\n", m.Name, m.Labels, m.Value)
		}
	})
	if os.Getenv("KAOPU_PPROF") == "1" {
		// Opt-in profiling for benchmarks; never on by default.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/heap", pprof.Index)
	}
	return mux
}

// Gauge is a gauge sample.
func Gauge(name, help string, v float64) Metric {
	return Metric{Name: name, Help: help, Type: "gauge", Value: v}
}

// Counter is a counter sample.
func Counter(name, help string, v float64) Metric {
	return Metric{Name: name, Help: help, Type: "counter", Value: v}
}

// Label writes one label for Metric.Labels, its value quoted as the
// Prometheus text format wants.
func Label(name, value string) string {
	return "{" + name + "=" + strconv.Quote(value) + "}"
}
