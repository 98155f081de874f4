package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Sealer encrypts stored entries. It has the shape of tink's AEAD, so a
// tink.AEAD (or moat's seal envelope) can be passed as is.
type Sealer interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// The first byte of a stored entry says how the rest is encoded.
const (
	formatJSON   byte = 1 // the entry as JSON
	formatSealed byte = 2 // Sealer.Encrypt(JSON, indexAD(index))
)

// indexAD is the associated data binding a sealed entry to its position, so
// a sealed entry moved to another index no longer opens.
func indexAD(index int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(index)) }

// EncodeEntry returns the stored bytes of e at index: JSON, encrypted with s
// when s is not nil. The tamper evidence covers exactly these bytes.
func EncodeEntry(index int64, e Entry, s Sealer) ([]byte, error) {
	js, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: encode entry %d: %w", index, err)
	}
	if s == nil {
		return append([]byte{formatJSON}, js...), nil
	}
	ct, err := s.Encrypt(js, indexAD(index))
	if err != nil {
		return nil, fmt.Errorf("audit: seal entry %d: %w", index, err)
	}
	return append([]byte{formatSealed}, ct...), nil
}

// DecodeEntry parses stored bytes written by EncodeEntry at index. Sealed
// bytes need s; unknown fields and trailing data are errors.
func DecodeEntry(index int64, stored []byte, s Sealer) (Entry, error) {
	var e Entry
	if len(stored) == 0 {
		return e, fmt.Errorf("audit: entry %d: empty", index)
	}
	js := stored[1:]
	switch stored[0] {
	case formatJSON:
	case formatSealed:
		if s == nil {
			return e, fmt.Errorf("audit: entry %d: %w", index, ErrSealed)
		}
		pt, err := s.Decrypt(js, indexAD(index))
		if err != nil {
			return e, fmt.Errorf("audit: entry %d: open sealed entry: %w", index, err)
		}
		js = pt
	default:
		return e, fmt.Errorf("audit: entry %d: unknown format byte %#x", index, stored[0])
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("audit: entry %d: %w", index, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Entry{}, fmt.Errorf("audit: entry %d: trailing data after the entry", index)
	}
	return e, nil
}

// IsSealed reports whether stored entry bytes are encrypted.
func IsSealed(stored []byte) bool { return len(stored) > 0 && stored[0] == formatSealed }
