package web

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram(100*time.Microsecond, time.Millisecond)
	for _, d := range []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 101 * time.Microsecond, 999 * time.Microsecond, 2 * time.Millisecond} {
		h.Observe(d)
	}
	got := map[string]float64{}
	for _, m := range h.Metrics("x_seconds", "help") {
		got[m.Name+m.Labels] = m.Value
	}
	want := map[string]float64{
		`x_seconds_bucket{le="0.0001"}`: 2, // 50 µs and exactly 100 µs (le is inclusive)
		`x_seconds_bucket{le="0.001"}`:  4,
		`x_seconds_bucket{le="+Inf"}`:   5,
		`x_seconds_count`:               5,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if sum := got["x_seconds_sum"]; sum < 0.00324 || sum > 0.00326 {
		t.Errorf("sum %v s, want 0.00325", sum)
	}
	if h.Count() != 5 {
		t.Errorf("Count %d, want 5", h.Count())
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram(time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.Observe(time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 {
		t.Fatalf("Count %d, want 8000", h.Count())
	}
}

// The text format names a histogram's family once, with TYPE histogram,
// before its _bucket, _sum and _count samples.
func TestMetricsHistogramFamily(t *testing.T) {
	h := NewHistogram(time.Millisecond)
	h.Observe(time.Microsecond)
	ms := append(h.Metrics("kaopu_x_seconds", "How long x took."), Gauge("kaopu_a", "A.", 1))
	srv := httptest.NewServer(Handler(func() bool { return true }, func() []Metric { return ms }))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		"# HELP kaopu_x_seconds How long x took.\n# TYPE kaopu_x_seconds histogram\n",
		"kaopu_x_seconds_bucket{le=\"0.001\"} 1\nkaopu_x_seconds_bucket{le=\"+Inf\"} 1\nkaopu_x_seconds_count 1\nkaopu_x_seconds_sum 1e-06\n",
		"# TYPE kaopu_a gauge\nkaopu_a 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "# TYPE kaopu_x_seconds"); n != 1 {
		t.Errorf("%d TYPE lines for the histogram, want 1:\n%s", n, body)
	}
}
