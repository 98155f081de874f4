package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"moat/internal/config"
	"moat/internal/identity"
	"moat/internal/server"
)

// serverConfig is moat server's configuration file; flags share its names.
type serverConfig struct {
	DataDir     string        `yaml:"data_dir"`
	Listen      string        `yaml:"listen"`
	TrustDomain string        `yaml:"trust_domain"`
	SVIDTTL     time.Duration `yaml:"svid_ttl"`
	Name        string        `yaml:"name"`
	AdminDir    string        `yaml:"admin_dir"`
	Store       storeConfig   `yaml:"store"`
	KEK         kekConfig     `yaml:"kek"`
	// Retention is how long flow records are kept; zero means 30d.
	Retention config.Duration `yaml:"retention"`
	// Alerts names the detection and alert-delivery file; empty runs the
	// default rules with no sinks.
	Alerts string `yaml:"alerts"`
	// Metrics, when set, serves Prometheus /metrics on this address.
	Metrics string `yaml:"metrics"`
	// KeyRotation rotates the primary data key when it is this old (e.g.
	// 90d); zero means only by "moat keys rotate".
	KeyRotation config.Duration `yaml:"key_rotation"`
	// MFA decides which admin calls need a fresh second factor (default:
	// the sensitive ones, for every role).
	MFA server.MFAFile `yaml:"mfa"`
	// Access governs break-glass grants and session recordings.
	Access server.AccessFile `yaml:"access"`
	// Flows bounds the flow store's memory.
	Flows flowStoreConfig `yaml:"flows"`
}

// flowStoreConfig bounds the flow store's memory: the SQLite page cache
// is at most open_partitions × 2 connections × cache_kib.
type flowStoreConfig struct {
	// CacheKiB is the page cache per connection; zero means 2048.
	CacheKiB int `yaml:"cache_kib"`
	// OpenPartitions is how many day partitions stay open; zero means 8.
	OpenPartitions int `yaml:"open_partitions"`
}

// storeConfig selects the control-plane store.
type storeConfig struct {
	// Backend is "bolt" (default: a file under data_dir) or "etcd".
	Backend   string   `yaml:"backend"`
	Endpoints []string `yaml:"endpoints"`
	Prefix    string   `yaml:"prefix"`
}

func (c *serverConfig) flags(fs *flag.FlagSet) *string {
	file := fs.String("config", "", "YAML configuration file (keys as the flags, with _ for -)")
	fs.StringVar(&c.DataDir, "data-dir", "", "directory of the control plane's state (required)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:7400", "API address (mutual TLS)")
	fs.StringVar(&c.Name, "name", "control", "this server's name in its SVID")
	fs.StringVar(&c.Alerts, "alerts", "", "detection and alert sinks file (YAML)")
	fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	c.kekFlags(fs)
	c.keyRotationFlag(fs)
	return file
}

