package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"moat/internal/ca"
	"moat/internal/config"
	"moat/internal/identity"
	"moat/internal/seal"
)

// File is the configuration of "moat server init" and "moat server run",
// as written in YAML; their flags share its key names (--data-dir is
// data_dir). Every field is optional unless its comment says otherwise.
type File struct {
	// DataDir holds the control plane's state; required.
	DataDir string `yaml:"data_dir"`
	// Listen is the API address (TLS; admin calls need an admin
	// certificate, node calls a node certificate; only the trust bundle,
	// join and node re-attestation take none); empty means 127.0.0.1:7400.
	Listen string `yaml:"listen"`
	// TrustDomain names the CA's trust domain; init requires it.
	TrustDomain string `yaml:"trust_domain"`
	// SVIDTTL is the default SVID life (at most 24h); zero means 1h.
	SVIDTTL time.Duration `yaml:"svid_ttl"`
	// NodeTTL is the node certificates' life (init; at least SVIDTTL, at
	// most 30 days); zero means 24h.
	NodeTTL time.Duration `yaml:"node_ttl"`
	// Name names this server in its SVID; empty means "control". Servers
	// of one cluster need distinct names.
	Name string `yaml:"name"`
	// Advertise is the address other servers and clients reach this one
	// at, as listed among the cluster's members; empty means listen,
	// unless that is a wildcard.
	Advertise string `yaml:"advertise"`
	// AdminDir is where init writes the first admin's credentials; empty
	// means DATA_DIR.admin, beside the data directory.
	AdminDir string         `yaml:"admin_dir"`
	Store    StoreFile      `yaml:"store"`
	KEK      seal.KEKConfig `yaml:"kek"`
	// Retention is how long flow records are kept; zero means 30d.
	Retention config.Duration `yaml:"retention"`
	// Alerts names the detection and alert-delivery file; empty runs the
	// default rules with no sinks.
	Alerts string `yaml:"alerts"`
	// Metrics, when set, serves Prometheus /metrics (plain HTTP, no
	// authentication) on this address.
	Metrics string `yaml:"metrics"`
	// KeyRotation rotates the primary data key when it is this old (e.g.
	// 30d); empty means seal.DefaultRotation, "none" no rotation by age
	// (see KeyRotationPeriod).
	KeyRotation string `yaml:"key_rotation"`
	// Flows bounds the flow store's memory.
	Flows FlowStoreFile `yaml:"flows"`
	// Export copies every flow record the server stores into rotated,
	// gzipped files in a directory, for a shipper (Security Lake, Splunk,
	// Elastic agents) to pick up. Each export reads the store behind a
	// cursor kept in the directory (flowstore.Exporter): nothing is lost when it
	// falls behind or restarts, and each record is written once.
	Export []ExportFile `yaml:"export"`
	Log    config.Log   `yaml:",inline"`
	// MFA decides which admin calls need a fresh second factor (default:
	// the sensitive ones, for every role).
	MFA MFAFile `yaml:"mfa"`
	// Access governs break-glass grants and session recordings.
	Access AccessFile `yaml:"access"`
}

// FlowStoreFile bounds the flow store's memory: the SQLite page cache is at
// most open_partitions × 2 connections × cache_kib.
type FlowStoreFile struct {
	// CacheKiB is the page cache per connection; zero means 2048.
	CacheKiB int `yaml:"cache_kib"`
	// OpenPartitions is how many day partitions stay open; zero means 8.
	OpenPartitions int `yaml:"open_partitions"`
}

