package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func FuzzDecodeSegment(f *testing.F) {
	seg := []byte(segMagic)
	for i := range 3 {
		r := Header(ClassNetworkActivity, ActivityClose, "moat-agent", time.Date(2026, 11, 23, 10, 30, i, 0, time.UTC))
		r.Metadata.UID = fmt.Sprintf("z-%04d", i)
		b, _ := json.Marshal(r)
		seg = appendFrame(seg, b)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add([]byte(segMagic))
	f.Add([]byte("MOATSPL1\x00\x00\x00\x05\x00\x00\x00\x00hello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, good, err := decodeSegment(data)
		if good < 0 || good > len(data) {
			t.Fatalf("good offset %d outside [0, %d]", good, len(data))
		}
		if err == nil && good != len(data) {
			t.Fatalf("no error but only %d of %d bytes decoded", good, len(data))
		}
		// Re-encoding the frames reproduces the intact prefix exactly.
		if good > 0 {
			re := []byte(segMagic)
			for _, p := range frames {
				re = appendFrame(re, p)
			}
			if !bytes.Equal(re, data[:good]) {
				t.Fatalf("re-encoded frames differ from the intact prefix")
			}
		}
		// Decoding the intact prefix alone succeeds with the same frames.
		if good > 0 {
			again, g2, err2 := decodeSegment(data[:good])
			if err2 != nil || g2 != good || len(again) != len(frames) {
				t.Fatalf("prefix decode = %d frames, %d, %v", len(again), g2, err2)
			}
		}
	})
}
