package main

import (
	"testing"
	"time"
)

// TestSmokeMem runs each side of the memory measurement at a small size:
// the load and the queries over every day complete on both.
func TestSmokeMem(t *testing.T) {
	for side := range memConfigs {
		if err := memChild(side, t.TempDir(), 3, 300, time.Millisecond); err != nil {
			t.Fatalf("%s: %v", side, err)
		}
	}
}
