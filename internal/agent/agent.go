// Package agent is moat's node agent. It joins the control plane once with a
// one-time token and keeps its node identity; it holds an SVID for every
// service registered on its node and renews each at about half its life;
// it serves them to local workloads over the SPIFFE Workload API; and it
// follows the control plane's watch stream for the trust bundle, the
// revocation list, the registry and the intentions.
//
// When the control plane is unreachable the agent keeps serving with what it
// holds (static stability) and retries with backoff; nothing it holds is
// dropped because the server is away.
package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/egress"
	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/mesh"
	"moat/internal/metrics"
	"moat/internal/policy"
	"moat/internal/seal"
)

// Config configures an Agent.
type Config struct {
	// DataDir keeps the node identity between starts; required.
	DataDir string
	// Server is the control plane's host:port; required.
	Server string
	// Join is a one-time join token; needed only when DataDir holds no node
	// identity yet.
	Join string
	// Node names this node; required and must match the token's node.
	Node string
	// MeshAddr is where peers reach this node's mesh port, as published to
	// the control plane; empty means 127.0.0.1:15443.
	MeshAddr string
	// Socket is the Workload API's Unix socket path; empty disables it.
	Socket string
	// RequireUID, when set, serves a registration's SVID over the Workload
	// API only to the uid it names; registrations without a uid are then
	// served to no one. When unset (the default), a registration without a
	// uid is served to any local uid.
	RequireUID bool
	// Now and After are the clock; nil means the real one.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Jitter returns a fraction in [0,1) to spread renewals; nil means random.
	Jitter func() float64
	// MinBackoff and MaxBackoff bound retries while the server is away; zero
	// means 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Flows, when set, also receives every flow record, beside the shipper
	// that sends them to the control plane.
	Flows flow.Writer
	// Keyring seals what the agent keeps on disk (its node key, its SVIDs'
	// and SSH host key, spooled records, session recordings); nil stores
	// them in the clear. The agent rotates its primary data key when it is
	// due, as a server does (rotateKeys), unless SharedKeyring.
	Keyring *seal.Keyring
	// SharedKeyring says Keyring is another's to rotate: moat dev's agents
	// seal under their server's, which rotates it and audits the rotation.
	SharedKeyring bool
	// SpoolBytes bounds the on-disk spool of records the server has not yet
	// taken; zero means 64 MiB.
	SpoolBytes int64
	// FlowInterval is how often a live connection's record is refreshed
	// with the bytes since the last one; zero means 60s.
	FlowInterval time.Duration
	// StreamBuffer bounds what the node's inbound mesh streams hold
	// undelivered to their apps (mesh.Config.StreamBuffer); zero means
	// mesh.DefaultStreamBuffer.
	StreamBuffer int64
	// WatchTimeout is how long the watch stream may stay silent before the
	// agent drops it as dead and reconnects; zero means 45s, three of the
	// server's default 15s heartbeats.
	WatchTimeout time.Duration
	// WitnessEvery is how often the agent checks that the audit log still
	// extends the checkpoint it last witnessed; zero means a minute.
	WitnessEvery time.Duration
	// Metrics, when set, receives the agent's metrics.
	Metrics *metrics.Registry
	Logger  *slog.Logger
	// Access configures break-glass sessions on this node.
	Access AccessConfig
	// Firewall is the node's host firewall; its zero value is off.
	Firewall FirewallConfig
	// Egress is the node's way out of the mesh; its zero value runs no
	// proxy and connects out for no one.
	Egress EgressConfig
}

