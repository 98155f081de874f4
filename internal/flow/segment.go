package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A spool segment is a file that starts with segMagic and holds frames:
//
//	length  uint32, big endian: payload bytes
//	crc     uint32, big endian: CRC-32C of the payload
//	payload one record's JSON, sealed when the spool has a Sealer
//
// A crash can leave a torn frame at the end; decodeSegment finds the last
// whole frame so that what precedes it is kept.
const (
	segMagic    = "MOATSPL1"
	frameHeader = 8
	// maxFrame bounds one payload; records are far smaller.
	maxFrame = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors decodeSegment reports about the first bad frame.
var (
	errBadMagic  = errors.New("not a spool segment (bad magic)")
	errTornFrame = errors.New("torn frame")
	errBadCRC    = errors.New("frame checksum mismatch")
	errBigFrame  = errors.New("frame length out of range")
)

// appendFrame appends payload as one frame to b.
func appendFrame(b, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

// decodeSegment splits a segment into its frame payloads. good is the
// length of the intact prefix (magic and whole frames); when err is
// non-nil it says what is wrong at offset good. Payloads alias data.
func decodeSegment(data []byte) (payloads [][]byte, good int, err error) {
	if len(data) < len(segMagic) || string(data[:len(segMagic)]) != segMagic {
		return nil, 0, errBadMagic
	}
	off := len(segMagic)
	for off < len(data) {
		if len(data)-off < frameHeader {
			return payloads, off, errTornFrame
		}
		n := binary.BigEndian.Uint32(data[off:])
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n == 0 || n > maxFrame {
			return payloads, off, fmt.Errorf("%w: %d", errBigFrame, n)
		}
		end := off + frameHeader + int(n)
		if end > len(data) {
			return payloads, off, errTornFrame
		}
		p := data[off+frameHeader : end]
		if crc32.Checksum(p, crcTable) != sum {
			return payloads, off, errBadCRC
		}
		payloads = append(payloads, p)
		off = end
	}
	return payloads, off, nil
}
