package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodServerYAML = `data_dir: DIR
listen: 127.0.0.1:7400
trust_domain: example.org
svid_ttl: 1h
store:
  backend: bolt
kek:
  source: file
`

// TestServerConfigErrors mutates a good file and expects an error naming the
// key path, with nothing created.
func TestServerConfigErrors(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"unknown key", "svid_ttl: 1h", "svid_tll: 1h", `svid_tll: unknown key (did you mean "svid_ttl"?)`},
		{"bad duration", "svid_ttl: 1h", "svid_ttl: one hour", `svid_ttl: bad duration "one hour"`},
		{"ttl too long", "svid_ttl: 1h", "svid_ttl: 48h", `svid_ttl: 48h0m0s: want a positive duration of at most 24h`},
		{"bad trust domain", "trust_domain: example.org", "trust_domain: spiffe://example.org", `trust_domain: identity: bad trust domain`},
		{"bad listen", "listen: 127.0.0.1:7400", "listen: localhost", `listen: "localhost": want host:port`},
		{"bad backend", "backend: bolt", "backend: zookeeper", `store.backend: "zookeeper": want bolt or etcd`},
		{"nested unknown key", "  backend: bolt", "  backend: bolt\n  endpoint: [x]", `store.endpoint: unknown key (did you mean "endpoints"?)`},
		{"etcd without endpoints", "backend: bolt", "backend: etcd", `store.endpoints: the etcd backend needs at least one endpoint`},
		{"etcd in plaintext across the network", "backend: bolt", "backend: etcd\n  endpoints: [\"http://10.0.1.1:2379\"]", `store.endpoints[0]: "http://10.0.1.1:2379" is plaintext to a host that is not loopback`},
		{"etcd host:port across the network without tls", "backend: bolt", "backend: etcd\n  endpoints: [\"127.0.0.1:2379\", \"etcd1:2379\"]", `store.endpoints[1]: "etcd1:2379" is plaintext to a host that is not loopback`},
		{"etcd http with tls", "backend: bolt", "backend: etcd\n  endpoints: [\"http://127.0.0.1:2379\"]\n  tls: {}", `store.endpoints[0]: "http://127.0.0.1:2379" is plaintext, but tls is set`},
		{"etcd tls without its key", "backend: bolt", "backend: etcd\n  endpoints: [\"https://10.0.1.1:2379\"]\n  tls: {cert_file: /nonexistent/c.pem}", `store.tls: give both cert_file and key_file, or neither`},
		{"etcd tls CA missing", "backend: bolt", "backend: etcd\n  endpoints: [\"https://10.0.1.1:2379\"]\n  tls: {ca_file: /nonexistent/ca.pem}", `store.tls.ca_file: open /nonexistent/ca.pem`},
		{"tls on bolt", "backend: bolt", "backend: bolt\n  tls: {}", `store.tls: only the etcd backend takes tls`},
		{"bad kek source", "source: file", "source: hsm", `kek.source: "hsm": want file, env or passphrase`},
		{"bad key rotation", "svid_ttl: 1h", "svid_ttl: 1h\nkey_rotation: soon", `key_rotation: bad duration "soon"`},
		{"negative key rotation", "svid_ttl: 1h", "svid_ttl: 1h\nkey_rotation: -1h", `key_rotation: -1h0m0s: want a positive period`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			src := strings.Replace(strings.Replace(goodServerYAML, "DIR", dir, 1), tc.from, tc.to, 1)
			if !strings.Contains(src, tc.to) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			file := filepath.Join(t.TempDir(), "server.yaml")
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI(t, nil, "server", "init", "--config", file)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want an error containing %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("%s was created by a failed init", dir)
			}
		})
	}
	t.Run("good file validates", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		file := filepath.Join(t.TempDir(), "server.yaml")
		os.WriteFile(file, []byte(strings.Replace(goodServerYAML, "DIR", dir, 1)), 0o600)
		code, stdout, stderr := runCLI(t, nil, "server", "init", "--config", file, "--validate")
		if code != 0 || !strings.Contains(stdout, "configuration OK") {
			t.Fatalf("exit %d, %q %q", code, stdout, stderr)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatal("--validate created the data directory")
		}
	})
}

func TestAgentConfigErrors(t *testing.T) {
	good := "data_dir: /tmp/x\nserver: 127.0.0.1:7400\nnode: n1\nlisten: 127.0.0.1:15443\n"
	cases := []struct{ from, to, want string }{
		{"node: n1", "node: N_1", `node: identity: bad name`},
		{"node: n1", "nod: n1", `nod: unknown key (did you mean "node"?)`},
		{"server: 127.0.0.1:7400", "server: nowhere", `server: "nowhere": want host:port`},
	}
	for _, tc := range cases {
		file := filepath.Join(t.TempDir(), "agent.yaml")
		os.WriteFile(file, []byte(strings.Replace(good, tc.from, tc.to, 1)), 0o600)
		code, _, stderr := runCLI(t, nil, "agent", "--config", file, "--validate")
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %q", tc.to, code, stderr, tc.want)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	var walk func(c *Command, path []string)
	walk = func(c *Command, path []string) {
		code, stdout, stderr := runCLI(t, nil, append(path[1:], "-h")...)
		if code != 0 || !strings.Contains(stdout, "Usage: "+strings.Join(path, " ")) {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", strings.Join(path, " "), code, stdout, stderr)
		}
		// A flag's help names its default once: in its text or in the
		// flag package's "(default X)", never both.
		for _, line := range strings.Split(stdout, "\n") {
			if strings.Count(line, "(default") > 1 {
				t.Errorf("%s -h: two defaults in %q", strings.Join(path, " "), strings.TrimSpace(line))
			}
		}
		if bad := flagAfterArgument(c.Usage); bad != "" {
			t.Errorf("%s -h: usage %q puts %s after an argument, where the flag package reads it as one", strings.Join(path, " "), c.Usage, bad)
		}
		for _, s := range c.Sub {
			walk(s, append(append([]string{}, path...), s.Name))
		}
	}
	walk(root(), []string{"moat"})
}

// flagAfterArgument returns the first flag a usage line shows after a
// positional argument ("NODE [-t]"), or "". Parsing stops at the first
// argument, so such a flag would be taken as another argument.
func flagAfterArgument(usage string) string {
	for _, alt := range strings.Split(usage, " | ") {
		prevFlag, seenArg := false, false
		for _, tok := range strings.Fields(alt) {
			bare := strings.TrimLeft(tok, "[(")
			isFlag := strings.HasPrefix(bare, "-")
			if isFlag && seenArg {
				return tok
			}
			if !isFlag && !prevFlag && bare != "" && bare[0] >= 'A' && bare[0] <= 'Z' {
				seenArg = true
			}
			prevFlag = isFlag && !strings.Contains(bare, "=") && !strings.HasSuffix(tok, "]")
		}
	}
	return ""
}

// TestErrorsNameTheCommandOnce: errors read "moat: flows: …", never
// "moat: moat flows: …".
func TestErrorsNameTheCommandOnce(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch"},
		{"flows", "--nosuch"},
		{"ca", "rotate", "nosuch"},
		{"ca", "rotate"},
		{"server", "run", "--listen"},
		{},
	} {
		code, _, stderr := runCLI(t, nil, args...)
		if code != 2 || !strings.HasPrefix(stderr, "moat: ") || strings.Contains(stderr, "moat: moat") {
			t.Errorf("moat %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
}
