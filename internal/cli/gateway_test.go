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
	code = Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, []string{"gateway", "--upstream", "nohostport"})
	if code != 2 || !strings.Contains(errb.String(), "want service=host:port") {
		t.Errorf("bad upstream: code %d, stderr %q", code, errb.String())
	}
}
