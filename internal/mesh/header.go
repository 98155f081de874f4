package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"moat/internal/identity"
)

// The tunnel header opens every stream (and every plaintext connection on
// the mesh port). The source agent writes a Request naming the destination
// service and port; the destination agent answers with a Response carrying
// its verdict before any application byte flows.
//
//	Request:  version(1)=1 | len(1) | service(len) | port(2, big endian)
//	Response: version(1)=1 | status(1) | len(1) | rule(len) | len(1) | reason(len)
//
// The version byte is never 0x16, the first byte of a TLS record, which is
// how the mesh port tells plaintext from TLS.
const headerVersion = 1

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
}

// Response is the destination's answer.
type Response struct {
	Status int
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
// refuse and ports outside 1-65535.
func AppendRequest(b []byte, r Request) ([]byte, error) {
	if err := identity.ValidName(r.Service); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if r.Port < 1 || r.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrBadHeader, r.Port)
	}
	b = append(b, headerVersion, byte(len(r.Service)))
	b = append(b, r.Service...)
	return binary.BigEndian.AppendUint16(b, uint16(r.Port)), nil
}

// ReadRequest reads one request; it reads no byte past it.
func ReadRequest(rd io.Reader) (Request, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if hdr[0] != headerVersion {
		return Request{}, fmt.Errorf("%w: version %d", ErrBadHeader, hdr[0])
	}
	buf := make([]byte, int(hdr[1])+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	r := Request{Service: string(buf[:hdr[1]]), Port: int(binary.BigEndian.Uint16(buf[hdr[1]:]))}
	if err := identity.ValidName(r.Service); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if r.Port == 0 {
		return Request{}, fmt.Errorf("%w: port 0", ErrBadHeader)
	}
	return r, nil
}

// AppendResponse appends the encoding of r, cutting Rule and Reason to 255
// bytes.
func AppendResponse(b []byte, r Response) []byte {
	cut := func(s string) string {
		if len(s) > 255 {
			return s[:255]
		}
		return s
	}
	rule, reason := cut(r.Rule), cut(r.Reason)
	b = append(b, headerVersion, byte(r.Status), byte(len(rule)))
	b = append(b, rule...)
	b = append(b, byte(len(reason)))
	return append(b, reason...)
}

// ReadResponse reads one response; it reads no byte past it.
func ReadResponse(rd io.Reader) (Response, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if hdr[0] != headerVersion {
		return Response{}, fmt.Errorf("%w: version %d", ErrBadHeader, hdr[0])
	}
	if hdr[1] > StatusError {
		return Response{}, fmt.Errorf("%w: status %d", ErrBadHeader, hdr[1])
	}
	rule := make([]byte, int(hdr[2])+1)
	if _, err := io.ReadFull(rd, rule); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	reason := make([]byte, rule[len(rule)-1])
	if _, err := io.ReadFull(rd, reason); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	return Response{Status: int(hdr[1]), Rule: string(rule[:len(rule)-1]), Reason: string(reason)}, nil
}