// ExportFile is one continuous export of flow records.
type ExportFile struct {
	// Dir receives the files: the live one (flows.jsonl, or vpcflows.log)
	// and rotated, gzipped ones beside it. Required.
	Dir string `yaml:"dir"`
	// Format is "ocsf" (JSON lines, the default) or "vpc" (AWS VPC Flow
	// Logs v2 text; Network Activity only).
	Format string `yaml:"format"`
	// AccountID fills the VPC format's account-id field.
	AccountID string `yaml:"account_id"`
	// MaxMB rotates the live file at this size; zero means 100.
	MaxMB int `yaml:"max_mb"`
	// RotateEvery rotates the live file this often; zero means by size only.
	RotateEvery config.Duration `yaml:"rotate_every"`
	// MaxFiles keeps this many rotated files; zero keeps them all.
	MaxFiles int `yaml:"max_files"`
	// MaxAge removes rotated files older than this (whole days); zero keeps
	// them.
	MaxAge config.Duration `yaml:"max_age"`
}

// StoreFile selects the control-plane store.
type StoreFile struct {
	// Backend is "bolt" (the default: store.db under data_dir) or "etcd".
	Backend string `yaml:"backend"`
	// Endpoints are the etcd cluster's members (host:port or URLs).
	Endpoints []string `yaml:"endpoints"`
	// Prefix is the etcd key prefix; empty means "/moat/".
	Prefix string `yaml:"prefix"`
	// Timeout bounds every etcd call; zero means 5s. A call past it fails
	// with "control-plane store unavailable" and the cause (no quorum,
	// naming the members that are down; out of reach; slow), found by
	// asking the members alongside the call once half of Timeout has
	// passed, so the failed call, cause included, ends at Timeout.
	Timeout config.Duration `yaml:"timeout"`
	// TLS secures the connections to the etcd members. With it every
	// endpoint is reached over TLS (a bare host:port, or https://); without
	// it an endpoint must be https:// (checked against the system's roots,
	// no client certificate) or plaintext on a loopback address.
	TLS *EtcdTLS `yaml:"tls"`
}

// EtcdTLS is how the control plane authenticates the etcd members and
// itself to them, as etcd's own --trusted-ca-file and --client-cert-auth
// expect.
type EtcdTLS struct {
	// CAFile holds the PEM certificates the members' certificates must
	// chain to; empty means the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key presented
	// to the members (both or neither).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName, when set, is the name the members' certificates must
	// carry, instead of each endpoint's host.
	ServerName string `yaml:"server_name"`
}

// TLSConfig is the TLS configuration for the etcd members: nil when s
// has no tls section (plaintext, or https:// against the system's
// roots). Errors name the key at fault.
func (s *StoreFile) TLSConfig() (*tls.Config, error) {
	return s.tlsConfig("store")
}

