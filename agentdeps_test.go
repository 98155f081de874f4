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
	}
	allowed := map[string]bool{"moat/internal/store/kv": true}
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
// (CGO_ENABLED=0, -tags grpcnotrace) against go build's defaults: the
// defaults link gRPC's request tracing and its templates and the C library
// glue, the shipped build none of them, and it still links gRPC (the
// Workload API), so the test reads the build it claims to.
func TestAgentShippedBuild(t *testing.T) {
	deps := func(env []string, args ...string) map[string]bool {
		cmd := exec.Command("go", append([]string{"list", "-deps"}, append(args, "./cmd/moat-agent")...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %v ./cmd/moat-agent: %v\n%s", args, err, out)
		}
		m := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			m[d] = true
		}
		return m
	}
	dropped := []string{"golang.org/x/net/trace", "html/template", "text/template", "runtime/cgo"}
	def := deps([]string{"CGO_ENABLED=1"})
	shipped := deps([]string{"CGO_ENABLED=0"}, "-tags", "grpcnotrace")
	if !shipped["google.golang.org/grpc"] {
		t.Fatalf("the shipped build of cmd/moat-agent links no google.golang.org/grpc: the list is not of the agent")
	}
	for _, p := range dropped {
		if !def[p] {
			t.Errorf("go build's defaults no longer link %s into cmd/moat-agent: the shipped build's flags may be stale", p)
		}
		if shipped[p] {
			t.Errorf("the shipped build of cmd/moat-agent links %s", p)
		}
	}
}
