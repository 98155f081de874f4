//go:build unix

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/seal"
)

// scriptCondition answers the harness's own conditions: [root] holds when
// the test runs as root (network namespaces and nftables need it; CI runs
// as root).
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

var uniqSeq atomic.Int64

// uniqueName is a name no other script of this run, nor another test
// process, uses now.
func uniqueName() string { return fmt.Sprintf("mts%d-%d", os.Getpid()%100000, uniqSeq.Add(1)) }

// cmdUniq sets VAR to a unique prefix for names the script's commands
// make (the demo's network namespaces).
func cmdUniq(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: uniq VAR")
	}
	ts.Setenv(args[0], uniqueName()+"-")
}

// cmdNetns creates a network namespace for the script (its loopback up,
// nothing else), sets VAR to its name, and from then on runs every moat
// the script runs inside it: "exec moat", server, agent, start and
// "eventually … moat" all find, first on PATH, a moat that enters the
// namespace ("ip netns exec", which execs, so signals reach moat itself).
// The namespace, and so any firewall table in it, is deleted when the
// script ends, after the processes it started have stopped.
func cmdNetns(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: netns VAR")
	}
	if runtime.GOOS != "linux" {
		ts.Fatalf("netns: network namespaces are Linux's")
	}
	name := uniqueName()
	ip := func(a ...string) {
		if out, err := exec.Command("ip", a...).CombinedOutput(); err != nil {
			ts.Fatalf("ip %s: %v: %s", strings.Join(a, " "), err, out)
		}
	}
	ip("netns", "add", name)
	ts.Defer(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			ts.Logf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ip("-n", name, "link", "set", "lo", "up")
	ts.Setenv(netnsVar, name)
	ts.Setenv("PATH", filepath.Join(filepath.Dir(lookProg(ts, "moat")), netnsDir)+string(os.PathListSeparator)+ts.Getenv("PATH"))
	ts.Setenv(args[0], name)
}

// The netns command's wrappers run the built moat and moat-agent in the
// namespace $MOAT_SCRIPT_NETNS names. They are written once, beside the
// binaries, before any script runs: an executable written by a script
// just before it runs it fails now and then with "text file busy", when
// another script's fork has inherited the descriptor it was written
// through.
const (
	netnsVar = "MOAT_SCRIPT_NETNS"
	netnsDir = "netns"
)

func writeNetnsWrappers(binDir string) error {
	dir := filepath.Join(binDir, netnsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, prog := range []string{"moat", "moat-agent"} {
		wrapper := fmt.Sprintf("#!/bin/sh\nexec ip netns exec \"$%s\" %s \"$@\"\n", netnsVar, filepath.Join(binDir, prog))
		if err := os.WriteFile(filepath.Join(dir, prog), []byte(wrapper), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// cmdConnect asks the HTTP CONNECT proxy at PROXY for a tunnel to
// HOST:PORT, from the test process (so the proxy tells the caller by the
// test's uid, $UID), and prints the proxy's status line; through a tunnel
// it was granted, it GETs / of HOST and prints the body.
func cmdConnect(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: connect PROXY HOST:PORT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dialListening(ctx, "tcp", args[0])
	ts.Check(err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", args[1], args[1])
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s\n", resp.Status)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(ts.Stdout(), "%s\n", strings.TrimSpace(string(body)))
		if !neg {
			ts.Fatalf("CONNECT %s: %s", args[1], resp.Status)
		}
		return
	}
	if neg {
		ts.Fatalf("CONNECT %s was granted", args[1])
	}
	host, _, _ := strings.Cut(args[1], ":")
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	got, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	ts.Check(err)
	body, err := io.ReadAll(io.LimitReader(got.Body, 1<<20))
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s\n", body)
}

// cmdNodePost posts the JSON of FILE to the control plane's PATH with
// the credentials of NODE's agent (unsealed as root on the node can), as
// a compromised agent would, and prints the answer (! nodepost: expects
// the call refused, and prints why to stderr). In a JSON array, an
// element's "time" of 0 is replaced by the present, so that flow records
// are recent.
func cmdNodePost(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: [!] nodepost NODE PATH FILE")
	}
	node, path, data := args[0], args[1], filepath.Join(ts.Getenv("WORK"), args[0])
	var body any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[2])), &body))
	if elems, ok := body.([]any); ok {
		now := time.Now().UnixMilli()
		for i, e := range elems {
			if m, ok := e.(map[string]any); ok && m["time"] == float64(0) {
				m["time"] = now + int64(i)
			}
		}
	}
	kr, _, err := (&seal.KEKConfig{}).OpenKeyring(data, ts.Getenv, false)
	ts.Check(err)
	keyDER, err := seal.ReadSealedFile(filepath.Join(data, "node", agent.SealedKeyFile), kr.AEAD(), "agent/"+node+"/node/key")
	ts.Check(err)
	stolen := filepath.Join(ts.Getenv("WORK"), node+".stolen")
	ts.Check(os.MkdirAll(stolen, 0o700))
	for _, f := range []string{api.CertFile, api.BundleFile} {
		b, err := os.ReadFile(filepath.Join(data, "node", f))
		ts.Check(err)
		ts.Check(os.WriteFile(filepath.Join(stolen, f), b, 0o600))
	}
	ts.Check(os.WriteFile(filepath.Join(stolen, api.KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	cl, err := api.NewClientFromDir(ts.Getenv("MOAT_SERVER"), stolen)
	ts.Check(err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out json.RawMessage
	err = cl.Call(ctx, http.MethodPost, path, body, &out)
	switch {
	case neg && err == nil:
		ts.Fatalf("nodepost %s %s: answered %s, want a refusal", node, path, out)
	case neg:
		fmt.Fprintf(ts.Stderr(), "%v\n", err)
		return
	}
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s\n", out)
}
