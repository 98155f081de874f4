package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestPlayCast: the output events of an asciicast v2 recording are written
// in order; input and markers are not; a recording that is not one is
// refused, naming the bad line.
func TestPlayCast(t *testing.T) {
	rec := "{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"hello \"]\n[0.2,\"i\",\"secret\"]\n[0.3,\"m\",\"mark\"]\n[0.4,\"o\",\"world\\r\\n\"]\n"
	var out bytes.Buffer
	if err := playCast(context.Background(), &out, []byte(rec), 1, time.Second, true); err != nil || out.String() != "hello world\r\n" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	for _, tc := range []struct{ name, rec, want string }{
		{"empty", "", "empty recording"},
		{"version 1", "{\"version\":1}\n", "not an asciicast v2 recording"},
		{"a bad event", "{\"version\":2}\n[1,\"o\"]\n", "malformed event on line 2"},
	} {
		if err := playCast(context.Background(), &out, []byte(tc.rec), 1, time.Second, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzPlayCast: whatever a recording holds, playing it never panics, and
// only the data of its output events is written.
func FuzzPlayCast(f *testing.F) {
	f.Add([]byte("{\"version\":2}\n[0.5,\"o\",\"x\"]\n"))
	f.Add([]byte("{\"version\":2}\n[1e308,\"o\",\"\\u001b[2J\"]\n[-1,\"o\",\"y\"]\n"))
	f.Add([]byte("{\"version\":2}\n[\"a\",\"o\",1]\n"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var out bytes.Buffer
		_ = playCast(context.Background(), &out, rec, 1, time.Millisecond, true)
		if out.Len() > len(rec)*6 {
			t.Fatalf("%d bytes written from a recording of %d", out.Len(), len(rec))
		}
	})
}
