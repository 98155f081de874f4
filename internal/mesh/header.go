package mesh

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"moat/internal/flow"
	"moat/internal/identity"
)

// The tunnel header opens every stream. The source agent writes a Request
// naming the destination service and port and the connection's ID (which
// both ends' flow records carry); the destination agent answers with a
// Response carrying its verdict before any application byte flows.
//
//	Request:  version(1)=3 | len(1) | service(len) | port(2, big endian) | conn id(16)
//	Response: version(1)=3 | status(1) | len(1) | code(len) | len(1) | rule(len) | len(1) | reason(len)
//
// Version 1 has no conn id and no code. Version 3 is version 2 but for
// what the conn id means: in version 2 both ends recorded the id the
// source sent, which the source chooses, so a caller could give its
// records another connection's id; in version 3 both record the id
// derived from it and the source's verified identity (connIDOf). A
// destination records the derived id whatever the version (a version 2
// caller could otherwise pick its records' id), so an agent from before
// version 3 that calls an upgraded one shares no id with it until it is
// upgraded too. The version is the tunnel's: the TLS handshake negotiates
// it by ALPN (moat-tunnel/3, or an older one with an agent not yet
// upgraded, which knows only that), and every header on the tunnel must
// carry it.
const (
	headerV1  = 1
	headerV2  = 2
	headerV3  = 3
	connIDLen = 16
)

// ALPN names of the tunnel protocol, newest first: what an agent offers
// when it dials and prefers when it accepts. A fleet upgrades node by node:
// an upgraded agent speaks version 1 with one that is not.
const (
	alpnTunnelV1 = "moat-tunnel/1"
	alpnTunnelV2 = "moat-tunnel/2"
	alpnTunnelV3 = "moat-tunnel/3"
)

var tunnelProtocols = []string{alpnTunnelV3, alpnTunnelV2, alpnTunnelV1}

// headerVersionOf is the header version of a negotiated ALPN protocol, or 0.
func headerVersionOf(alpn string) int {
	switch alpn {
	case alpnTunnelV3:
		return headerV3
	case alpnTunnelV2:
		return headerV2
	case alpnTunnelV1:
		return headerV1
	}
	return 0
}

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

// AppendRequest appends the version v encoding of r; it refuses names
// identity would refuse, ports outside 1-65535 and (from version 2) a
// ConnID that is not 16 bytes in hex. Version 1 carries no ConnID.
func AppendRequest(b []byte, r Request, v int) ([]byte, error) {
	if err := identity.ValidName(r.Service); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if r.Port < 1 || r.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrBadHeader, r.Port)
	}
	if v < headerV1 || v > headerV3 {
		return nil, fmt.Errorf("%w: version %d", ErrBadHeader, v)
	}
	var id []byte
	if v >= headerV2 {
		var err error
		if id, err = hex.DecodeString(r.ConnID); err != nil || len(id) != connIDLen {
			return nil, fmt.Errorf("%w: connection id %q", ErrBadHeader, r.ConnID)
		}
	}
	b = append(b, byte(v), byte(len(r.Service)))
	b = append(b, r.Service...)
	b = binary.BigEndian.AppendUint16(b, uint16(r.Port))
	return append(b, id...), nil
}

// connIDOf is the ID both ends of a connection record when its source,
// verified as the SPIFFE ID src, sent the ID sent in its tunnel header:
// the first 16 bytes of SHA-256 over both, in hex, as flow.NewID's. A
// caller chooses what it sends, but not its identity, so no caller can
// give its connection the recorded ID of another source's.
func connIDOf(src, sent string) string {
	h := sha256.New()
	h.Write([]byte("moat connection id\x00"))
	h.Write([]byte(src))
	h.Write([]byte{0})
	h.Write([]byte(sent))
	return hex.EncodeToString(h.Sum(nil)[:connIDLen])
}

// ReadRequest reads one request of version v; it reads no byte past it.
func ReadRequest(rd io.Reader, v int) (Request, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if int(hdr[0]) != v {
		return Request{}, fmt.Errorf("%w: version %d on a version %d tunnel", ErrBadHeader, hdr[0], v)
	}
	idLen := 0
	if v >= headerV2 {
		idLen = connIDLen
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

// AppendResponse appends the version v encoding of r, cutting Code, Rule
// and Reason to 255 bytes. Version 1 carries no Code.
func AppendResponse(b []byte, r Response, v int) []byte {
	b = append(b, byte(v), byte(r.Status))
	fields := []string{r.Code, r.Rule, r.Reason}
	if v == headerV1 {
		fields = fields[1:]
	}
	for _, s := range fields {
		if len(s) > 255 {
			s = s[:255]
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

// answerCodes are the reason codes a destination refuses a stream with
// (target, answer, admitPlaintext, finishInbound, serveStream): the only
// ones a source takes from it.
var answerCodes = map[string]bool{
	flow.ReasonPolicyDenied: true, flow.ReasonUnknownService: true, flow.ReasonWrongPort: true, flow.ReasonPlaintext: true,
	flow.ReasonAppUnreachable: true, flow.ReasonBadHeader: true, flow.ReasonRevoked: true, flow.ReasonExpired: true,
	flow.ReasonOverloaded: true,
}

// ReadResponse reads one response of version v; it reads no byte past it.
// The destination is another node, so what it says is checked, not taken
// as it comes: a Code outside answerCodes is dropped (the status still
// tells a refusal by policy from another), and Rule and Reason, words for
// a human, are made printable (flow.PrintableText; 255 bytes each at most
// as sent).
func ReadResponse(rd io.Reader, v int) (Response, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return Response{}, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if int(hdr[0]) != v {
		return Response{}, fmt.Errorf("%w: version %d on a version %d tunnel", ErrBadHeader, hdr[0], v)
	}
	fields := 3
	if v == headerV1 {
		fields = 2 // rule, reason
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
	if !answerCodes[vals[0]] {
		vals[0] = ""
	}
	return Response{Status: int(hdr[1]), Code: vals[0], Rule: flow.PrintableText(vals[1]), Reason: flow.PrintableText(vals[2])}, nil
}
