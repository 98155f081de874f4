package store

import (
	"encoding/binary"
	"fmt"
)

// The bbolt file holds two kinds of encoded records.
//
// A value record (bucket "kv", under its key):
//
//	byte    format version (recordVersion)
//	uvarint CreateRevision (≥ 1)
//	uvarint ModRevision    (≥ CreateRevision)
//	bytes   value, sealed when a Sealer is configured (the rest of the record)
//
// A change-log entry (bucket "log", under the 8-byte big-endian revision):
//
//	byte    format version (recordVersion)
//	uvarint number of changes (≥ 1)
//	then per change:
//	  byte    kind: 1 put, 2 delete
//	  uvarint key length, key bytes (valid key)
//	  put only: uvarint CreateRevision, uvarint value length, value bytes
//
// Both decoders reject anything else, including trailing bytes in a log
// entry, so a damaged file is reported rather than misread.
const recordVersion = 1

// record is a decoded value record; value may still be sealed.
type record struct {
	create, mod int64
	value       []byte
}

func encodeRecord(r record) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(r.value))
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(r.create))
	b = binary.AppendUvarint(b, uint64(r.mod))
	return append(b, r.value...)
}

// decodeRecord parses a value record. The returned value aliases b.
func decodeRecord(b []byte) (record, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != recordVersion {
		return record{}, fmt.Errorf("value record: unknown format version %d: %w", v, ErrCorrupt)
	}
	create := d.rev("create revision")
	mod := d.rev("mod revision")
	if d.err != nil {
		return record{}, fmt.Errorf("value record: %w", d.err)
	}
	if mod < create {
		return record{}, fmt.Errorf("value record: mod revision %d before create revision %d: %w", mod, create, ErrCorrupt)
	}
	return record{create: create, mod: mod, value: d.b}, nil
}

// change is one entry of a change-log revision; value may still be sealed.
type change struct {
	kind   EventType
	key    string
	create int64  // put only
	value  []byte // put only
}

func encodeLogEntry(cs []change) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, c := range cs {
		n += 1 + 3*binary.MaxVarintLen64 + len(c.key) + len(c.value)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = append(b, byte(c.kind))
		b = binary.AppendUvarint(b, uint64(len(c.key)))
		b = append(b, c.key...)
		if c.kind == EventPut {
			b = binary.AppendUvarint(b, uint64(c.create))
			b = binary.AppendUvarint(b, uint64(len(c.value)))
			b = append(b, c.value...)
		}
	}
	return b
}

// decodeLogEntry parses a change-log entry. Returned values alias b.
func decodeLogEntry(b []byte) ([]change, error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != recordVersion {
		return nil, fmt.Errorf("log entry: unknown format version %d: %w", v, ErrCorrupt)
	}
	n := d.uvarint("change count")
	if d.err == nil && (n == 0 || n > uint64(len(d.b))) {
		// Every change takes at least two bytes, so n cannot exceed what is left.
		return nil, fmt.Errorf("log entry: change count %d does not fit %d bytes: %w", n, len(d.b), ErrCorrupt)
	}
	var cs []change
	for i := uint64(0); d.err == nil && i < n; i++ {
		var c change
		switch k := EventType(d.byte()); k {
		case EventPut, EventDelete:
			c.kind = k
		default:
			d.fail(fmt.Sprintf("change %d: unknown kind %d", i, k))
		}
		c.key = string(d.bytes("key"))
		if d.err == nil {
			if err := checkKey(c.key); err != nil {
				d.fail(fmt.Sprintf("change %d: bad key", i))
			}
		}
		if c.kind == EventPut {
			c.create = d.rev("create revision")
			c.value = d.bytes("value")
		}
		cs = append(cs, c)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("log entry: %w", d.err)
	}
	return cs, nil
}

// decoder reads fields in order and remembers the first failure, after
// which every read returns a zero value.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", what, ErrCorrupt)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad " + what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// rev reads a revision: a positive int64.
func (d *decoder) rev(what string) int64 {
	v := d.uvarint(what)
	if d.err == nil && (v == 0 || v > 1<<62) {
		d.fail(fmt.Sprintf("%s %d out of range", what, v))
		return 0
	}
	return int64(v)
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what + " length")
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%s length %d exceeds remaining %d bytes", what, n, len(d.b)))
	}
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
