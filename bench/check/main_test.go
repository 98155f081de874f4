package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"moat/internal/check"
)

// TestSmoke runs the harness's generator and checks at a small size: every
// planted path case is found and no private database raises a false alarm.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	n, cells, err := generate(dir, 400)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := check.Run(context.Background(), check.Config{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	found, falseAlarms := pathCases(rep)
	want := 2 * cells / 10
	if found != want || falseAlarms != 0 {
		t.Errorf("%d resources: path cases found %d of %d, %d false alarms", n, found, want, falseAlarms)
	}
}

// TestCorpusSmoke scores the tiny corpus written here: every expected
// result is found (split ranges, a rule resource, IPv6, a group outside the
// scanned code) and the negatives raise nothing.
func TestCorpusSmoke(t *testing.T) {
	var out bytes.Buffer
	fams, err := runCorpus(filepath.Join("testdata", "corpus"), "", &out, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]corpusScore{
		"world-open ingress": {TP: 4, Files: 2},
		"CloudTrail":         {TP: 2, Files: 2},
	}
	for f, w := range want {
		if got := fams[f]; got != w {
			t.Errorf("%s: got %+v, want %+v\n%s", f, got, w, out.String())
		}
	}
}

// TestCorpusCounts checks that the harness counts a false alarm and a miss:
// a negative fixture that opens SSH to the world, and an expected result on
// a resource no rule flags.
func TestCorpusCounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sensitive_port_is_exposed_to_entire_network", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"negative1.tf": `resource "aws_security_group" "open" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`,
		"positive1.tf": `resource "aws_security_group" "closed" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
}
`,
		"positive_expected_result.json": `[{"line": 2, "filename": "positive1.tf"}, {"line": 40, "filename": "positive1.tf"}]`,
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fams, err := runCorpus(filepath.Dir(filepath.Dir(dir)), "", io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	// The expected line 40 lies outside every block: unscored, not a miss.
	if got, want := fams["world-open ingress"], (corpusScore{FP: 1, FN: 1, Files: 2, Unscored: 1}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
