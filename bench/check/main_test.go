package main

import (
	"context"
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
