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
	"syscall"
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
	fmt.Println("each cell: operations per CPU-second of this process (operations per wall-clock second)")
	// Rates per CPU-second are what "per core" means on a machine shared
	// with other work, where one runnable thread gets less than a core.
	cpuRates := make([][]float64, len(ops))
	wallRates := make([][]float64, len(ops))
	for r := 0; r < o.signRuns; r++ {
		line := fmt.Sprintf("run %d:", r+1)
		for i, op := range ops {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			runtime.GC()
			n, start, cpu0 := 0, time.Now(), cpuTime()
			for time.Since(start) < o.signTime {
				for range 16 {
					if err := op.f(); err != nil {
						return fmt.Errorf("%s: %w", op.name, err)
					}
				}
				n += 16
			}
			wall, cpu := time.Since(start), cpuTime()-cpu0
			cpuRates[i] = append(cpuRates[i], float64(n)/cpu.Seconds())
			wallRates[i] = append(wallRates[i], float64(n)/wall.Seconds())
			line += fmt.Sprintf("  %6.0f (%6.0f)", float64(n)/cpu.Seconds(), float64(n)/wall.Seconds())
		}
		fmt.Println(line)
	}
	ceiling := median(append([]float64(nil), cpuRates[0]...))
	fmt.Printf("%-48s %12s %9s %9s %8s %12s\n", "operation", "median/CPU-s", "min", "max", "of raw", "median/wall-s")
	for i, op := range ops {
		m := median(cpuRates[i])
		fmt.Printf("%-48s %12.0f %9.0f %9.0f %7.1f%% %12.0f\n", op.name, m, cpuRates[i][0], cpuRates[i][len(cpuRates[i])-1], 100*m/ceiling, median(wallRates[i]))
	}
	fmt.Printf("target: >= 10,000 SVIDs/s per core; CA.SignPublicKey median is %.0f per CPU-second (%s)\n",
		median(cpuRates[1]), verdict(median(cpuRates[1]) >= 10000))
	return nil
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
