package waf

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// wideText is data read as a reader that detects a body's encoding reads
// it: UTF-32 or UTF-16 by its byte order mark, or by where NUL bytes stand
// in its first four, as Python's json.loads and Jackson tell JSON's
// encoding (JSON text opens with ASCII, RFC 4627 section 3), and .NET's
// and Java's text readers obey a byte order mark. Such a service reads
// `{"q":"' or 1=1--"}` in UTF-16 as the JSON it spells, where the text
// runs of its bytes are single letters between NULs. It returns the text
// in UTF-8 (a lone surrogate or a code point past U+10FFFF as U+FFFD), or
// false when data is in neither encoding. Without a byte order mark the
// text must print (a JSON parser refuses a control character outside its
// whitespace): a binary body that opens with a NUL is no text.
func wideText(data []byte) ([]byte, bool) {
	width, order, bom := 0, binary.ByteOrder(binary.LittleEndian), true
	switch {
	case bytes.HasPrefix(data, []byte{0, 0, 0xfe, 0xff}):
		width, order, data = 4, binary.BigEndian, data[4:]
	case bytes.HasPrefix(data, []byte{0xff, 0xfe, 0, 0}):
		width, data = 4, data[4:]
	case bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		width, order, data = 2, binary.BigEndian, data[2:]
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}):
		width, data = 2, data[2:]
	case len(data) >= 4 && data[0] == 0:
		// 00 00 -- --: UTF-32BE; 00 xx: UTF-16BE.
		width, order, bom = 2, binary.BigEndian, false
		if data[1] == 0 {
			width = 4
		}
	case len(data) >= 4 && data[1] == 0:
		// xx 00 00 00: UTF-32LE; xx 00 00 xx, xx 00 xx --: UTF-16LE.
		width, bom = 2, false
		if data[2] == 0 && data[3] == 0 {
			width = 4
		}
	case len(data) == 2 && data[0] == 0:
		width, order, bom = 2, binary.BigEndian, false
	case len(data) == 2 && data[1] == 0:
		width, bom = 2, false
	default:
		return nil, false
	}
	out := make([]byte, 0, len(data))
	if width == 4 {
		for ; len(data) >= 4; data = data[4:] {
			out = utf8.AppendRune(out, rune(order.Uint32(data)))
		}
	} else {
		units := make([]uint16, 0, len(data)/2)
		for ; len(data) >= 2; data = data[2:] {
			units = append(units, order.Uint16(data))
		}
		for _, r := range utf16.Decode(units) {
			out = utf8.AppendRune(out, r)
		}
	}
	if len(data) > 0 {
		out = utf8.AppendRune(out, utf8.RuneError) // a unit cut short
	}
	return out, bom || printableText(out)
}
