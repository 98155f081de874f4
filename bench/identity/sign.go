package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"runtime"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/identity"
)

func numCPU() int       { return runtime.NumCPU() }
func goVersion() string { return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH }

// benchSign measures, on one core (GOMAXPROCS=1), the rate of a raw ECDSA
// P-256 signature over a SHA-256 digest and of the CA's two signing paths.
// The three operations run in turn within each run, so a change in the
// machine's load falls on all of them alike.
func benchSign(ctx context.Context, o options) error {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	td := spiffeid.RequireTrustDomainFromString("example.org")
	c, err := ca.New(ca.Config{TrustDomain: td})
	if err != nil {
		return err
	}
	id, err := identity.ServiceID(td, "api")
	if err != nil {
		return err
	}
	// The key a workload would hold; the CA signs its public half.
	wk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, wk)
	if err != nil {
		return err
	}
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("tbs certificate"))

	ops := []struct {
		name string
		f    func() error
	}{
		{"ecdsa.Sign (P-256, SHA-256 digest)", func() error {
			_, _, err := ecdsa.Sign(rand.Reader, raw, digest[:])
			return err
		}},
		{"CA.SignPublicKey (sign, then validate)", func() error {
			_, err := c.SignPublicKey(wk.Public(), id, 0)
			return err
		}},
		{"CA.SignCSR (parse, check CSR, sign, validate)", func() error {
			_, err := c.SignCSR(csr, id, 0)
			return err
		}},
	}
	fmt.Printf("\n== SVID signing, GOMAXPROCS=1, %d runs of %s per operation\n", o.signRuns, o.signTime)
	rates := make([][]float64, len(ops))
	for r := 0; r < o.signRuns; r++ {
		line := fmt.Sprintf("run %d:", r+1)
		for i, op := range ops {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			runtime.GC()
			n, start := 0, time.Now()
			for time.Since(start) < o.signTime {
				for range 16 {
					if err := op.f(); err != nil {
						return fmt.Errorf("%s: %w", op.name, err)
					}
				}
				n += 16
			}
			rate := float64(n) / time.Since(start).Seconds()
			rates[i] = append(rates[i], rate)
			line += fmt.Sprintf("  %.0f/s", rate)
		}
		fmt.Println(line)
	}
	ceiling := median(append([]float64(nil), rates[0]...))
	fmt.Printf("%-48s %10s %10s %10s %8s\n", "operation", "median/s", "min/s", "max/s", "of raw")
	for i, op := range ops {
		m := median(rates[i])
		fmt.Printf("%-48s %10.0f %10.0f %10.0f %7.1f%%\n", op.name, m, rates[i][0], rates[i][len(rates[i])-1], 100*m/ceiling)
	}
	fmt.Printf("target: >= 10,000 SVIDs/s per core; CA.SignPublicKey median is %.0f/s (%s)\n",
		median(rates[1]), verdict(median(rates[1]) >= 10000))
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
