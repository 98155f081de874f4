//go:build linux

package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const deployDir = "../../deploy"

// TestDeployConfigs runs each example configuration under deploy/config
// through its owner's --validate and "moat check", as an operator would
// before installing them.
func TestDeployConfigs(t *testing.T) {
	dir := filepath.Join(deployDir, "config")
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"server.yaml", []string{"server", "run", "--validate", "--config"}},
		{"agent.yaml", []string{"agent", "--validate", "--config"}},
		{"intentions.yaml", []string{"policy", "apply", "--validate", "-f"}},
	} {
		code, stdout, stderr := runCLI(t, nil, append(tc.args, filepath.Join(dir, tc.file))...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s%s", tc.file, code, stdout, stderr)
		}
	}

	// The gateway's --validate loads the certificate the file names: put
	// one where it says, under a test root.
	root := t.TempDir()
	src, err := os.ReadFile(filepath.Join(dir, "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := filepath.Join(root, "etc", "moat", "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, key, _ := selfSigned(t, tlsDir)
	os.Rename(cert, filepath.Join(tlsDir, "edge.crt"))
	os.Rename(key, filepath.Join(tlsDir, "edge.key"))
	gw := filepath.Join(root, "gateway.yaml")
	if err := os.WriteFile(gw, bytes.ReplaceAll(src, []byte("/etc/moat/tls/"), []byte(tlsDir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, nil, "gateway", "--config", gw, "--validate"); code != 0 {
		t.Errorf("gateway.yaml: exit %d: %s%s", code, stdout, stderr)
	}

	if code, stdout, stderr := runCLI(t, nil, "check", "--fail-on", "low", dir); code != 0 || !strings.Contains(stdout, "0 findings") {
		t.Errorf("moat check %s: exit %d: %s%s", dir, code, stdout, stderr)
	}
}

// TestDeployUnits checks the systemd units with systemd's own tools: every
// directive known, the ExecStart configuration and KEK credential agreeing
// with the example configurations, and a sandbox systemd rates as exposed
// at most 2.0 of 10; and the agent's break-glass drop-in.
func TestDeployUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed (Debian package systemd): %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, err := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	if err != nil || len(units) != 3 {
		t.Fatalf("units %v, %v: want moat-server, moat-agent and moat-gateway", units, err)
	}
	tmp := t.TempDir()
	cred := regexp.MustCompile(`(?m)^LoadCredential=kek:(/etc/moat/credentials/\S+\.kek)$`)
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(u)
		unit := string(b)
		m := cred.FindStringSubmatch(unit)
		if m == nil {
			t.Errorf("%s: no LoadCredential=kek: the KEK must come from outside the data directory", name)
		}
		// The configuration the unit runs with reads the KEK where
		// systemd puts the credential.
		want := "/run/credentials/" + name + "/kek"
		if cfg := regexp.MustCompile(`--config /etc/moat/(\w+)\.yaml`).FindStringSubmatch(unit); cfg != nil && cfg[1] != "gateway" {
			c, err := os.ReadFile(filepath.Join(deployDir, "config", cfg[1]+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(c), "file: "+want) {
				t.Errorf("%s: config/%s.yaml does not read the KEK from %s", name, cfg[1], want)
			}
		} else if !strings.Contains(unit, "--kek-file "+want) {
			t.Errorf("%s: the gateway does not read the KEK from %s", name, want)
		}
		for _, d := range []string{"User=moat", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory="} {
			if !strings.Contains(unit, d) {
				t.Errorf("%s: no %s", name, d)
			}
		}
		// Capabilities: none, but the gateway's to bind 443 and the
		// agent's CAP_NET_ADMIN (and netlink) for the host firewall's
		// nftables table, NFLOG log and SO_MARK.
		wantCaps := map[string]string{"moat-gateway.service": "CAP_NET_BIND_SERVICE", "moat-agent.service": "CAP_NET_ADMIN"}[name]
		if name == "moat-agent.service" {
			// The agent runs from the executable that links it alone
			// (cmd/moat-agent; bench/mesh measures why).
			if !strings.Contains(unit, "\nExecStart=/usr/local/bin/moat-agent --config ") {
				t.Errorf("%s: want ExecStart=/usr/local/bin/moat-agent --config …", name)
			}
			if !regexp.MustCompile(`(?m)^RestrictAddressFamilies=.*\bAF_NETLINK\b`).MatchString(unit) {
				t.Errorf("%s: the host firewall speaks netlink, but AF_NETLINK is not allowed", name)
			}
		}
		for _, d := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
			if !strings.Contains(unit, "\n"+d+"="+wantCaps+"\n") {
				t.Errorf("%s: want %s=%s", name, d, wantCaps)
			}
		}
		local := filepath.Join(tmp, name)
		if err := os.WriteFile(local, []byte(strings.NewReplacer("/usr/local/bin/moat-agent", self, "/usr/local/bin/moat", self).Replace(unit)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", local).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
		out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", local).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", name, err, out)
		}
	}

	// The break-glass drop-in: every directive known (verify reads
	// UNIT.d/ beside the unit), the three capabilities of starting a
	// session as another account, and no-new-privileges lifted for the
	// session's sudo.
	dropIn := filepath.Join(deployDir, "systemd", "moat-agent.service.d", "break-glass.conf")
	b, err := os.ReadFile(dropIn)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, d := range []string{"AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_CHOWN\n", "NoNewPrivileges=no\n", "CapabilityBoundingSet=~\n", "SystemCallFilter=\n"} {
		if !strings.Contains(conf, "\n"+d) {
			t.Errorf("break-glass.conf: want %s", strings.TrimSpace(d))
		}
	}
	// Installed beside the unit, the sandbox checks above no longer hold
	// (by design): verify only.
	if err := os.MkdirAll(filepath.Join(tmp, "moat-agent.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "moat-agent.service.d", "break-glass.conf"), []byte(conf+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(tmp, "moat-agent.service")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify moat-agent.service with break-glass.conf: %v\n%s", err, out)
	}
}
