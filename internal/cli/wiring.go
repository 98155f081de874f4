package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"moat/internal/audit"
	"moat/internal/detect"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/metrics"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

// openStore opens the control-plane store that sc names.
func openStore(ctx context.Context, dataDir string, sc server.StoreFile, sealer store.Sealer) (store.Store, error) {
	if sc.Backend == "etcd" {
		ec, err := etcdConfig(sc, sealer)
		if err != nil {
			return nil, err
		}
		return store.OpenEtcd(ctx, ec)
	}
	return store.OpenBolt(store.BoltConfig{Dir: dataDir, Sealer: sealer})
}

// serverParts is a started control plane and what it holds open.
type serverParts struct {
	srv      *server.Server
	st       store.Store
	log      server.AuditLog
	keyring  *seal.Keyring
	keys     *server.Keys
	flows    *flowstore.Store
	engine   *detect.Engine
	dispatch *detect.Dispatcher
	metrics  *metrics.Registry
	// metricsAddr, when set, serves metrics at /metrics.
	metricsAddr string
	// exports run the continuous exports of flow records.
	exports []func(context.Context) error
	closers []func() error
}

func (p *serverParts) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		_ = p.closers[i]()
	}
}

// Run runs the control plane and its helpers until ctx ends or one fails.
func (p *serverParts) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	metrics := func(ctx context.Context) error { return serveMetrics(ctx, p.metricsAddr, p.metrics) }
	for _, run := range append([]func(context.Context) error{p.srv.Run, p.keys.Run, p.flows.Run, p.engine.Run, p.dispatch.Run, metrics}, p.exports...) {
		g.Go(func() error { return run(ctx) })
	}
	return g.Wait()
}

