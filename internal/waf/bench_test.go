//go:build unix

package waf

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func benchRequest(b *testing.B, method, target, ctype, body string) {
	w, err := New(Config{StockCRS: *benchStock})
	if err != nil {
		b.Fatal(err)
	}
	benchWith(b, w, method, target, ctype, body)
}

func benchWith(b *testing.B, w *WAF, method, target, ctype, body string) {
	defer w.Close()
	b.ReportAllocs()
	// The rule set's garbage is collected before the clock starts, so
	// that cpu-ns/op counts the requests alone.
	runtime.GC()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	for range b.N {
		// An empty body is http.NoBody, as the gateway's server hands it
		// to the WAF; a reader of nothing would cost a copy buffer the
		// gateway never pays.
		var rb io.Reader = http.NoBody
		if body != "" {
			rb = strings.NewReader(body)
		}
		r := httptest.NewRequest(method, target, rb)
		r.Header.Set("Host", "localhost")
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
		r.Header.Set("Accept", "text/html,application/json")
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		tx := w.Begin(nil)
		if _, err := tx.Request(r, "127.0.0.1:4000"); err != nil {
			b.Fatal(err)
		}
		tx.Close()
	}
}

// cpuTime is the CPU time the process has used, in nanoseconds: on a
// shared machine it moves far less than the wall clock.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

var benchStock = flag.Bool("stock", false, "benchmark stock CRS without moat's rules")

func BenchmarkGET(b *testing.B) { benchRequest(b, "GET", "/products?id=42&sort=price", "", "") }

func BenchmarkJSON1K(b *testing.B) {
	body := `{"customer":{"name":"Ana Maria","email":"ana@example.com"},"items":[{"sku":"A-100","qty":2,"note":"` + strings.Repeat("a", 700) + `"}],"comment":"leave at the door, please"}`
	benchRequest(b, "POST", "/api/orders", "application/json", body)
}

func BenchmarkForm(b *testing.B) {
	benchRequest(b, "POST", "/contact", "application/x-www-form-urlencoded", "name=Ana+Mar%C3%ADa&email=ana%40example.com&comment=It%27s+a+great+product%2C+thanks%21&qty=2")
}

func BenchmarkJSON1KText(b *testing.B) {
	note := strings.Repeat("Please leave the parcel with the neighbour at number 12. ", 12)
	body := `{"customer":{"name":"Ana Maria","email":"ana@example.com"},"items":[{"sku":"A-100","qty":2,"note":"` + note + `"}],"comment":"leave at the door, please"}`
	benchRequest(b, "POST", "/api/orders", "application/json", body)
}

// BenchmarkRxEngines runs every RE2-capable @rx pattern of the rule set
// on benign text of several lengths with Go's engine and with RE2 (built
// with -tags re2_cgo, RE2 is the system's libre2; without, RE2 compiled to
// Go): where RE2 starts to win is re2MinLen.
func BenchmarkRxEngines(b *testing.B) {
	w, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	w.Close()
	var ops []*rxOp
	rxCache.Range(func(_, v any) bool {
		if o := v.(*rxCompiled).op; o.re2 != nil {
			ops = append(ops, o)
		}
		return true
	})
	text := strings.Repeat("Please leave the parcel with the neighbour at number 12, thanks! ", 64)
	engines := []struct {
		name string
		run  func(o *rxOp, in string)
	}{
		{"go", func(o *rxOp, in string) { o.std.MatchString(in) }},
		{"re2", func(o *rxOp, in string) { o.re2.MatchString(in) }},
		{"necessity", func(o *rxOp, in string) { o.need.mayMatch(in) }},
		{"go-submatch", func(o *rxOp, in string) { o.std.FindStringSubmatchIndex(in) }},
		{"re2-submatch", func(o *rxOp, in string) { o.re2.FindStringSubmatchIndex(in) }},
	}
	for _, n := range []int{4, 16, 96, 768} {
		in := text[:n]
		for _, e := range engines {
			b.Run(fmt.Sprintf("%s/%d", e.name, n), func(b *testing.B) {
				for range b.N {
					for _, o := range ops {
						e.run(o, in)
					}
				}
			})
		}
	}
}

// BenchmarkGETUniqueHeaders is BenchmarkGET with a User-Agent and an
// X-Request-Id never sent before on every request: the header cache's
// worst case (gatecache.go), every lookup a miss.
func BenchmarkGETUniqueHeaders(b *testing.B) {
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
		r := httptest.NewRequest("GET", "/products?id=42&sort=price", http.NoBody)
		r.Header.Set("Host", "localhost")
		r.Header.Set("User-Agent", fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.%d Safari/537.36", i))
		r.Header.Set("Accept", "text/html,application/json")
		r.Header.Set("X-Request-Id", fmt.Sprintf("%08x-%04x", i*2654435761, i))
		tx := w.Begin(nil)
		if _, err := tx.Request(r, "127.0.0.1:4000"); err != nil {
			b.Fatal(err)
		}
		tx.Close()
	}
}

// BenchmarkAttack is the gateway benchmark's blocked attack.
func BenchmarkAttack(b *testing.B) {
	benchRequest(b, "GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "", "")
}
