package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/server"
	"moat/internal/store"
)

// round is one revocation being measured.
type round struct {
	id  string    // the revoked SPIFFE ID
	t0  time.Time // just before the revoke call is sent
	got []int64   // per agent: nanoseconds after t0, 0 until it arrives
	// committed is when the store's own watch saw the new list, in
	// nanoseconds after t0: the split between the write and the fan-out.
	committed atomic.Int64
	left      atomic.Int64
	done      chan struct{}
}

// simAgent is a simulated agent: a joined node holding one watch stream.
type simAgent struct {
	node  string
	cert  *tls.Certificate
	index int
}

// benchRevoke runs a control plane in this process with o.services
// registered services and o.agents joined agents, each holding a watch
// stream as the real agent does, then revokes services one at a time and
// measures how long each revocation takes to reach every agent.
func benchRevoke(ctx context.Context, o options) error {
	raiseFileLimit(4*o.agents + 1024)
	w, err := os.MkdirTemp(o.dir, "identitybench-revoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(w)
	quiet := slog.New(slog.DiscardHandler)

	st, err := store.OpenBolt(store.BoltConfig{Dir: filepath.Join(w, "store"), Logger: quiet})
	if err != nil {
		return err
	}
	defer st.Close()
	al, err := audit.Open(audit.Config{Dir: filepath.Join(w, "audit"), Logger: quiet})
	if err != nil {
		return err
	}
	defer al.Close()
	adminDir := filepath.Join(w, "admin")
	if err := server.Init(ctx, st, server.InitConfig{TrustDomain: "example.org", AdminDir: adminDir}); err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", Store: st, Audit: al, Logger: quiet})
	if err != nil {
		return err
	}
	sctx, stopServer := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(sctx) }()
	defer func() {
		stopServer()
		<-srvDone
	}()
	addr := srv.Addr()
	admin, err := mfaAdmin(ctx, addr, adminDir)
	if err != nil {
		return err
	}
	defer admin.Close()

	fmt.Printf("\n== revocation fan-out: %d services, %d agents, %d revocations\n", o.services, o.agents, o.revocations)
	nodeName := func(i int) string { return fmt.Sprintf("n%04d", i) }
	svcName := func(i int) string { return fmt.Sprintf("svc-%05d", i) }

	start := time.Now()
	err = parallel(ctx, o.setupProcs, o.services, func(ctx context.Context, i int) error {
		reg := api.Registration{Name: svcName(i), Node: nodeName(i % o.agents), Port: 8080}
		return admin.Call(ctx, http.MethodPost, api.PathServices, reg, nil)
	})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	fmt.Printf("setup: registered %d services in %s\n", o.services, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	tokens := make([]string, o.agents)
	err = parallel(ctx, o.setupProcs, o.agents, func(ctx context.Context, i int) error {
		var tr api.TokenResponse
		if err := admin.Call(ctx, http.MethodPost, api.PathTokens, api.TokenRequest{Node: nodeName(i), TTL: time.Hour}, &tr); err != nil {
			return err
		}
		tokens[i] = tr.Token
		return nil
	})
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	// Every agent checks the server against the root its token pins, as the
	// real agent's join does; the tokens all pin the same root, so one
	// fetch stands for all.
	_, pin, err := api.SplitToken(tokens[0])
	if err != nil {
		return err
	}
	bundle, err := api.FetchBundle(ctx, addr, pin, nil)
	if err != nil {
		return err
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: bundle.TrustDomain()})
	trust.Update(bundle, identity.Revocations{})
	joiner := api.NewClient(addr, api.ClientTLS(nil, trust))
	defer joiner.Close()
	agents := make([]*simAgent, o.agents)
	err = parallel(ctx, o.setupProcs, o.agents, func(ctx context.Context, i int) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return err
		}
		var resp api.CertResponse
		req := api.JoinRequest{Token: tokens[i], Node: nodeName(i), MeshAddr: fmt.Sprintf("127.0.0.1:%d", 20000+i), CSR: csr}
		if err := joiner.Call(ctx, http.MethodPost, api.PathJoin, req, &resp); err != nil {
			return err
		}
		chain, err := api.ParseChain(resp.Chain)
		if err != nil {
			return err
		}
		if _, err := trust.Verify(chain); err != nil {
			return fmt.Errorf("node SVID: %w", err)
		}
		cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0], Certificate: resp.Chain}
		agents[i] = &simAgent{node: nodeName(i), cert: cert, index: i}
		return nil
	})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	fmt.Printf("setup: %d tokens made and %d agents joined in %s\n", o.agents, o.agents, time.Since(start).Round(time.Millisecond))

	// Open the watch streams, a few at a time: each begins with a full
	// snapshot of every service and node.
	start = time.Now()
	var cur atomic.Pointer[round]
	var ended atomic.Int64
	wctx, stopWatches := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopWatches()
		wg.Wait()
	}()
	sem := make(chan struct{}, o.setupProcs)
	synced := make(chan error, o.agents)
	for _, a := range agents {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := api.NewClient(addr, api.ClientTLS(func() (*tls.Certificate, error) { return a.cert, nil }, trust))
			defer c.Close()
			first := true
			err := c.Watch(wctx, 0, func(u api.Update) error {
				if first {
					first = false
					<-sem
					synced <- nil
				}
				r := cur.Load()
				if r == nil || u.Revocations == nil || !slices.Contains(u.Revocations.IDs, r.id) {
					return nil
				}
				if atomic.CompareAndSwapInt64(&r.got[a.index], 0, int64(max(time.Since(r.t0), 1))) {
					if r.left.Add(-1) == 0 {
						close(r.done)
					}
				}
				return nil
			})
			if first {
				<-sem
				synced <- fmt.Errorf("watch of %s: %w", a.node, err)
				return
			}
			if wctx.Err() == nil {
				ended.Add(1)
			}
		}()
	}
	for range o.agents {
		if err := <-synced; err != nil {
			return err
		}
	}
	fmt.Printf("setup: %d watch streams open, each had its full snapshot, in %s\n", o.agents, time.Since(start).Round(time.Millisecond))

	// Follow the store as the server's hub does, to time the commit of
	// each new revocation list.
	rev, err := st.Rev(ctx)
	if err != nil {
		return err
	}
	events, err := st.Watch(wctx, "", rev)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range events {
			r := cur.Load()
			if r != nil && ev.Err == nil && bytes.Contains(ev.KV.Value, []byte(`"`+r.id+`"`)) {
				r.committed.CompareAndSwap(0, int64(max(time.Since(r.t0), 1)))
			}
		}
	}()

	// Let the snapshots' garbage go before measuring.
	time.Sleep(2 * time.Second)
	var commits []float64
	var totals, p50s, p99s []float64
	for k := 0; k < o.revocations; k++ {
		svc := svcName((k*7919 + 4242) % o.services)
		id, err := identity.ServiceID(srv.TrustDomain(), svc)
		if err != nil {
			return err
		}
		r := &round{id: id.String(), got: make([]int64, o.agents), done: make(chan struct{})}
		r.left.Store(int64(o.agents))
		r.t0 = time.Now()
		cur.Store(r)
		if err := admin.Call(ctx, http.MethodPost, api.PathRevoke, api.RevokeRequest{Service: svc}, nil); err != nil {
			return fmt.Errorf("revoke %s: %w", svc, err)
		}
		answered := time.Since(r.t0)
		select {
		case <-r.done:
		case <-time.After(o.propTimeout):
		case <-ctx.Done():
			return ctx.Err()
		}
		var ds []time.Duration
		for i := range r.got {
			if n := atomic.LoadInt64(&r.got[i]); n > 0 {
				ds = append(ds, time.Duration(n))
			}
		}
		slices.Sort(ds)
		if len(ds) < o.agents {
			fmt.Printf("revocation %d (%s): only %d of %d agents had it after %s; %d watch streams ended\n",
				k+1, svc, len(ds), o.agents, o.propTimeout, ended.Load())
			return errors.New("a revocation did not reach every agent")
		}
		total := ds[len(ds)-1]
		committed := time.Duration(r.committed.Load())
		fmt.Printf("revocation %d (%s): committed %s, answered %s; per-agent p50 %s  p99 %s  max %s; all %d agents had it at %s (%s after the commit)\n",
			k+1, svc, ms(committed), ms(answered), ms(quantile(ds, 0.5)), ms(quantile(ds, 0.99)), ms(total), o.agents, ms(total), ms(total-committed))
		commits = append(commits, float64(committed))
		totals = append(totals, float64(total))
		p50s = append(p50s, float64(quantile(ds, 0.5)))
		p99s = append(p99s, float64(quantile(ds, 0.99)))
		cur.Store(nil)
		time.Sleep(time.Second)
	}
	if n := ended.Load(); n > 0 {
		return fmt.Errorf("%d watch streams ended during the measurement", n)
	}
	m := time.Duration(median(totals))
	fmt.Printf("median over %d revocations: committed %s; per-agent p50 %s, p99 %s; all agents %s (min %s, max %s)\n", o.revocations,
		ms(time.Duration(median(commits))), ms(time.Duration(median(p50s))), ms(time.Duration(median(p99s))), ms(m),
		ms(time.Duration(totals[0])), ms(time.Duration(totals[len(totals)-1])))
	fmt.Printf("target: every agent within 1 s: %s\n", verdict(m < time.Second))
	return nil
}

// parallel runs f(0..n-1) on conc goroutines and returns the first error.
func parallel(ctx context.Context, conc, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = fmt.Errorf("item %d: %w", i, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// raiseFileLimit lifts the soft limit on open files to at least want (up to
// the hard limit): each agent holds a client and a server socket here.
func raiseFileLimit(want int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= uint64(want) {
		return
	}
	l.Cur = min(uint64(want), l.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}
