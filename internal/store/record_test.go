package store

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func goodRecord() []byte {
	return encodeRecord(record{create: 3, mod: 7, value: []byte("hello")})
}

func goodLogEntry() []byte {
	return encodeLogEntry([]change{
		{kind: EventPut, key: "svc/api", create: 2, value: []byte("v")},
		{kind: EventDelete, key: "node/n1"},
	})
}

func TestDecodeRecord(t *testing.T) {
	r, err := decodeRecord(goodRecord())
	if err != nil || r.create != 3 || r.mod != 7 || string(r.value) != "hello" {
		t.Fatalf("good record: %+v, %v", r, err)
	}
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   string
	}{
		{"empty", func(b []byte) []byte { return nil }, "truncated"},
		{"unknown version", func(b []byte) []byte { b[0] = 2; return b }, "unknown format version 2"},
		{"create revision zero", func(b []byte) []byte { b[1] = 0; return b }, "create revision 0 out of range"},
		{"mod before create", func(b []byte) []byte { b[2] = 1; return b }, "mod revision 1 before create revision 3"},
		{"truncated varint", func(b []byte) []byte { return []byte{recordVersion, 0x80} }, "bad create revision"},
		{"no mod revision", func(b []byte) []byte { return b[:2] }, "bad mod revision"},
	}
	for _, tt := range tests {
		_, err := decodeRecord(tt.mutate(goodRecord()))
		if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrCorrupt mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeLogEntry(t *testing.T) {
	cs, err := decodeLogEntry(goodLogEntry())
	if err != nil || len(cs) != 2 || cs[0].key != "svc/api" || cs[1].kind != EventDelete {
		t.Fatalf("good entry: %+v, %v", cs, err)
	}
	// Layout of the good entry: version, count 2, then
	// [put, 7, "svc/api", 2, 1, "v"] [delete, 7, "node/n1"].
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		want   string
	}{
		{"unknown version", func(b []byte) []byte { b[0] = 9; return b }, "unknown format version 9"},
		{"zero changes", func(b []byte) []byte { b[1] = 0; return b }, "change count 0"},
		{"count beyond data", func(b []byte) []byte { b[1] = 100; return b }, "change count 100"},
		{"one change short", func(b []byte) []byte { b[1] = 3; return b }, "truncated"},
		{"trailing bytes", func(b []byte) []byte { b[1] = 1; return b }, "trailing bytes"},
		{"unknown kind", func(b []byte) []byte { b[2] = 7; return b }, "change 0: unknown kind 7"},
		{"key beyond data", func(b []byte) []byte { b[3] = 120; return b }, "key length 120 exceeds"},
		{"empty key", func(b []byte) []byte {
			return []byte{recordVersion, 1, byte(EventDelete), 0}
		}, "change 0: bad key"},
		{"value beyond data", func(b []byte) []byte { b[12] = 50; return b }, "value length 50 exceeds"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, "exceeds"},
	}
	for _, tt := range tests {
		_, err := decodeLogEntry(tt.mutate(goodLogEntry()))
		if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want ErrCorrupt mentioning %q", tt.name, err, tt.want)
		}
	}
}

// FuzzDecodeRecord: the decoder never panics, and whatever it accepts
// encodes back to something that decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(goodRecord())
	f.Add(encodeRecord(record{create: 1, mod: 1}))
	f.Add([]byte{recordVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if r.create < 1 || r.mod < r.create {
			t.Fatalf("accepted revisions create %d mod %d", r.create, r.mod)
		}
		again, err := decodeRecord(encodeRecord(r))
		if err != nil || again.create != r.create || again.mod != r.mod || !bytes.Equal(again.value, r.value) {
			t.Fatalf("round trip: %+v -> %+v, %v", r, again, err)
		}
	})
}

// FuzzDecodeLogEntry: as FuzzDecodeRecord, for change-log entries.
func FuzzDecodeLogEntry(f *testing.F) {
	f.Add(goodLogEntry())
	f.Add(encodeLogEntry([]change{{kind: EventPut, key: "k", create: 1}}))
	f.Add([]byte{recordVersion, 1, byte(EventDelete), 1, 'k'})
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := decodeLogEntry(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(cs) == 0 {
			t.Fatal("accepted an entry with no changes")
		}
		for _, c := range cs {
			if checkKey(c.key) != nil || (c.kind == EventPut && c.create < 1) {
				t.Fatalf("accepted change %+v", c)
			}
		}
		again, err := decodeLogEntry(encodeLogEntry(cs))
		if err != nil || !reflect.DeepEqual(normalize(again), normalize(cs)) {
			t.Fatalf("round trip: %+v -> %+v, %v", cs, again, err)
		}
	})
}

// normalize makes empty values compare equal whether nil or not.
func normalize(cs []change) []change {
	out := make([]change, len(cs))
	for i, c := range cs {
		if len(c.value) == 0 {
			c.value = nil
		}
		out[i] = c
	}
	return out
}
