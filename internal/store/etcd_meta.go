package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdMeta is the part of a moat cluster's etcd prefix outside the sealed
// key space (Prefix+"meta/"): what a server must read before it can open
// the store, such as the keyring that the key-encryption key wraps. Values
// here are stored as given; put nothing secret in them that is not already
// sealed.
type EtcdMeta struct {
	etcdCall        // the client; timeout is RequestTimeout
	prefix   string // Prefix+"meta/"
}

// OpenEtcdMeta connects to the cluster of cfg (Endpoints, Prefix, TLS,
// DialTimeout, RequestTimeout; the Sealer is not used).
func OpenEtcdMeta(ctx context.Context, cfg EtcdConfig) (*EtcdMeta, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("store: etcd: no endpoints: %w", ErrInvalid)
	}
	if cfg.Prefix == "" || !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("store: etcd: prefix %q must be non-empty and end in \"/\": %w", cfg.Prefix, ErrInvalid)
	}
	dial := cfg.DialTimeout
	if dial == 0 {
		dial = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, TLS: cfg.TLS, DialTimeout: dial, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("store: etcd: %v: %w", cfg.Endpoints, err)
	}
	m := &EtcdMeta{etcdCall: etcdCall{cli: cli, endpoints: cfg.Endpoints, timeout: cfg.RequestTimeout, tls: cfg.TLS}, prefix: cfg.Prefix + "meta/"}
	if m.timeout == 0 {
		m.timeout = 5 * time.Second
	}
	return m, nil
}

// Name says where a meta value lives, for messages.
func (m *EtcdMeta) Name(name string) string {
	return fmt.Sprintf("etcd %s%s", m.prefix, name)
}

// Get returns the value of name, or ErrNotFound.
func (m *EtcdMeta) Get(ctx context.Context, name string) ([]byte, error) {
	var resp *clientv3.GetResponse
	_, err := m.run(ctx, nil, func(cctx context.Context) (err error) {
		resp, err = m.cli.Get(cctx, m.prefix+name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", m.Name(name), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("store: %s: %w", m.Name(name), ErrNotFound)
	}
	return resp.Kvs[0].Value, nil
}

// Swap sets name to next if it still holds prev (nil: if it is absent),
// atomically; otherwise it changes nothing and returns ErrConflict.
func (m *EtcdMeta) Swap(ctx context.Context, name string, prev, next []byte) error {
	key := m.prefix + name
	cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if prev != nil {
		cmp = clientv3.Compare(clientv3.Value(key), "=", string(prev))
	}
	var resp *clientv3.TxnResponse
	_, err := m.run(ctx, nil, func(cctx context.Context) (err error) {
		resp, err = m.cli.Txn(cctx).If(cmp).Then(clientv3.OpPut(key, string(next))).Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", m.Name(name), err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("store: %s: %w", m.Name(name), ErrConflict)
	}
	return nil
}

// Watch calls fn after every change of name until ctx ends, re-establishing
// the watch when it breaks. fn runs on Watch's goroutine, one call at a time.
func (m *EtcdMeta) Watch(ctx context.Context, name string, fn func()) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range m.cli.Watch(wctx, m.prefix+name) {
			if resp.Err() != nil {
				break
			}
			if len(resp.Events) > 0 {
				fn()
			}
		}
		cancel()
		// A broken watch may have missed a change: look once, then watch again.
		if ctx.Err() == nil {
			fn()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Close releases the connection.
func (m *EtcdMeta) Close() error {
	if err := m.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: etcd: close: %w", err)
	}
	return nil
}
