package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"moat/internal/agent"
	"moat/internal/audit"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

// openStore opens the control-plane store that sc names.
func openStore(ctx context.Context, dataDir string, sc storeConfig, sealer store.Sealer) (store.Store, error) {
	if sc.Backend == "etcd" {
		prefix := sc.Prefix
		if prefix == "" {
			prefix = "/moat/"
		}
		return store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: sc.Endpoints, Prefix: prefix, Sealer: sealer})
	}
	return store.OpenBolt(store.BoltConfig{Dir: dataDir, Sealer: sealer})
}

// serverParts is a started control plane and what it holds open.
type serverParts struct {
	srv     *server.Server
	st      store.Store
	log     *audit.Log
	keyring *seal.Keyring
}

func (p *serverParts) Close() {
	p.st.Close()
	p.log.Close()
}

// startServer opens everything the control plane needs, in order, and
// closes what it opened if a later step fails.
func startServer(ctx context.Context, e *Env, c serverConfig, logger *slog.Logger) (*serverParts, error) {
	kr, err := c.KEK.keyring(e, c.DataDir, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.DataDir, err)
	}
	sealer := kr.AEAD()
	st, err := openStore(ctx, c.DataDir, c.Store, sealer)
	if err != nil {
		return nil, err
	}
	alog, err := audit.Open(audit.Config{Dir: filepath.Join(c.DataDir, audit.DirName), Sealer: sealer, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	srv, err := server.New(ctx, server.Config{
		Listen: c.Listen, Name: c.Name, Store: st, Sealer: sealer, Audit: alog, Logger: logger,
	})
	if err != nil {
		st.Close()
		alog.Close()
		return nil, err
	}
	return &serverParts{srv: srv, st: st, log: alog, keyring: kr}, nil
}

// node is a started agent with its mesh.
type node struct {
	agent *agent.Agent
}

func (n *node) Run(ctx context.Context) error { return n.agent.Run(ctx) }

func startNode(ctx context.Context, e *Env, c agentConfig) (*node, error) {
	logger := slog.New(slog.NewTextHandler(e.Stderr, nil))
	socket := c.Socket
	if socket == "" {
		socket = filepath.Join(c.DataDir, "workload.sock")
	}
	a, err := agent.New(ctx, agent.Config{
		DataDir: c.DataDir, Server: c.Server, Join: c.Join, Node: c.Node, MeshAddr: c.Listen,
		Socket: socket, RequireUID: c.RequireUID, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	return &node{agent: a}, nil
}
