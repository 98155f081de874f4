package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig configures the Store on an etcd cluster.
type EtcdConfig struct {
	// Endpoints are the cluster's client URLs. Required.
	Endpoints []string
	// Prefix is the namespace of one moat cluster in etcd, such as
	// "/moat/prod/": keys live under Prefix+"kv/", the store's own markers
	// under Prefix+"meta/", and nothing outside Prefix is read or watched.
	// Required, and it must end in "/" so that one cluster's prefix is never
	// the start of another's.
	Prefix string
	// TLS secures the connection; nil means plaintext, for loopback only.
	TLS *tls.Config
	// DialTimeout bounds the reachability check in OpenEtcd; 0 means 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds every call that has no earlier deadline of its
	// own (a cluster without quorum otherwise holds a call forever); 0
	// means 5s. A call that runs out of it fails with ErrUnavailable,
	// naming the cause (no quorum and the members that are down, out of
	// reach, slow), found by asking the members alongside the call once
	// half of its bound has passed: the failed call, cause included, ends
	// at its bound (see etcdCall.run).
	RequestTimeout time.Duration
	// Sealer, if set, encrypts every stored value with its key (without the
	// prefix) as associated data. A prefix first used with a Sealer refuses
	// to open without one, and the other way round.
	Sealer Sealer
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// Etcd is the Store on an etcd cluster. Revisions are etcd's: they count
// the writes of the whole cluster, so they increase but skip numbers, and
// Compact compacts the whole cluster's history, not just this prefix.
// List reads a prefix in one response, and the etcd client buffers a
// watch's events in memory until they are read: both suit the control
// plane's thousands of keys, not millions.
type Etcd struct {
	etcdCall        // the client; timeout is RequestTimeout
	prefix   string // Prefix+"kv/": where keys live
	sealer   Sealer
	log      *slog.Logger

	closed    atomic.Bool
	done      chan struct{} // closed by Close: watches stop
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Etcd)(nil)

// OpenEtcd connects to the cluster and checks, within cfg.DialTimeout, that
// it answers.
func OpenEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("store: etcd: no endpoints: %w", ErrInvalid)
	}
	if cfg.Prefix == "" || !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("store: etcd: prefix %q must be non-empty and end in \"/\": %w", cfg.Prefix, ErrInvalid)
	}
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		DialTimeout: timeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd: %v: %w", cfg.Endpoints, err)
	}
	s := &Etcd{etcdCall: etcdCall{cli: cli, endpoints: cfg.Endpoints, timeout: cfg.RequestTimeout, tls: cfg.TLS},
		prefix: cfg.Prefix + "kv/", sealer: cfg.Sealer, log: cfg.Logger, done: make(chan struct{})}
	s.etcdCall.closed = &s.closed
	if s.timeout == 0 {
		s.timeout = 5 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// The first call is bounded by DialTimeout instead.
	open := etcdCall{cli: cli, endpoints: cfg.Endpoints, timeout: timeout, tls: cfg.TLS}
	var check error
	_, err = open.run(ctx, nil, func(cctx context.Context) error {
		check = s.checkSealed(cctx, cfg.Prefix+"meta/sealed")
		if errors.Is(check, ErrInvalid) || errors.Is(check, ErrCorrupt) {
			return nil
		}
		return check
	})
	if err == nil {
		err = check
	}
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("store: etcd: %v prefix %q: %w", cfg.Endpoints, cfg.Prefix, err)
	}
	return s, nil
}

// checkSealed records, on first use of the prefix, whether its values are
// sealed, and later refuses a configuration that disagrees, so values are
// never silently written in the clear next to sealed ones.
func (s *Etcd) checkSealed(ctx context.Context, marker string) error {
	want := "0"
	if s.sealer != nil {
		want = "1"
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(marker), "=", 0)).
		Then(clientv3.OpPut(marker, want)).
		Else(clientv3.OpGet(marker)).
		Commit()
	if err != nil {
		return err
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	switch {
	case len(kvs) != 1:
		return fmt.Errorf("seal marker vanished: %w", ErrCorrupt)
	case string(kvs[0].Value) == want:
		return nil
	case s.sealer == nil:
		return fmt.Errorf("values are sealed but no sealer is configured: %w", ErrInvalid)
	}
	return fmt.Errorf("values are stored unsealed but a sealer is configured: %w", ErrInvalid)
}

// Close ends every watch and the client connection. It is idempotent.
func (s *Etcd) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			s.closeErr = fmt.Errorf("store: etcd: close: %w", err)
		}
	})
	return s.closeErr
}

