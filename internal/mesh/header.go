package mesh

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"moat/internal/identity"
)

// The tunnel header opens every stream. The source agent writes a Request
// naming the destination service and port and the connection's ID (which
// both ends' flow records carry); the destination agent answers with a
// Response carrying its verdict before any application byte flows.
//
//	Request:  version(1)=2 | len(1) | service(len) | port(2, big endian) | conn id(16)
//	Response: version(1)=2 | status(1) | len(1) | code(len) | len(1) | rule(len) | len(1) | reason(len)
//
// Version 1 (no conn id, no code) is still read, from agents not yet
// upgraded.
const (
	headerV1      = 1
	headerVersion = 2
	connIDLen     = 16
)

// Response statuses.
const (
	StatusAllow = 0 // allowed by a rule
	StatusAudit = 1 // would be denied; let through because the destination audits
	StatusDeny  = 2 // refused by policy
	StatusError = 3 // refused for another reason (unknown service, app down, mode)
)

// ErrBadHeader wraps every malformed header.
var ErrBadHeader = errors.New("mesh: bad tunnel header")

// Request names where a stream goes.
type Request struct {
	Service string
	Port    int
	// ConnID is the connection's ID, hex; "" in a version 1 request.
	ConnID string
}

// Response is the destination's answer.
type Response struct {
	Status int
	Code   string // machine-readable reason (flow.Reason*), when refused
	Rule   string // deciding rule, when policy decided
	Reason string // why, for the caller's log
}

// Verdict is the flow-record spelling of the status.
func (r Response) Verdict() string {
	switch r.Status {
	case StatusAllow:
		return "allow"
	case StatusAudit:
		return "audit"
	}
	return "deny"
}

// Allowed reports whether application bytes may flow.
func (r Response) Allowed() bool { return r.Status == StatusAllow || r.Status == StatusAudit }

// AppendRequest appends the encoding of r; it refuses names identity would
// refuse, ports outside 1-65535 and a ConnID that is not 16 bytes in hex.
func AppendRequest(b []byte, r Request) ([]byte, error) {
	if err := identity.ValidName(r.Service); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if r.Port < 1 || r.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrBadHeader, r.Port)
	}
	id, err := hex.DecodeString(r.ConnID)
	if err != nil || len(id) != connIDLen {
		return nil, fmt.Errorf("%w: connection id %q", ErrBadHeader, r.ConnID)
	}
	b = append(b, headerVersion, byte(len(r.Service)))
	b = append(b, r.Service...)
	b = binary.BigEndian.AppendUint16(b, uint16(r.Port))
	return append(b, id...), nil
}

// ReadRequest reads one request; it reads no byte past it.
func ReadRequest(rd io.Reader) (Request, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	idLen := 0
	switch hdr[0] {
	case headerV1:
	case headerVersion:
		idLen = connIDLen
	default:
		return Request{}, fmt.Errorf("%w: version %d", ErrBadHeader, hdr[0])
	}
	n := int(hdr[1])
	buf := make([]byte, n+2+idLen)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	r := Request{Service: string(buf[:n]), Port: int(binary.BigEndian.Uint16(buf[n:]))}
	if idLen > 0 {
		r.ConnID = hex.EncodeToString(buf[n+2:])
	}
	if err := identity.ValidName(r.Service); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if r.Port == 0 {
		return Request{}, fmt.Errorf("%w: port 0", ErrBadHeader)
	}
	return r, nil
}

// AppendResponse appends the encoding of r, cutting Code, Rule and Reason
// to 255 bytes.
func AppendResponse(b []byte, r Response) []byte {
	b = append(b, headerVersion, byte(r.Status))
	for _, s := range []string{r.Code, r.Rule, r.Reason} {
		if len(s) > 255 {
			s = s[:255]
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// ReadResponse reads one response; it reads no byte past it.
func ReadResponse(rd io.Reader) (Response, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	fields := 3
	switch hdr[0] {
	case headerV1:
		fields = 2 // rule, reason
	case headerVersion:
	default:
		return Response{}, fmt.Errorf("%w: version %d", ErrBadHeader, hdr[0])
	}
	if hdr[1] > StatusError {
		return Response{}, fmt.Errorf("%w: status %d", ErrBadHeader, hdr[1])
	}
	var vals [3]string
	for i := 3 - fields; i < 3; i++ {
		var n [1]byte
		if _, err := io.ReadFull(rd, n[:]); err != nil {
			return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
		}
		v := make([]byte, n[0])
		if _, err := io.ReadFull(rd, v); err != nil {
			return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
		}
		vals[i] = string(v)
	}
	return Response{Status: int(hdr[1]), Code: vals[0], Rule: vals[1], Reason: vals[2]}, nil
}