// startServer opens everything the control plane needs, in order, and
// closes what it opened if a later step fails.
func startServer(ctx context.Context, e *Env, c *server.File, logger *slog.Logger) (_ *serverParts, err error) {
	p := &serverParts{metrics: newRegistry(), metricsAddr: c.Metrics}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	sk, err := openServerKeyring(ctx, e, c, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.DataDir, err)
	}
	p.closers = append(p.closers, sk.Close)
	kr, kek := sk.kr, sk.kek
	p.keyring = kr
	sealer := kr.AEAD()
	storeSealer := server.NewStoreSealer(sealer)
	if p.st, err = openStore(ctx, c.DataDir, c.Store, storeSealer); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, p.st.Close)
	if p.log, err = openAuditLog(ctx, c, p.st, sealer, logger); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, p.log.Close)
	retention := time.Duration(c.Retention)
	if retention == 0 {
		retention = 30 * 24 * time.Hour
	}
	if p.flows, err = flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(c.DataDir, "flows"), Retention: retention, Sealer: sealer, Logger: logger,
		CacheKiB: c.Flows.CacheKiB, MaxOpen: c.Flows.OpenPartitions}); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, p.flows.Close)
	if err := p.metrics.Register(p.flows.Collector()); err != nil {
		return nil, err
	}
	for _, ex := range c.Export {
		run, err := exportFlows(p.flows, ex, logger)
		if err != nil {
			return nil, err
		}
		p.exports = append(p.exports, run)
	}
	settings := &detect.Settings{}
	if c.Alerts != "" {
		if settings, err = detect.LoadFile(c.Alerts, e.Getenv); err != nil {
			return nil, err
		}
	}
	dm, err := detect.NewMetrics(p.metrics, settings.SinkNames())
	if err != nil {
		return nil, err
	}
	if p.dispatch, err = detect.NewDispatcherFromSettings(settings, &http.Client{Timeout: 30 * time.Second}, detect.DispatcherConfig{Logger: logger, Metrics: dm}); err != nil {
		return nil, err
	}
	if p.engine, err = detect.New(detect.Config{
		Rules: settings.Rules, Queue: settings.Queue, Sweep: settings.Sweep, Resend: settings.Resend, WorkHours: settings.WorkHours, NodeAlerts: settings.NodeAlerts,
		Notifier: p.dispatch, Findings: flowSink{p.flows}, Logger: logger, Metrics: dm,
		// The engine runs once the server below is made.
		Standing: func() ([]detect.Standing, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			return p.srv.StandingAlerts(ctx)
		},
	}); err != nil {
		return nil, err
	}
	every, err := c.KeyRotationPeriod()
	if err != nil {
		return nil, err
	}
	if p.keys, err = server.NewKeys(server.KeysConfig{
		Keyring: kr, KEK: kek, KEKFile: c.KEK.RewrappableFile(c.DataDir), Store: p.st, StoreSealer: storeSealer, KeyringChanges: sk.changes(),
		Audit: p.log, AuditLog: p.log, DataDir: c.DataDir, Every: every, Getenv: e.Getenv, Logger: logger,
	}); err != nil {
		return nil, err
	}
	listen := c.Listen
	if listen == "" {
		listen = server.DefaultListen
	}
	mfa, err := c.MFA.Config("mfa")
	if err != nil {
		return nil, err
	}
	acc, err := c.Access.Config("access")
	if err != nil {
		return nil, err
	}
	acc.RecordingsDir = filepath.Join(c.DataDir, "recordings")
	p.srv, err = server.New(ctx, server.Config{
		Listen: listen, Name: c.Name, Advertise: c.Advertise, Store: p.st, Sealer: sealer, Audit: p.log, AuditLog: p.log, Logger: logger,
		Flows: p.flows, Detect: p.engine, Metrics: p.metrics, Keys: p.keys, MFA: mfa, Access: acc,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// openAuditLog opens the control plane's audit log. With etcd the log lives
// in the store every server shares, so the cluster has one sequence; the
// embedded store keeps it in DATA_DIR/audit, signed with the key the store
// keeps (sealed), which a plaintext audit.key from earlier versions moves
// into.
func openAuditLog(ctx context.Context, c *server.File, st store.Store, sealer audit.Sealer, logger *slog.Logger) (server.AuditLog, error) {
	if c.Store.Backend == "etcd" {
		return audit.OpenStoreLog(ctx, audit.StoreLogConfig{Store: st, Sealer: sealer, Logger: logger})
	}
	dir := filepath.Join(c.DataDir, audit.DirName)
	signer, verifier, err := audit.StoreKey(ctx, st, audit.DefaultStoreKey, audit.DefaultKeyName, filepath.Join(dir, audit.SignerKeyFile))
	if err != nil {
		return nil, err
	}
	return audit.Open(audit.Config{Dir: dir, Signer: signer, Verifier: verifier, Sealer: sealer, Logger: logger})
}

// flowSink stores detection findings beside the flows.
type flowSink struct{ st *flowstore.Store }

func (f flowSink) Write(r flow.Record) error {
	_, err := f.st.Ingest(context.Background(), []flow.Record{r})
	return err
}

// exportFlows returns what runs ex's continuous export of st: records are
// read from the store behind a cursor saved with each commit of the files
// (flowstore.Exporter), so an export slower than ingestion lags instead of
// losing records, and a restart resumes where it stopped, writing each
// record once.
func exportFlows(st *flowstore.Store, ex server.ExportFile, logger *slog.Logger) (func(context.Context) error, error) {
	name := "flows.jsonl"
	if ex.Format == flowstore.FormatVPC {
		name = "vpcflows.log"
	}
	e, err := flowstore.NewExporter(flowstore.ExporterConfig{
		Store: st, Logger: logger.With("export", ex.Dir),
		File: flowstore.FileConfig{
			Path: filepath.Join(ex.Dir, name), Format: ex.Format, AccountID: ex.AccountID, MaxMegabytes: ex.MaxMB,
			RotateEvery: time.Duration(ex.RotateEvery), MaxBackups: ex.MaxFiles, MaxAgeDays: int(time.Duration(ex.MaxAge) / (24 * time.Hour)),
		},
	})
	if err != nil {
		return nil, err
	}
	return e.Run, nil
}