// begin refuses work once ctx has ended or the store is closed.
func (s *Etcd) begin(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Get implements Store.
func (s *Etcd) Get(ctx context.Context, key string) (KV, error) {
	if err := checkKey(key); err != nil {
		return KV{}, fmt.Errorf("store: get: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	resp, err := s.read(ctx, s.prefix+key)
	if err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, fmt.Errorf("store: get %q: %w", key, ErrNotFound)
	}
	kv, err := s.kv(resp.Kvs[0])
	if err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	return kv, nil
}

// List implements Store.
func (s *Etcd) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, 0, fmt.Errorf("store: list: %w", err)
	}
	if err := s.begin(ctx); err != nil {
		return nil, 0, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	resp, err := s.read(ctx, s.prefix+prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	kvs := make([]KV, 0, len(resp.Kvs))
	for _, raw := range resp.Kvs {
		kv, err := s.kv(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list %q: %w", prefix, err)
		}
		kvs = append(kvs, kv)
	}
	return kvs, resp.Header.Revision, nil
}

// Rev implements Store.
func (s *Etcd) Rev(ctx context.Context) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, fmt.Errorf("store: rev: %w", err)
	}
	resp, err := s.read(ctx, s.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("store: rev: %w", err)
	}
	return resp.Header.Revision, nil
}

// Put implements Store.
func (s *Etcd) Put(ctx context.Context, key string, value []byte) (int64, error) {
	rev, err := s.apply(ctx, nil, []Op{Put(key, value)})
	if err != nil {
		return 0, fmt.Errorf("store: put %q: %w", key, err)
	}
	return rev, nil
}

// Delete implements Store.
func (s *Etcd) Delete(ctx context.Context, key string) (int64, error) {
	rev, err := s.apply(ctx, nil, []Op{Delete(key)})
	if err != nil {
		return 0, fmt.Errorf("store: delete %q: %w", key, err)
	}
	return rev, nil
}

// Txn implements Store. The conditions are etcd ModRevision compares (an
// absent key compares as 0); when one fails, the else branch reads the
// condition keys so the error says which.
func (s *Etcd) Txn(ctx context.Context, conds []Cond, ops []Op) (int64, error) {
	rev, err := s.apply(ctx, conds, ops)
	if err != nil {
		return 0, fmt.Errorf("store: txn: %w", err)
	}
	return rev, nil
}

func (s *Etcd) apply(ctx context.Context, conds []Cond, ops []Op) (int64, error) {
	if err := checkTxn(conds, ops); err != nil {
		return 0, err
	}
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	cmps := make([]clientv3.Cmp, len(conds))
	reads := make([]clientv3.Op, len(conds))
	for i, c := range conds {
		cmps[i] = clientv3.Compare(clientv3.ModRevision(s.prefix+c.Key), "=", c.ModRevision)
		reads[i] = clientv3.OpGet(s.prefix+c.Key, clientv3.WithKeysOnly())
	}
	writes := make([]clientv3.Op, len(ops))
	for i, op := range ops {
		if op.Kind == OpDelete {
			writes[i] = clientv3.OpDelete(s.prefix + op.Key)
			continue
		}
		v, err := s.seal(op.Key, op.Value)
		if err != nil {
			return 0, err
		}
		writes[i] = clientv3.OpPut(s.prefix+op.Key, string(v))
	}
	var resp *clientv3.TxnResponse
	_, err := s.run(ctx, nil, func(cctx context.Context) (err error) {
		resp, err = s.cli.Txn(cctx).If(cmps...).Then(writes...).Else(reads...).Commit()
		return err
	})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		for i, c := range conds {
			var mod int64
			if r := resp.Responses[i].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
				mod = r.Kvs[0].ModRevision
			}
			if mod != c.ModRevision {
				return 0, fmt.Errorf("key %q is at revision %d, not %d: %w", c.Key, mod, c.ModRevision, ErrConflict)
			}
		}
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

// Compact implements Store, for the whole etcd cluster.
func (s *Etcd) Compact(ctx context.Context, rev int64) error {
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("store: compact %d: %w", rev, err)
	}
	if rev <= 0 {
		return nil // below every compaction
	}
	var answer error
	_, err := s.run(ctx, nil, func(cctx context.Context) error {
		_, answer = s.cli.Compact(cctx, rev, clientv3.WithCompactPhysical())
		if errors.Is(answer, rpctypes.ErrCompacted) || errors.Is(answer, rpctypes.ErrFutureRev) {
			return nil
		}
		return answer
	})
	switch {
	case err != nil:
		return fmt.Errorf("store: compact %d: %w", rev, err)
	case errors.Is(answer, rpctypes.ErrFutureRev):
		return fmt.Errorf("store: compact %d: beyond the current revision: %w", rev, ErrInvalid)
	}
	return nil
}

func (s *Etcd) kv(raw *mvccpb.KeyValue) (KV, error) {
	key := strings.TrimPrefix(string(raw.Key), s.prefix)
	value, err := s.open(key, raw.Value)
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: value, CreateRevision: raw.CreateRevision, ModRevision: raw.ModRevision}, nil
}

func (s *Etcd) seal(key string, value []byte) ([]byte, error) {
	if s.sealer == nil {
		return value, nil
	}
	ct, err := s.sealer.Encrypt(value, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("seal value of %q: %w", key, err)
	}
	return ct, nil
}

func (s *Etcd) open(key string, stored []byte) ([]byte, error) {
	if s.sealer == nil {
		if stored == nil {
			return []byte{}, nil
		}
		return stored, nil
	}
	pt, err := s.sealer.Decrypt(stored, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("value of %q does not open under its key (%v): %w", key, err, ErrCorrupt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
