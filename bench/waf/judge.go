package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/gateway"
	"moat/internal/waf"
)

// newWAFJudge runs each request through one WAF transaction in process,
// after parsing it with net/http as the gateway's server does.
func newWAFJudge(paranoia int, stock bool) (judgeFunc, func(), error) {
	w, err := waf.New(waf.Config{Paranoia: paranoia, StockCRS: stock})
	if err != nil {
		return nil, nil, err
	}
	judge := func(c *request) result {
		raw, err := c.raw(false)
		if err != nil {
			return result{err: err}
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			// Go's HTTP server answers 400 before any handler runs.
			return result{status: http.StatusBadRequest, err: err}
		}
		tx := w.Begin(nil)
		defer tx.Close()
		v, err := tx.Request(r, "192.0.2.10:40000")
		res := result{status: http.StatusOK, rules: v.RuleIDs, discounted: v.Discounted, matched: v.Variable + "=" + fmt.Sprintf("%q", v.Matched)}
		switch {
		case err != nil:
			res.status, res.err = http.StatusBadRequest, err
		case v.Block:
			// The gateway answers what the WAF asks for: 403, or 400,
			// 413 and 503 for bodies it cannot parse, limits and the
			// budget.
			res.status = http.StatusForbidden
			switch v.Status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
				res.status = v.Status
			}
		}
		_, _ = io.Copy(io.Discard, r.Body)
		return res
	}
	return judge, func() { w.Close() }, nil
}

// gatewayYAML routes everything to one service, with the refusals that
// are not the WAF's (rate limits, the connection cap, CSRF) turned off so
// that only the WAF decides.
const gatewayYAML = `listen: 127.0.0.1:0
redirect_listen: "off"
rate_limit:
  off: true
limits:
  max_conns_per_ip: 100000
services: [app]
routes:
  - service: app
    port: 8080
    csrf_off: true
waf:
  paranoia: %d
`

// newGatewayJudge starts moat's gateway on loopback in front of a backend
// that reads each body and answers 200, and sends each request to it over
// TLS on kept-alive connections.
func newGatewayJudge(paranoia int) (judgeFunc, func(), error) {
	dir, err := os.MkdirTemp("", "bench-waf-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := []func(){func() { os.RemoveAll(dir) }}
	closeAll := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	fail := func(err error) (judgeFunc, func(), error) {
		closeAll()
		return nil, nil, err
	}

	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	backend := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "ok")
		}),
	}
	go backend.Serve(backendLn)
	cleanup = append(cleanup, func() { backend.Close() })

	cert, pool, err := gatewayCert()
	if err != nil {
		return fail(err)
	}
	file := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, gatewayYAML, max(paranoia, 1)), 0o600); err != nil {
		return fail(err)
	}
	gw, err := gateway.New(gateway.Config{
		File: file,
		Dial: func(ctx context.Context, _ string, _ int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", backendLn.Addr().String())
		},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	cleanup = append(cleanup, func() { cancel(); <-done })

	addr := gw.Addr().String()
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
	idle := make(chan *clientConn, 64)
	cleanup = append(cleanup, func() {
		for {
			select {
			case c := <-idle:
				c.conn.Close()
			default:
				return
			}
		}
	})
	judge := func(c *request) result {
		raw, err := c.raw(true)
		if err != nil {
			return result{err: err}
		}
		// A kept-alive connection the server has closed fails before any
		// answer; try once more on a new one.
		for attempt := 0; ; attempt++ {
			var cc *clientConn
			select {
			case cc = <-idle:
			default:
				conn, err := tls.Dial("tcp", addr, tlsConf)
				if err != nil {
					return result{err: err}
				}
				cc = &clientConn{conn: conn, br: bufio.NewReader(conn)}
			}
			res, reuse, answered := cc.send(raw)
			if reuse {
				select {
				case idle <- cc:
				default:
					cc.conn.Close()
				}
			} else {
				cc.conn.Close()
			}
			if answered || attempt > 0 {
				return res
			}
		}
	}
	return judge, closeAll, nil
}

type clientConn struct {
	conn *tls.Conn
	br   *bufio.Reader
}

// send writes raw and reads the answer; it reports whether the connection
// may be used again and whether any answer came.
func (c *clientConn) send(raw []byte) (res result, reuse, answered bool) {
	_ = c.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := c.conn.Write(raw); err != nil {
		return result{err: err}, false, false
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return result{err: err}, false, false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return result{status: resp.StatusCode}, err == nil && !resp.Close, true
}

// gatewayCert issues the gateway's certificate from a CA of moat's own
// and returns a pool that trusts it.
func gatewayCert() (*tls.Certificate, *x509.CertPool, error) {
	authority, err := ca.New(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("bench.moat")})
	if err != nil {
		return nil, nil, err
	}
	cert, err := authority.IssueTLS([]string{"localhost"}, nil, time.Hour)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	for _, root := range authority.Bundle().X509Authorities() {
		pool.AddCert(root)
	}
	return cert, pool, nil
}
