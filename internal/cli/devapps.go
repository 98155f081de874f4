package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// The demo services of "moat dev": three small HTTP servers that listen on
// loopback only and reach each other only through their agents' upstream
// ports. frontend calls api, api calls db.

// demoApp is one running demo service.
type demoApp struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

func startDemoApp(name, addr string, h http.Handler) (*demoApp, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev: %s on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &demoApp{name: name, srv: srv, ln: ln}, nil
}

func (d *demoApp) Close() { _ = d.srv.Close() }

// dbHandler serves a fixed table.
func dbHandler() http.Handler {
	rows := []map[string]any{
		{"id": 1, "item": "moat", "note": "isolation"},
		{"id": 2, "item": "drawbridge", "note": "controlled exposure"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"served_by": "db", "rows": rows})
	})
}

// apiHandler answers /api by asking db through its upstream port.
func apiHandler(dbUpstream string) http.Handler {
	client := &http.Client{Timeout: 5 * time.Second}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get("http://" + dbUpstream + "/rows")
		if err != nil {
			http.Error(w, "api: db unreachable through the mesh: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var db map[string]any
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&db); err != nil {
			http.Error(w, "api: bad answer from db", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"served_by": "api", "db": db})
	})
}

// frontendHandler renders a page from api's answer.
func frontendHandler(apiUpstream string) http.Handler {
	client := &http.Client{Timeout: 5 * time.Second}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get("http://" + apiUpstream + "/api")
		if err != nil {
			http.Error(w, "frontend: api unreachable through the mesh: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			http.Error(w, "frontend: api answered "+resp.Status, http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "frontend → api → db, all through the mesh:\n%s", body)
	})
}

// waitHTTP polls url until it answers or ctx ends.
func waitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
