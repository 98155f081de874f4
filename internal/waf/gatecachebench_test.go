//go:build unix

package waf

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// BenchmarkGETUniqueArgs is BenchmarkGET with an id and a search never
// sent before on every request: the argument cache's worst case
// (gatecache.go), every lookup a miss.
func BenchmarkGETUniqueArgs(b *testing.B) {
	w, err := New(Config{StockCRS: *benchStock})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for i := range b.N {
		r := httptest.NewRequest("GET", fmt.Sprintf("/products?id=%d&q=blue+shoes+%x&sort=price", 1000+i, i*2654435761), http.NoBody)
		r.Header.Set("Host", "localhost")
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
		r.Header.Set("Accept", "text/html,application/json")
		tx := w.Begin(nil)
		if _, err := tx.Request(r, "127.0.0.1:4000"); err != nil {
			b.Fatal(err)
		}
		tx.Close()
	}
}
