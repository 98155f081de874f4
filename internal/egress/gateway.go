package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"moat/internal/flow"
	"moat/internal/policy"
)

// Over the mesh, a source agent opens a stream to the egress gateway's
// service with the calling service's SVID (so the gateway knows who is
// calling from mutual TLS, not from anything the caller says) and writes
// where it wants to go; the gateway answers before any byte is relayed.
//
//	Request:  version(1)=1 | len(1) | host(len) | port(2, big endian)
//	Response: version(1)=1 | status(1) | len(1) | code(len) | len(1) | reason(len)
const wireVersion = 1

// Response statuses.
const (
	statusOK      = 0
	statusRefused = 1
)

var errWire = errors.New("egress: bad egress request")

func appendRequest(b []byte, host string, port int) ([]byte, error) {
	if len(host) == 0 || len(host) > 255 || port < 1 || port > 65535 {
		return nil, fmt.Errorf("%w: %q port %d", errWire, host, port)
	}
	b = append(b, wireVersion, byte(len(host)))
	b = append(b, host...)
	return binary.BigEndian.AppendUint16(b, uint16(port)), nil
}

func readRequest(r io.Reader) (host string, port int, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", 0, fmt.Errorf("%w: %v", errWire, err)
	}
	if hdr[0] != wireVersion || hdr[1] == 0 {
		return "", 0, fmt.Errorf("%w: version %d, host length %d", errWire, hdr[0], hdr[1])
	}
	buf := make([]byte, int(hdr[1])+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", 0, fmt.Errorf("%w: %v", errWire, err)
	}
	host, port = string(buf[:hdr[1]]), int(binary.BigEndian.Uint16(buf[hdr[1]:]))
	if port == 0 {
		return "", 0, fmt.Errorf("%w: port 0", errWire)
	}
	return host, port, nil
}

func appendResponse(b []byte, status int, code, reason string) []byte {
	b = append(b, wireVersion, byte(status))
	for _, s := range []string{code, reason} {
		s = bounded(s)
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return b
}

func readResponse(r io.Reader) (*Refusal, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", errWire, err)
	}
	if hdr[0] != wireVersion || hdr[1] > statusRefused {
		return nil, fmt.Errorf("%w: version %d status %d", errWire, hdr[0], hdr[1])
	}
	var vals [2]string
	for i := range vals {
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return nil, fmt.Errorf("%w: %v", errWire, err)
		}
		v := make([]byte, n[0])
		if _, err := io.ReadFull(r, v); err != nil {
			return nil, fmt.Errorf("%w: %v", errWire, err)
		}
		vals[i] = string(v)
	}
	if hdr[1] == statusOK {
		return nil, nil
	}
	return &Refusal{Code: vals[0], Reason: vals[1]}, nil
}

// Gateway is the egress gateway's mesh service (a mesh.Handler): it admits
// callers that some egress rule names, and serves each stream through its
// Point.
type Gateway struct {
	Point *Point
	// Service is the gateway's own service name, named in its records as
	// the proxy the flow went through.
	Service string
}

// Decide admits a service that at least one egress rule names; the Point
// decides each destination.
func (g *Gateway) Decide(src string) policy.Decision {
	if rule, ok := g.Point.cfg.Policy().EgressFrom(src); ok {
		return policy.Decision{Allow: true, Rule: rule}
	}
	return policy.Decision{Rule: policy.DefaultDeny}
}

// Serve reads the destination, opens it through the Point, answers and
// relays.
func (g *Gateway) Serve(conn net.Conn, src, connID string) {
	_ = conn.SetReadDeadline(time.Now().Add(g.Point.cfg.DialTimeout))
	host, port, err := readRequest(conn)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		g.Point.log.Info("egress: bad request from the mesh", "src", src, "err", err)
		_ = conn.Close()
		return
	}
	t := Target{Src: src, Port: port, ConnID: connID, Via: g.Service}
	if t.Host, err = policy.NormalizeHost(host); err != nil {
		_ = g.Point.refuse(g.Point.cfg.Now(), Target{Src: src, Host: "invalid", Port: port, ConnID: connID, Via: g.Service},
			&Refusal{Code: flow.ReasonEgressDenied, Reason: err.Error()})
		_, _ = conn.Write(appendResponse(nil, statusRefused, flow.ReasonEgressDenied, err.Error()))
		_ = conn.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*g.Point.cfg.DialTimeout)
	up, err := g.Point.Open(ctx, t)
	cancel()
	if err != nil {
		var r *Refusal
		errors.As(err, &r)
		_, _ = conn.Write(appendResponse(nil, statusRefused, r.Code, r.Reason))
		_ = conn.Close()
		return
	}
	if _, err := conn.Write(appendResponse(nil, statusOK, "", "")); err != nil {
		_ = up.conn.Close()
		_ = conn.Close()
		return
	}
	g.Point.Relay(conn, nil, up)
}