func (s *StoreFile) tlsConfig(path string) (*tls.Config, error) {
	t := s.TLS
	if t == nil {
		return nil, nil
	}
	path = config.Join(path, "tls")
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, config.Errorf(config.Join(path, "ca_file"), "%v", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, config.Errorf(config.Join(path, "ca_file"), "%q holds no PEM certificate", t.CAFile)
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return nil, config.Errorf(path, "give both cert_file and key_file, or neither")
	case t.CertFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, config.Errorf(config.Join(path, "cert_file"), "%v", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// DefaultListen is the API address when none is given.
const DefaultListen = "127.0.0.1:7400"

// DecodeFile reads a server configuration file strictly: an unknown key or
// an ill-typed value is an error naming the key path and line.
func DecodeFile(name string) (*File, error) {
	var f File
	if err := config.DecodeFile(name, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseFile decodes a server configuration file's contents strictly.
func ParseFile(src []byte) (*File, error) {
	var f File
	if err := config.Decode(src, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks f as the server would run it; forInit also requires what
// only init needs (the trust domain). Errors name the key path.
func (f *File) Validate(forInit bool) error {
	if f.DataDir == "" {
		return config.Errorf("data_dir", "required")
	}
	if forInit && f.TrustDomain == "" {
		return config.Errorf("trust_domain", "required")
	}
	if err := f.ValidateFile(); err != nil {
		return err
	}
	// What moat check reports as a finding (MOAT-010) rather than an
	// error, and the files the store's TLS names, which are read where
	// the server runs, not where moat check reads the configuration.
	for i, e := range f.Store.Endpoints {
		if f.Store.Backend == "etcd" && f.Store.plaintextAcross(e) {
			return config.Errorf(config.Index("store.endpoints", i),
				"%q is plaintext to a host that is not loopback: the store's key names would cross the network in the clear, and anyone on the path could delete or roll back values; use https:// and store.tls (ca_file, cert_file, key_file)", e)
		}
	}
	_, err := f.Store.TLSConfig()
	return err
}

// ValidateFile checks the values a file gives, without requiring what the
// command line may supply instead (data_dir): what "moat check" asks of a
// configuration file on its own.
func (f *File) ValidateFile() error {
	if f.Listen != "" {
		if _, _, err := net.SplitHostPort(f.Listen); err != nil {
			return config.Errorf("listen", "%q: want host:port", f.Listen)
		}
	}
	if f.TrustDomain != "" {
		if _, err := identity.ParseTrustDomain(f.TrustDomain); err != nil {
			return config.Errorf("trust_domain", "%v", err)
		}
	}
	if f.SVIDTTL < 0 || f.SVIDTTL > 24*time.Hour {
		return config.Errorf("svid_ttl", "%s: want a positive duration of at most 24h", f.SVIDTTL)
	}
	if f.NodeTTL < 0 || f.NodeTTL > ca.MaxNodeTTL || (f.NodeTTL > 0 && f.NodeTTL < f.SVIDTTL) {
		return config.Errorf("node_ttl", "%s: want a duration of at least svid_ttl (%s) and at most %s", f.NodeTTL, f.SVIDTTL, ca.MaxNodeTTL)
	}
	if f.Advertise != "" {
		if host, _, err := net.SplitHostPort(f.Advertise); err != nil || host == "" || net.ParseIP(host).IsUnspecified() {
			return config.Errorf("advertise", "%q: want a reachable host:port", f.Advertise)
		}
	}
	if f.Name != "" {
		if err := identity.ValidName(f.Name); err != nil {
			return config.Errorf("name", "%v", err)
		}
	}
	if f.Retention < 0 {
		return config.Errorf("retention", "%s: want a positive period such as 30d", time.Duration(f.Retention))
	}
	if f.Metrics != "" {
		if _, _, err := net.SplitHostPort(f.Metrics); err != nil {
			return config.Errorf("metrics", "%q: want host:port", f.Metrics)
		}
	}
	if _, err := f.KeyRotationPeriod(); err != nil {
		return err
	}
	if f.Flows.CacheKiB < 0 || f.Flows.CacheKiB > 1<<20 {
		return config.Errorf("flows.cache_kib", "%d: want 0 (the default, 2048) to 1048576", f.Flows.CacheKiB)
	}
	if f.Flows.OpenPartitions < 0 || f.Flows.OpenPartitions > 1000 {
		return config.Errorf("flows.open_partitions", "%d: want 0 (the default, 8) to 1000", f.Flows.OpenPartitions)
	}
	for i, e := range f.Export {
		p := config.Index("export", i)
		switch {
		case e.Dir == "":
			return config.Errorf(config.Join(p, "dir"), "required")
		case e.Format != "" && e.Format != "ocsf" && e.Format != "vpc":
			return config.Errorf(config.Join(p, "format"), "%q: want ocsf or vpc", e.Format)
		case e.MaxMB < 0 || e.MaxFiles < 0 || e.RotateEvery < 0 || e.MaxAge < 0:
			return config.Errorf(p, "sizes, counts and periods must not be negative")
		case e.MaxAge > 0 && time.Duration(e.MaxAge) < 24*time.Hour:
			return config.Errorf(config.Join(p, "max_age"), "%s: want whole days (1d or more)", time.Duration(e.MaxAge))
		}
	}
	if err := f.Store.validate("store"); err != nil {
		return err
	}
	if err := f.Log.Validate(); err != nil {
		return err
	}
	if _, err := f.MFA.Config("mfa"); err != nil {
		return err
	}
	if _, err := f.Access.Config("access"); err != nil {
		return err
	}
	return f.KEK.Validate("kek")
}

func (s *StoreFile) validate(path string) error {
	switch s.Backend {
	case "", "bolt":
		if len(s.Endpoints) > 0 {
			return config.Errorf(config.Join(path, "endpoints"), "only the etcd backend takes endpoints")
		}
	case "etcd":
		if len(s.Endpoints) == 0 {
			return config.Errorf(config.Join(path, "endpoints"), "the etcd backend needs at least one endpoint")
		}
		for i, e := range s.Endpoints {
			_, scheme, err := endpointHost(e)
			if err != nil || scheme != "" && scheme != "http" && scheme != "https" {
				return config.Errorf(config.Index(config.Join(path, "endpoints"), i), "%q: want host:port or a URL such as https://10.0.0.1:2379", e)
			}
			switch {
			case s.TLS != nil && scheme == "http":
				return config.Errorf(config.Index(config.Join(path, "endpoints"), i), "%q is plaintext, but tls is set: write https:// or host:port", e)
			}
		}
		if t := s.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
			return config.Errorf(config.Join(path, "tls"), "give both cert_file and key_file, or neither")
		}
		if s.Prefix != "" && !strings.HasSuffix(s.Prefix, "/") {
			return config.Errorf(config.Join(path, "prefix"), "%q must end in \"/\"", s.Prefix)
		}
		if s.Timeout < 0 {
			return config.Errorf(config.Join(path, "timeout"), "%s: want a positive duration", time.Duration(s.Timeout))
		}
	default:
		return config.Errorf(config.Join(path, "backend"), "%q: want bolt or etcd", s.Backend)
	}
	if s.Backend != "etcd" && s.TLS != nil {
		return config.Errorf(config.Join(path, "tls"), "only the etcd backend takes tls")
	}
	return nil
}

// PlaintextEndpoints lists the endpoints reached in plaintext at an
// address that is not loopback, which validation refuses.
func (s *StoreFile) PlaintextEndpoints() []string {
	if s.Backend != "etcd" {
		return nil
	}
	var out []string
	for _, e := range s.Endpoints {
		if s.plaintextAcross(e) {
			out = append(out, e)
		}
	}
	return out
}

// plaintextAcross reports whether endpoint e is reached in plaintext at an
// address that is not loopback.
func (s *StoreFile) plaintextAcross(e string) bool {
	host, scheme, err := endpointHost(e)
	return err == nil && s.TLS == nil && scheme != "https" && !loopbackHost(host)
}

// LoopbackEndpoint reports whether the etcd endpoint e is on a loopback
// address.
func LoopbackEndpoint(e string) bool {
	host, _, err := endpointHost(e)
	return err == nil && loopbackHost(host)
}

// endpointHost splits an etcd endpoint (a URL or host:port) into its
// host and scheme ("" for host:port).
func endpointHost(e string) (host, scheme string, err error) {
	hostport := e
	if u, err := url.Parse(e); err == nil && u.Host != "" {
		hostport, scheme = u.Host, u.Scheme
	}
	host, _, err = net.SplitHostPort(hostport)
	return host, scheme, err
}

// loopbackHost reports whether host (a name or an address) is this
// machine's: "localhost" or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// KeyRotationPeriod is the age at which the primary data key is rotated:
// key_rotation, seal.DefaultRotation when it is empty, or 0 for "none" (by
// "moat keys rotate" and the bound on encryptions alone).
func (f *File) KeyRotationPeriod() (time.Duration, error) {
	switch f.KeyRotation {
	case "":
		return seal.DefaultRotation, nil
	case "none":
		return 0, nil
	}
	d, err := config.ParseDuration(f.KeyRotation)
	if err == nil && d <= 0 {
		err = fmt.Errorf("%s: want a positive period such as 90d, or none", d)
	}
	if err != nil {
		return 0, config.Errorf("key_rotation", "%v", err)
	}
	return d, nil
}
