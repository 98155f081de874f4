package server

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"moat/internal/api"
	"moat/internal/testkit"
)

// TestPublicCallBodyDeadline: the calls anyone may make (a join, a
// re-attestation) read a body of at most 16 KB, but nothing bounded how
// long they waited for it. Over HTTP/2 one anonymous connection carries
// 250 such calls at once, each a handler waiting on its body for as long
// as the client liked: from one address, 256 connections held 64,000 of
// them. The server now gives a public call's body publicBodyTimeout to
// arrive, and answers a call whose body has not by then (400); and a
// source has no more calls in flight than its failures' burst, the rest
// answered 429 at once.
func TestPublicCallBodyDeadline(t *testing.T) {
	f := newAuthFixture(t)
	tr := f.transport(nil) // HTTP/2: every call on one connection
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	const calls = 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := map[int]int{}
	var stalls []*io.PipeWriter
	started := make(chan struct{}, calls)
	for i := range calls {
		pr, pw := io.Pipe()
		stalls = append(stalls, pw)
		path := api.PathJoin
		if i%2 == 1 {
			path = api.PathReattest
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+f.srv.Addr()+path, pr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			go func() {
				_, _ = pw.Write([]byte(`{"token":`)) // and then nothing
				started <- struct{}{}
			}()
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			answered[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	for range calls {
		<-started
	}
	t.Logf("%d calls whose bodies stall, on one connection", calls)
	wg.Wait()
	for _, pw := range stalls {
		pw.Close()
	}
	if ctx.Err() != nil {
		t.Fatalf("after %s the server still waited on the bodies of %d calls", testkit.WaitLimit, calls-sum(answered))
	}
	if answered[http.StatusBadRequest] != publicFailBurst || answered[http.StatusTooManyRequests] != calls-publicFailBurst {
		t.Fatalf("answers: %v, want %d of 400 and %d of 429", answered, publicFailBurst, calls-publicFailBurst)
	}
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
