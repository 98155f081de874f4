package moat_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAgentLinksOnlyTheAgent keeps cmd/moat-agent (and the agent's
// packages, which "moat agent" runs) free of what only the control plane,
// the gateway or the dashboard use: every linked package's initialisers
// run in every agent and its code is mapped into it, so a dependency that
// creeps back costs each node memory (bench/mesh measures it).
func TestAgentLinksOnlyTheAgent(t *testing.T) {
	forbidden := []string{
		"go.etcd.io/etcd/",         // the control plane's cluster store
		"go.etcd.io/bbolt",         // the control plane's embedded store
		"go.uber.org/zap",          // etcd's logger
		"modernc.org/sqlite",       // the server's flow store
		"github.com/goccy/go-json", // the flow store's codec
		"github.com/corazawaf/",    // the gateway's WAF
		"github.com/go-webauthn/",  // administrators' MFA
		"github.com/wasilibs/",     // the WAF's RE2
		"moat/internal/server",
		"moat/internal/gateway",
		"moat/internal/waf",
		"moat/internal/ui",
		"moat/internal/detect",
		"moat/internal/check",
		"moat/internal/flow/flowstore",
		"moat/internal/store/", // backends; store/kv is the contract alone
		// The Workload API is served by hand (internal/agent/workloadrpc.go):
		// gRPC and its HTTP/2 stack are 1.2 MB of the agent's executable.
		"google.golang.org/grpc",
		"golang.org/x/net/http2",
		// Metrics are written by internal/metrics: the Prometheus client,
		// its text and protobuf encoders and procfs stay out.
		"github.com/prometheus/",
		// The keyring's keyset is read by hand (internal/seal/keyset.go);
		// Tink and the protobuf runtime its registry needs stay out, and
		// backups, which need Tink's streaming AEAD, live in
		// internal/backup.
		"github.com/tink-crypto/",
		"google.golang.org/protobuf/",
		"moat/internal/backup",
	}
	allowed := map[string]bool{
		"moat/internal/store/kv": true,
		// protowire alone encodes the Workload API and the keyset.
		"google.golang.org/protobuf/encoding/protowire": true,
		"google.golang.org/protobuf/internal/detrand":   true,
		"google.golang.org/protobuf/internal/errors":    true,
	}
	for _, pkg := range []string{"./cmd/moat-agent", "./internal/agent", "./internal/cli/agentcli"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 50 {
			t.Fatalf("go list -deps %s listed %d packages: %q", pkg, len(deps), out)
		}
		for _, d := range deps {
			if allowed[d] {
				continue
			}
			for _, f := range forbidden {
				if d == strings.TrimSuffix(f, "/") || strings.HasPrefix(d, f) || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
	}
}

// TestAgentShippedBuild checks the build cmd/moat-agent's doc gives
// (CGO_ENABLED=0) against go build's defaults: the defaults link the C
// library's glue, the shipped build does not, and both link the agent, so
// the test reads the build it claims to.
func TestAgentShippedBuild(t *testing.T) {
	deps := func(env ...string) map[string]bool {
		cmd := exec.Command("go", "list", "-deps", "./cmd/moat-agent")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps ./cmd/moat-agent: %v\n%s", err, out)
		}
		m := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			m[d] = true
		}
		return m
	}
	def, shipped := deps("CGO_ENABLED=1"), deps("CGO_ENABLED=0")
	if !shipped["moat/internal/agent"] {
		t.Fatalf("the shipped build of cmd/moat-agent links no moat/internal/agent: the list is not of the agent")
	}
	if !def["runtime/cgo"] {
		t.Errorf("go build's defaults no longer link runtime/cgo into cmd/moat-agent: the shipped build's flags may be stale")
	}
	if shipped["runtime/cgo"] {
		t.Errorf("the shipped build of cmd/moat-agent links runtime/cgo")
	}
}
