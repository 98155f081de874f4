package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestSmoke runs the harness as its README says, in its smoke mode (a
// second per phase), and checks that it printed every figure: a renamed
// flag or a peer that no longer starts fails here instead of at the next
// measurement.
func TestSmoke(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "meshbench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-smoke")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("meshbench -smoke: %v\n%s", err, out)
	}
	for _, want := range []string{
		`\| added p99 µs, 1 KB at 1k req/s uniform \| 0 \| -?\d+ \| -?\d+ \| `,
		`\| added p99 µs, 1 KB at 1k req/s bursty \| 0 \| -?\d+ \| -?\d+ \| `,
		`\| max req/s \| \d+ \| \d+ \| \d+ \|`,
		`\| bulk MB/s \| [\d.]+ \| [\d.]+ \| [\d.]+ \|`,
		`\| new conn p50 µs \| \d+ \| \d+ \| \d+ \|`,
		`\| RSS MiB idle, source side \| 0.0 \| [\d.]+ \| [\d.]+ \|`,
		`\| RSS MiB at 1k req/s, destination side \| 0.0 \| [\d.]+ \| [\d.]+ \|`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("no figure matching %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
