package waf

import (
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestZZScratchRanges(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		x := w.Begin(nil)
		tx := x.tx
		tx.ProcessConnection("127.0.0.1", 4000, "", 0)
		tx.ProcessURI("/products?id=42&sort=price", "GET", "HTTP/1.1")
		tx.AddRequestHeader("Host", "localhost")
		tx.AddRequestHeader("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
		tx.AddRequestHeader("Accept", "text/html,application/json")
		tx.ProcessRequestHeaders()
		rs := w.plan.ranges.of(tx.(plugintypes.TransactionState))
		t.Logf("phase1 ranges %d %v", len(*rs), *rs)
		tx.ProcessRequestBody()
		t.Logf("phase2 ranges %d %v", len(*rs), *rs)
		x.Close()
	}
}
