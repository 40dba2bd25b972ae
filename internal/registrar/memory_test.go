package registrar

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/kaopu/kaopu/internal/store"
)

// BenchmarkLocationMemory reports the heap one registration costs in the
// location table (the target: 100,000 bindings in < 150 MB RSS).
func BenchmarkLocationMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		now := time.Now()
		loc := NewLocation(&memStore{}, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
		loc.ops = make(chan store.BindingOp, n+1)
		for i := range n {
			aor := fmt.Sprintf("u%d", 100000+i)
			loc.Modify(aor, func([]store.Binding) ([]store.Binding, error) {
				return []store.Binding{{AOR: aor, Contact: fmt.Sprintf("sip:%s@127.0.0.1:%d", aor, 20000+i%40000),
					Source: fmt.Sprintf("127.0.0.1:%d", 20000+i%40000), Transport: "UDP",
					CallID: fmt.Sprintf("%d-12345@127.0.0.1", i), CSeq: 2, Expires: now.Add(time.Hour), Updated: now}}, nil
			})
		}
		loc.ops = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/binding")
		runtime.KeepAlive(loc)
	}
}
