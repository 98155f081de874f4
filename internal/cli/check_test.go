package cli

import (
	"bytes"
	"context"
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
