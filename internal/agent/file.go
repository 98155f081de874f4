package agent

import (
	"net"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/identity"
	"moat/internal/seal"
)

// File is the configuration of "moat agent" as written in YAML; its flags
// share the key names (--data-dir is data_dir). The gateway's node takes
// the same keys as flags.
type File struct {
	// DataDir keeps the node identity, cached SVIDs and the flow spool;
	// required.
	DataDir string `yaml:"data_dir"`
	// Server lists the control plane's servers, "host:port[,host:port...]";
	// a name resolving to several addresses names them all. The agent
	// fails over between them. Required.
	Server string `yaml:"server"`
	// Join is a one-time join token, needed on the first start only.
	Join string `yaml:"join"`
	// Node names this node; required.
	Node string `yaml:"node"`
	// Listen is the mesh port (mutual TLS), published to peers; required.
	Listen string `yaml:"listen"`
	// Socket is the SPIFFE Workload API socket; empty means
	// DATA_DIR/workload.sock.
	Socket string `yaml:"socket"`
	// RequireUID serves an SVID only to the uid its registration names.
	RequireUID bool `yaml:"require_uid"`
	// Metrics, when set, serves Prometheus /metrics (plain HTTP, no
	// authentication) on this address.
	Metrics string `yaml:"metrics"`
	// KEK seals the node key, cached SVID keys and the spool; the key file
	// defaults to DATA_DIR.kek, created on first start.
	KEK seal.KEKConfig `yaml:"kek"`
	Log config.Log     `yaml:",inline"`
	// Access configures break-glass sessions on this node.
	Access AccessFile `yaml:"access"`
}

// DecodeFile reads an agent configuration file strictly.
func DecodeFile(name string) (*File, error) {
	var f File
	if err := config.DecodeFile(name, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseFile decodes an agent configuration file's contents strictly.
func ParseFile(src []byte) (*File, error) {
	var f File
	if err := config.Decode(src, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks f as the agent would run it; errors name the key path.
func (f *File) Validate() error {
	for _, req := range []struct{ key, v string }{{"data_dir", f.DataDir}, {"server", f.Server}, {"node", f.Node}, {"listen", f.Listen}} {
		if req.v == "" {
			return config.Errorf(req.key, "required")
		}
	}
	return f.ValidateFile()
}

// ValidateFile checks the values a file gives, without requiring what the
// command line may supply instead: what "moat check" asks of a
// configuration file on its own.
func (f *File) ValidateFile() error {
	if f.Server != "" {
		if _, err := api.ParseServers(f.Server); err != nil {
			return config.Errorf("server", "%v", err)
		}
	}
	if f.Node != "" {
		if err := identity.ValidName(f.Node); err != nil {
			return config.Errorf("node", "%v", err)
		}
	}
	if f.Listen != "" {
		if _, _, err := net.SplitHostPort(f.Listen); err != nil {
			return config.Errorf("listen", "%q: want host:port", f.Listen)
		}
	}
	if f.Metrics != "" {
		if _, _, err := net.SplitHostPort(f.Metrics); err != nil {
			return config.Errorf("metrics", "%q: want host:port", f.Metrics)
		}
	}
	if err := f.Log.Validate(); err != nil {
		return err
	}
	if _, err := f.Access.Config("access"); err != nil {
		return err
	}
	return f.KEK.Validate("kek")
}