func (c *serverConfig) validate(needTD bool) error {
	if c.DataDir == "" {
		return config.Errorf("data_dir", "required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return config.Errorf("listen", "%q: want host:port", c.Listen)
	}
	if needTD {
		if _, err := identity.ParseTrustDomain(c.TrustDomain); err != nil {
			return config.Errorf("trust_domain", "%v", err)
		}
	}
	if c.SVIDTTL < 0 || c.SVIDTTL > 24*time.Hour {
		return config.Errorf("svid_ttl", "%s: want a positive duration of at most 24h", c.SVIDTTL)
	}
	if err := identity.ValidName(c.Name); err != nil {
		return config.Errorf("name", "%v", err)
	}
	if c.Flows.CacheKiB < 0 || c.Flows.CacheKiB > 1<<20 {
		return config.Errorf("flows.cache_kib", "%d: want 0 (the default, 2048) to 1048576", c.Flows.CacheKiB)
	}
	if c.Flows.OpenPartitions < 0 || c.Flows.OpenPartitions > 1000 {
		return config.Errorf("flows.open_partitions", "%d: want 0 (the default, 8) to 1000", c.Flows.OpenPartitions)
	}
	if c.KeyRotation < 0 {
		return config.Errorf("key_rotation", "%s: want a positive period such as 90d, or none", time.Duration(c.KeyRotation))
	}
	switch c.Store.Backend {
	case "", "bolt":
		if len(c.Store.Endpoints) > 0 {
			return config.Errorf("store.endpoints", "only the etcd backend takes endpoints")
		}
	case "etcd":
		if len(c.Store.Endpoints) == 0 {
			return config.Errorf("store.endpoints", "the etcd backend needs at least one endpoint")
		}
		for i, e := range c.Store.Endpoints {
			hostport := e
			if u, err := url.Parse(e); err == nil && u.Host != "" {
				hostport = u.Host
			}
			if _, _, err := net.SplitHostPort(hostport); err != nil {
				return config.Errorf(config.Index("store.endpoints", i), "%q: want host:port or a URL such as http://10.0.0.1:2379", e)
			}
		}
		if c.Store.Prefix != "" && !strings.HasSuffix(c.Store.Prefix, "/") {
			return config.Errorf("store.prefix", "%q must end in \"/\"", c.Store.Prefix)
		}
	default:
		return config.Errorf("store.backend", "%q: want bolt or etcd", c.Store.Backend)
	}
	if _, err := c.MFA.Config("mfa"); err != nil {
		return err
	}
	if _, err := c.Access.Config("access"); err != nil {
		return err
	}
	return c.KEK.validate("kek")
}

func serverCommand() *Command {
	return &Command{
		Name:    "server",
		Summary: "run the control plane (CA, registry, intentions, audit)",
		Sub:     []*Command{serverInitCommand(), serverRunCommand()},
	}
}

func serverInitCommand() *Command {
	var c serverConfig
	var file *string
	var validate *bool
	return &Command{
		Name:    "init",
		Summary: "create the CA and the first admin's credentials",
		Usage:   "--data-dir DIR --trust-domain NAME [flags]",
		Help: "Creates a control plane under --data-dir: the CA (root and intermediate, keys\n" +
			"sealed under the key-encryption key), the store, and admin credentials in\n" +
			"--admin-dir (default DIR.admin, beside the data directory so that a copy of it\n" +
			"holds no usable credential; files mode 0600) for the admin commands.",
		Flags: func(fs *flag.FlagSet) {
			file = c.flags(fs)
			fs.StringVar(&c.TrustDomain, "trust-domain", "", "trust domain, e.g. example.org (required)")
			fs.DurationVar(&c.SVIDTTL, "svid-ttl", time.Hour, "default SVID lifetime (at most 24h)")
			fs.StringVar(&c.AdminDir, "admin-dir", "", "where to write the admin credentials (default DATA_DIR.admin)")
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := c.validate(true); err != nil {
				return err
			}
			if *validate {
				fmt.Fprintln(e.Stdout, "configuration OK")
				return nil
			}
			if c.AdminDir == "" {
				c.AdminDir = strings.TrimRight(filepath.Clean(c.DataDir), string(filepath.Separator)) + ".admin"
			}
			if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
				return err
			}
			kr, err := c.KEK.keyring(e, c.DataDir, true)
			if err != nil {
				return err
			}
			sealer := kr.AEAD()
			st, err := openStore(ctx, c.DataDir, c.Store, sealer)
			if err != nil {
				return err
			}
			defer st.Close()
			err = server.Init(ctx, st, server.InitConfig{
				TrustDomain: c.TrustDomain, SVIDTTL: c.SVIDTTL, AdminDir: c.AdminDir, Sealer: sealer,
			})
			if errors.Is(err, server.ErrInitialized) {
				return fmt.Errorf("%s already holds a control plane", c.DataDir)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "control plane created for trust domain %q\nadmin credentials: %s\nnext: moat server run --data-dir %s --listen %s\n",
				c.TrustDomain, c.AdminDir, c.DataDir, c.Listen)
			return nil
		},
	}
}

func serverRunCommand() *Command {
	var c serverConfig
	var file *string
	var validate *bool
	return &Command{
		Name:    "run",
		Summary: "serve the control-plane API",
		Usage:   "--data-dir DIR [--listen ADDR] [flags]",
		Flags: func(fs *flag.FlagSet) {
			file = c.flags(fs)
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := c.validate(false); err != nil {
				return err
			}
			if *validate {
				fmt.Fprintln(e.Stdout, "configuration OK")
				return nil
			}
			p, err := startServer(ctx, e, c, slog.New(slog.NewTextHandler(e.Stderr, nil)))
			if err != nil {
				return err
			}
			defer p.Close()
			return p.Run(ctx)
		},
	}
}