// Agent is a node agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	sealer flow.Sealer // Keyring's AEAD, or nil
	td     spiffeid.TrustDomain
	trust  *identity.Trust

	mu          sync.RWMutex // guards the fields below
	nodeCert    *tls.Certificate
	nodeRenewAt time.Time        // when nodeCert is due for renewal
	svids       map[string]*svid // by service name
	state       state            // what the watch stream said
	synced      bool             // a full snapshot has arrived
	live        bool             // of them, one from the server, not the cache

	wake        chan struct{}   // nudges the renewal loop
	healthWake  chan struct{}   // nudges the listener health reporter
	warnedUID   map[string]bool // guarded by mu: services warned about for having no uid
	publicPorts []uint16        // guarded by mu: the edge gateway's ports (SetPublicPorts)
	changed     *broadcast      // SVIDs or bundle changed (Workload API streams)
	updates     *broadcast      // any watch frame applied
	nodeChanged *broadcast      // the node certificate was renewed
	meshApplied *broadcast      // runMesh applied the registry and the policy
	meshSynced  atomic.Bool     // the mesh holds a full snapshot's services and policy

	clientMu sync.Mutex // guards client
	// client calls the server with the node certificate. It is replaced at
	// every node renewal: connections stay bound to the certificate they
	// were opened with, so a fresh transport is what presents the new one.
	client   *api.Client
	mesh     *mesh.Mesh
	spool    *flow.Spool
	shipper  *flow.Shipper
	counted  flow.Writer // flow-derived metrics, or nil
	renewals atomic.Int64
	access   *access
	witness  witnessState
	floor    *floor // the highest state versions accepted

	pol        atomic.Pointer[policy.Table] // the intentions the mesh applies
	polChanged *broadcast                   // pol or the public ports were replaced
	fw         *firewall.Manager            // nil when the firewall is off
	dns        *dnsListeners                // the DNS filter; nil when the firewall is off or DNS open
	point      *egress.Point                // nil unless this node connects out
	proxy      *egress.Proxy                // the egress proxy
	attestMu   sync.Mutex                   // guards attestKey
	attestKey  *ecdsa.PrivateKey
	// reattestKey and reattestToken count re-attestations by method.
	reattestKey, reattestToken atomic.Int64
	// checkNode asks the renewal loop to check the node certificate now.
	checkNode atomic.Bool
	// workloadShedCount counts Workload API connections closed at accept
	// for a bound.
	workloadShedCount atomic.Int64
}

// svid is one service's current identity.
type svid struct {
	id      spiffeid.ID
	cert    *tls.Certificate
	renewAt time.Time
	failing int // consecutive failed renewals
}

// Node identity files inside DataDir.
const nodeDir = "node"

