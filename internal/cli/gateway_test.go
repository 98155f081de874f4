package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGatewayValidate(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "gw.yaml")
	os.WriteFile(name, []byte("services: [web]\nroutes:\n  - service: shop\n    port: 80\n"), 0o600)
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"gateway", "--config", name, "--validate"})
	if code != 1 || !strings.Contains(errb.String(), `routes[0].service: unknown service "shop"`) {
		t.Errorf("bad config: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"gateway", "--config", name, "--data-dir", dir, "--node", "Edge_1"})
	if code != 1 || !strings.Contains(errb.String(), "node: identity: bad name") {
		t.Errorf("bad node: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"gateway", "--config", name, "--data-dir", dir, "--node", "edge", "--service", "Bad Name"})
	if code != 1 || !strings.Contains(errb.String(), "service: identity: bad name") {
		t.Errorf("bad service: code %d, stderr %q", code, errb.String())
	}
}
