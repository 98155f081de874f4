package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func runCheck(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, append([]string{"check"}, args...))
	return code, out.String(), errb.String()
}

func TestCheckCommand(t *testing.T) {
	const fail = "../check/testdata/rules/AWS-NET-001/fail"
	const pass = "../check/testdata/rules/AWS-NET-001/pass"
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"critical finding fails at the default high", []string{fail}, 3, "AWS-NET-001  aws_instance.bastion", "findings at or above high"},
		{"--fail-on none never fails", []string{"--fail-on", "none", fail}, 0, "CRITICAL", ""},
		{"--fail-on critical with only medium findings", []string{"--fail-on", "critical", pass}, 0, "2 findings (2 medium)", ""},
		{"a medium finding passes --fail-on high", []string{"../check/testdata/rules/MOAT-006/fail"}, 0, "MOAT-006", ""},
		{"a medium finding fails --fail-on medium", []string{"--fail-on", "medium", "../check/testdata/rules/MOAT-006/fail"}, 3, "MOAT-006", ""},
		{"sarif", []string{"--format", "sarif", "--fail-on", "none", fail}, 0, `"version": "2.1.0"`, ""},
		{"junit", []string{"--format", "junit", "--fail-on", "none", fail}, 0, "<testsuites", ""},
		{"json", []string{"--format", "json", "--fail-on", "none", fail}, 0, `"rule": "AWS-NET-001"`, ""},
		{"explain prints the whole path", []string{"--explain", "AWS-NET-001", fail}, 0, "6. sg       aws_security_group.ssh", ""},
		{"rules", []string{"--rules"}, 0, "MOAT-007", ""},
		{"bad severity", []string{"--fail-on", "severe", fail}, 2, "", "unknown severity"},
		{"bad format", []string{"--format", "xml", fail}, 2, "", `--format "xml"`},
		{"no paths", nil, 2, "", "give at least one PATH"},
		{"missing path", []string{"../check/testdata/nothing-here"}, 1, "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCheck(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
			if !strings.Contains(out, tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, out)
			}
			if !strings.Contains(errs, tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, errs)
			}
		})
	}
}

// TestCheckReachAllTraffic: a group admitting all traffic is reachable on
// every protocol and port at once, which --reach says in words, and its
// JSON as protocol "all" with no port; both said "tcp 0".
func TestCheckReachAllTraffic(t *testing.T) {
	const dir = "../check/testdata/aws/all-traffic"
	code, out, errs := runCheck(t, "--reach", "aws_instance.web", dir)
	if code != 0 || !strings.Contains(out, "\n    all traffic (every protocol and port) from every IPv4 internet address\n") || strings.Contains(out, "tcp 0") {
		t.Errorf("exit %d, want 0 and all traffic from the internet:\n%s%s", code, out, errs)
	}
	code, out, errs = runCheck(t, "--reach", "aws_instance.web", "--format", "json", dir)
	var got struct {
		Access []map[string]any `json:"access"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("exit %d, %v:\n%s%s", code, err, out, errs)
	}
	all := 0 // from the internet
	for _, a := range got.Access {
		switch {
		case a["protocol"] == "all":
			if a["source"] == "internet" {
				all++
			}
			if _, ok := a["port"]; ok {
				t.Errorf("all traffic from %v with a port: %v", a["source"], a["port"])
			}
		case a["port"] == nil || a["port"] == 0.0:
			t.Errorf("%v: a port-wise entry without a port", a)
		}
	}
	if all != 1 {
		t.Errorf("%d entries for all traffic from the internet, want 1: %s", all, out)
	}
}

// TestCheckErrorsShowRepositoryTextAsEscapes: a checked repository names
// its own directories, and an error quotes them: a module directory whose
// name holds a direction override, a C1 CSI and ESC, with a file that
// does not parse, reaches stderr with those as escapes.
func TestCheckErrorsShowRepositoryTextAsEscapes(t *testing.T) {
	root := t.TempDir()
	const hostile = "mod\u202e\u009b2J\x1b[31m"
	if err := os.Mkdir(filepath.Join(root, hostile), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"main.tf":                 "module \"m\" {\n  source = \"./" + hostile + "\"\n}\n",
		hostile + "/broken.tf":    "resource \"aws_vpc\" \"a\" {\n  cidr_block =\n}\n",
		hostile + "/variables.tf": "",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := runCheck(t, root)
	if code == 0 {
		t.Fatalf("a module that does not parse was checked: %s", stderr)
	}
	for i, r := range stderr {
		if r < ' ' && r != '\n' || r >= 0x80 && !strconv.IsPrint(r) {
			t.Fatalf("%U raw at byte %d of stderr: %q", r, i, stderr)
		}
	}
	if !strings.Contains(stderr, `mod\u202e\u009b2J\x1b[31m`) {
		t.Fatalf("stderr does not name the module directory with escapes: %q", stderr)
	}
	t.Logf("stderr: %s", stderr)
}