// New loads the node identity from DataDir, or joins with cfg.Join when
// there is none. It talks to the server only to join.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.DataDir == "" || cfg.Server == "" {
		return nil, errors.New("agent: data dir and server address are required")
	}
	if err := identity.ValidName(cfg.Node); err != nil {
		return nil, fmt.Errorf("agent: node: %w", err)
	}
	if cfg.MeshAddr == "" {
		cfg.MeshAddr = "127.0.0.1:15443"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Jitter == nil {
		cfg.Jitter = randFloat
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = 45 * time.Second
	}
	if cfg.FlowInterval == 0 {
		cfg.FlowInterval = 60 * time.Second
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("node", cfg.Node), svids: map[string]*svid{},
		wake: make(chan struct{}, 1), healthWake: make(chan struct{}, 1), warnedUID: map[string]bool{},
		changed: newBroadcast(), updates: newBroadcast(), nodeChanged: newBroadcast(), polChanged: newBroadcast(),
		meshApplied: newBroadcast()}
	if cfg.Keyring != nil {
		a.sealer = cfg.Keyring.AEAD()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	var err error
	if a.attestKey, err = a.loadAttestKey(); err != nil {
		return nil, err
	}
	cert, roots, err := a.loadCreds(filepath.Join(cfg.DataDir, nodeDir))
	switch {
	case err == nil:
		if err := a.adopt(cert, roots); err != nil {
			return nil, err
		}
		if _, name, _ := identity.Parse(mustID(cert.Leaf)); name != cfg.Node {
			return nil, fmt.Errorf("agent: %s holds the identity of node %q, not %q", cfg.DataDir, name, cfg.Node)
		}
		if cfg.Join != "" {
			// Never silently ignored: said, and kept for re-attestation.
			a.log.Warn("a --join token was given but this node already has an identity: the token is used only if the node must re-attest and its node key cannot",
				"identity", filepath.Join(cfg.DataDir, nodeDir), "expires", cert.Leaf.NotAfter)
		}
	case errors.Is(err, os.ErrNotExist):
		if cfg.Join == "" {
			return nil, fmt.Errorf("agent: %s holds no node identity: start once with a join token (--join-file FILE, or %s)", cfg.DataDir, JoinEnv)
		}
		if err := a.join(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	a.client = a.newClient()
	a.loadCachedSVIDs()
	if a.floor, err = loadFloor(cfg.DataDir, cfg.Now()); err != nil {
		return nil, err
	}
	if err := a.loadCache(); err != nil {
		return nil, err
	}
	if err := a.newShipper(); err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		if a.counted, err = a.registerMetrics(cfg.Metrics); err != nil {
			a.spool.Close()
			return nil, fmt.Errorf("agent: metrics: %w", err)
		}
	}
	if a.fw, err = a.newFirewall(); err != nil {
		a.spool.Close()
		return nil, err
	}
	if err := a.newDNSFilter(); err != nil {
		a.spool.Close()
		return nil, err
	}
	if err := a.newEgress(); err != nil {
		a.spool.Close()
		a.closeDNS()
		return nil, err
	}
	if a.mesh, err = a.newMesh(); err != nil {
		a.spool.Close()
		a.closeDNS()
		if a.proxy != nil {
			a.proxy.Close()
		}
		return nil, err
	}
	a.access = newAccess(a, cfg.Access)
	return a, nil
}

func mustID(leaf *x509.Certificate) spiffeid.ID {
	id, _ := identity.LeafID(leaf)
	return id
}

// adopt installs a node certificate and bundle.
func (a *Agent) adopt(cert *tls.Certificate, roots []*x509.Certificate) error {
	id, err := identity.LeafID(cert.Leaf)
	if err != nil {
		return fmt.Errorf("agent: node certificate: %w", err)
	}
	if a.trust == nil {
		a.td = id.TrustDomain()
		a.trust = identity.NewTrust(identity.TrustConfig{TrustDomain: a.td, Now: a.cfg.Now})
		a.trust.Update(x509bundle.FromX509Authorities(a.td, roots), identity.Revocations{})
	}
	renewAt := a.renewAt(cert)
	a.mu.Lock()
	a.nodeCert, a.nodeRenewAt = cert, renewAt
	a.mu.Unlock()
	return nil
}

func (a *Agent) newClient() *api.Client {
	return api.NewClient(a.cfg.Server, api.ClientTLS(a.nodeCertificate, a.trust))
}

// api returns the current client of the control plane.
func (a *Agent) api() *api.Client {
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	return a.client
}

// renewClient replaces the client after a node renewal and tells the watch
// loop to reconnect with the new certificate.
func (a *Agent) renewClient() {
	a.clientMu.Lock()
	old := a.client
	a.client = old.Reconnect()
	a.clientMu.Unlock()
	old.Close()
	a.nodeChanged.Notify()
}

// resetClient replaces the client, closing its pooled connections.
func (a *Agent) resetClient() {
	a.clientMu.Lock()
	old := a.client
	a.client = old.Reconnect()
	a.clientMu.Unlock()
	old.Close()
}

func (a *Agent) nodeCertificate() (*tls.Certificate, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.nodeCert, nil
}

// join trades the token for a node SVID, after checking that the server
// chains to the root the token pins.
func (a *Agent) join(ctx context.Context) error {
	_, pin, err := api.SplitToken(a.cfg.Join)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	bundle, err := api.FetchBundle(ctx, a.cfg.Server, pin, a.cfg.Now)
	if err != nil {
		return fmt.Errorf("agent: join: %w", err)
	}
	if a.trust == nil {
		a.td = bundle.TrustDomain()
		a.trust = identity.NewTrust(identity.TrustConfig{TrustDomain: a.td, Now: a.cfg.Now})
		a.trust.Update(bundle, identity.Revocations{})
	} else {
		if bundle.TrustDomain() != a.td {
			return fmt.Errorf("agent: join: the server is of trust domain %q, this node of %q", bundle.TrustDomain().Name(), a.td.Name())
		}
		a.trust.Update(bundle, a.trust.Revocations())
	}
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return err
	}
	// A fresh node key at every join: the token vouches for it.
	attest, pub, err := a.newAttestKey()
	if err != nil {
		return err
	}
	c := api.NewClient(a.cfg.Server, api.ClientTLS(nil, a.trust))
	defer c.Close()
	var resp api.CertResponse
	req := api.JoinRequest{Token: a.cfg.Join, Node: a.cfg.Node, MeshAddr: a.cfg.MeshAddr, CSR: csr, NodeKey: pub}
	for tries := 1; ; tries++ {
		err = c.Call(ctx, http.MethodPost, api.PathJoin, req, &resp)
		// A throttled join read nothing of the token: the same request is
		// sent again once the server's Retry-After has passed, so that a
		// fleet starting at once behind one address joins in turns.
		var se *api.StatusError
		if err == nil || !errors.As(err, &se) || se.Code != http.StatusTooManyRequests {
			break
		}
		wait := max(se.RetryAfter, a.backoff(tries))
		a.log.Warn("join throttled by the server; trying again", "in", wait.Round(time.Second), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: join: %w", err)
		case <-a.cfg.After(wait):
		}
	}
	if err != nil {
		return fmt.Errorf("agent: join: %w", err)
	}
	a.attestMu.Lock()
	a.attestKey = attest
	a.attestMu.Unlock()
	cert, roots, err := a.certFrom(resp, key)
	if err != nil {
		return err
	}
	if err := a.writeCreds(filepath.Join(a.cfg.DataDir, nodeDir), cert, roots); err != nil {
		return err
	}
	a.pinAuditKey(resp.AuditKey)
	a.log.Info("joined", "id", cert.Leaf.URIs[0].String(), "expires", cert.Leaf.NotAfter)
	return a.adopt(cert, roots)
}

// certFrom checks a signed chain against the bundle that came with it and
// pairs it with key.
func (a *Agent) certFrom(resp api.CertResponse, key *ecdsa.PrivateKey) (*tls.Certificate, []*x509.Certificate, error) {
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		return nil, nil, err
	}
	roots, err := api.ParseChain(resp.Bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: bundle: %w", err)
	}
	if !chain[0].PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		return nil, nil, errors.New("agent: the server signed a different key")
	}
	check := identity.NewTrust(identity.TrustConfig{TrustDomain: a.td, Now: a.cfg.Now})
	check.Update(x509bundle.FromX509Authorities(a.td, roots), a.trust.Revocations())
	if _, err := check.Verify(chain); err != nil {
		return nil, nil, fmt.Errorf("agent: the server's certificate does not verify: %w", err)
	}
	cert := ca.TLSCertificate(chain, key)
	return cert, roots, nil
}

