package check

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(t *testing.T, paths ...string) *Report {
	t.Helper()
	rep, err := Run(context.Background(), Config{Paths: paths})
	if err != nil {
		t.Fatalf("Run(%v): %v", paths, err)
	}
	return rep
}

// golden compares got with the file at name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func active(rep *Report, rule string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.RuleID == rule && f.Suppressed == "" {
			out = append(out, f)
		}
	}
	return out
}

// wantNotes fails t unless, for each of want, some unsuppressed
// CHECK-001 note of rep contains it.
func wantNotes(t *testing.T, rep *Report, want ...string) {
	t.Helper()
	var notes []string
	for _, n := range active(rep, RuleNotEvaluated) {
		notes = append(notes, n.Message)
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(notes, "\n"), w) {
			t.Errorf("no note saying %q in %q", w, notes)
		}
	}
}

// TestRules runs every rule's failing and passing project under
// testdata/rules/RULE-ID/{fail,pass}: the failing one must raise the rule,
// the passing one must not, and the text output must match want.txt.
func TestRules(t *testing.T) {
	dirs, err := filepath.Glob("testdata/rules/*")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		rule := filepath.Base(d)
		seen[rule] = true
		if _, ok := RuleByID(rule); !ok {
			t.Errorf("%s: no rule %q", d, rule)
			continue
		}
		for _, v := range []string{"fail", "pass"} {
			dir := filepath.Join(d, v)
			t.Run(rule+"/"+v, func(t *testing.T) {
				rep := run(t, dir)
				got := active(rep, rule)
				if v == "fail" && len(got) == 0 {
					t.Errorf("%s: want a %s finding, got none", dir, rule)
				}
				if v == "pass" && len(got) > 0 {
					t.Errorf("%s: want no %s finding, got %+v", dir, rule, got)
				}
				var buf bytes.Buffer
				if err := Write(&buf, rep, "text"); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join(dir, "want.txt"), buf.Bytes())
			})
		}
	}
	for _, r := range Rules() {
		if !seen[r.ID] {
			t.Errorf("rule %s has no project under testdata/rules", r.ID)
		}
	}
}

func TestFormatsGolden(t *testing.T) {
	rep := run(t, "testdata/rules/AWS-NET-001/fail", "testdata/rules/CHECK-002/pass", "testdata/rules/MOAT-007/fail")
	for _, f := range []string{"json", "sarif", "junit"} {
		var buf bytes.Buffer
		if err := Write(&buf, rep, f); err != nil {
			t.Fatal(err)
		}
		golden(t, "testdata/formats/report."+f, buf.Bytes())
	}
	if err := Write(&bytes.Buffer{}, rep, "yaml"); err == nil || !strings.Contains(err.Error(), `"yaml"`) {
		t.Errorf("Write(yaml) = %v, want an unknown-format error", err)
	}
}

func TestExplain(t *testing.T) {
	rep := run(t, "testdata/rules/AWS-NET-001/fail")
	var buf bytes.Buffer
	if err := Explain(&buf, rep, "AWS-NET-001@aws_instance.bastion"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1. source   internet", "aws_internet_gateway.main", "aws_route_table.public", "aws_subnet.public", "aws_security_group.ssh ingress[0] allows tcp 22 from 0.0.0.0/0", "aws_instance.bastion"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, buf.String())
		}
	}
	if err := Explain(&buf, rep, "AWS-NET-001@aws_instance.nothing"); err == nil {
		t.Error("explaining a missing finding: want an error")
	}
	if err := Explain(&buf, rep, "NOPE-1"); err == nil {
		t.Error("explaining an unknown rule: want an error")
	}
}

