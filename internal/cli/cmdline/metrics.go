package cmdline

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"moat/internal/metrics"
)

// NewRegistry returns a registry with the Go runtime and process figures.
func NewRegistry() *metrics.Registry {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.Runtime())
	return reg
}

// ServeMetrics serves reg on addr at /metrics until ctx ends. An empty addr
// serves nothing.
func ServeMetrics(ctx context.Context, addr string, reg *metrics.Registry) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		_ = srv.Close()
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