func randFloat() float64 {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<53))
	if err != nil {
		return 0.5
	}
	return float64(n.Int64()) / (1 << 53)
}

// TrustDomain returns the node's trust domain.
func (a *Agent) TrustDomain() spiffeid.TrustDomain { return a.td }

// Trust returns the agent's view of the bundle and revocations.
func (a *Agent) Trust() *identity.Trust { return a.trust }

// Run follows the control plane and renews identities until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(a.cfg.DataDir, nodeDir), 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	lock, err := lockDataDir(a.cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() { a.api().Close() }()
	var wg sync.WaitGroup
	errc := make(chan error, 16) // one for each part run
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	run(a.watchLoop)
	run(a.renewLoop)
	run(a.runMesh)
	run(a.reportHealth)
	run(a.reportCarried)
	run(a.witnessLoop)
	run(a.shipper.Run)
	run(a.runFirewall)
	run(a.runDNSFilter)
	run(a.runEgress)
	run(a.recheckEgress)
	run(a.access.run)
	run(a.rotateKeys)
	if a.cfg.Socket != "" {
		run(a.serveWorkloadAPI)
	}
	wg.Wait()
	close(errc)
	a.spool.Close()
	return <-errc
}

// newShipper sets up flow delivery: batches to the control plane, spooled
// on disk while it is away.
func (a *Agent) newShipper() error {
	sp, err := flow.OpenSpool(flow.SpoolConfig{
		Dir: filepath.Join(a.cfg.DataDir, "spool"), MaxBytes: a.cfg.SpoolBytes, Sealer: a.sealer, Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	sh, err := flow.NewShipper(flow.ShipperConfig{Send: a.sendFlows, Spool: sp, Logger: a.log})
	if err != nil {
		sp.Close()
		return fmt.Errorf("agent: %w", err)
	}
	a.spool, a.shipper = sp, sh
	return nil
}

// sendFlows sends a batch and succeeds only on the server's receipt for
// every record of it: the shipper then deletes the batch from the spool.
func (a *Agent) sendFlows(ctx context.Context, recs []flow.Record) error {
	var ack api.FlowAck
	if err := a.api().Call(ctx, http.MethodPost, api.PathFlows, recs, &ack); err != nil {
		return err
	}
	if ack.Received != len(recs) {
		return fmt.Errorf("agent: the server acknowledged %d of %d flow records", ack.Received, len(recs))
	}
	return nil
}

// flows is where the mesh writes: the shipper, and Config.Flows if set.
func (a *Agent) flows() flow.Writer {
	ws := []flow.Writer{a.shipper}
	if a.counted != nil {
		ws = append(ws, a.counted)
	}
	if a.cfg.Flows != nil {
		ws = append(ws, a.cfg.Flows)
	}
	if len(ws) == 1 {
		return a.shipper
	}
	return flow.Multi(ws...)
}

// Flows returns the agent's record pipeline (the shipper to the control
// plane, the metrics, and Config.Flows), for co-located producers such as a
// gateway that rides this agent's mesh.
func (a *Agent) Flows() flow.Writer { return a.flows() }

// Services lists every registered service name.
func (a *Agent) Services() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]string, 0, len(a.state.services))
	for name := range a.state.services {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// FlowStats reports flow delivery.
func (a *Agent) FlowStats() (flow.ShipperStats, flow.SpoolStats) {
	return a.shipper.Stats(), a.spool.Stats()
}