func TestSuppression(t *testing.T) {
	rep := run(t, "testdata/rules/CHECK-002/fail")
	if len(active(rep, RuleUnusedSG)) != 1 {
		t.Errorf("a suppression without a reason must not suppress: %+v", rep.Findings)
	}
	bad := active(rep, RuleBadSuppression)
	if len(bad) != 1 || bad[0].Line == 0 {
		t.Errorf("want one CHECK-002 finding with a line, got %+v", bad)
	}
	rep = run(t, "testdata/rules/CHECK-002/pass")
	var sup []Finding
	for _, f := range rep.Findings {
		if f.Suppressed != "" {
			sup = append(sup, f)
		}
	}
	if len(sup) != 1 || sup[0].RuleID != RuleUnusedSG || sup[0].Suppressed != "kept for the blue-green switch next week" {
		t.Errorf("want the unused-group finding suppressed with its reason, got %+v", sup)
	}
	if _, any := rep.Max(); any {
		t.Errorf("suppressed findings must not count towards --fail-on: %+v", rep.Findings)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "main.tf")
	if err := os.WriteFile(bad, []byte("resource \"aws_vpc\" \"x\" {\n  cidr_block = \n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notMoat := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(notMoat, []byte("hello: world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{nil, "no paths"},
		{[]string{filepath.Join(dir, "missing")}, "no such file"},
		{[]string{dir}, "main.tf:2"},
		{[]string{notMoat}, "not a moat policy, server or gateway config"},
		{[]string{bad}, "want a Terraform directory"},
	} {
		_, err := Run(context.Background(), Config{Paths: tc.paths})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%v) = %v, want an error containing %q", tc.paths, err, tc.want)
		}
	}
}

// TestRunVarFileMissing: a --var-file that does not exist outside the
// checked tree was reported by its path inside the filesystem's root, with
// the leading slash cut ("tf: tmp/…/extra.tfvars"); the error names the
// file as it was given.
func TestRunVarFileMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("resource \"aws_vpc\" \"x\" {\n  cidr_block = \"10.0.0.0/16\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "extra.tfvars")
	_, err := Run(context.Background(), Config{Paths: []string{dir}, Root: dir, VarFiles: []string{missing}})
	if err == nil || !strings.Contains(err.Error(), "--var-file "+missing) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Run with a missing --var-file = %v, want an error naming %s", err, missing)
	}
}

func TestParseSeverity(t *testing.T) {
	for i, n := range []string{"info", "LOW", "Medium", "high", "critical"} {
		s, err := ParseSeverity(n)
		if err != nil || s != Severity(i) {
			t.Errorf("ParseSeverity(%q) = %v, %v", n, s, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity(severe): want an error")
	}
}

// TestAgentFileSchema: an agent file's firewall and egress keys are read
// with the agent's own schema and checks, so what the agent refuses, check
// refuses too, naming the key.
func TestAgentFileSchema(t *testing.T) {
	head := "data_dir: /var/lib/moat-agent\nserver: 10.0.0.1:7400\nnode: web-1\nlisten: 10.0.0.2:15443\n"
	for _, tc := range []struct {
		name, body, want string
	}{
		{"good", "firewall:\n  mode: enforce\n  inbound: [\"10.0.0.0/8:22\"]\n  control_plane: [\"10.0.0.3:7400\"]\negress:\n  proxy: 127.0.0.1:3128\n  gateway: egress\n", ""},
		{"mode", "firewall:\n  mode: block\n", "firewall.mode"},
		{"forwarding open", "firewall:\n  mode: enforce\n  forwarding: open\n", ""},
		{"forwarding", "firewall:\n  mode: enforce\n  forwarding: route\n", "firewall.forwarding"},
		{"inbound", "firewall:\n  inbound: [\"22/sctp\"]\n", "firewall.inbound[0]"},
		{"unknown", "firewall:\n  mode: audit\n  outbund: [\"53/udp\"]\n", "outbund"},
		{"proxy beyond loopback", "egress:\n  proxy: 0.0.0.0:3128\n", "egress.proxy"},
		{"gateway name", "egress:\n  gateway: Not_A_Name\n", "egress.gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(path, []byte(head+tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Run(context.Background(), Config{Paths: []string{path}})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a valid agent file: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
