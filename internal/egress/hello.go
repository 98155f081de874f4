package egress

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// maxHello bounds what is read of a client's first flight while looking
// for its server name.
const maxHello = 64 << 10

// helloTimeout bounds the wait for a TLS client's whole ClientHello once
// its first byte came.
const helloTimeout = 10 * time.Second

// TLS record types (RFC 8446, RFC 6520): a client's first record must be a
// handshake one.
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23
	recordHeartbeat        = 24
)

// Extensions that carry the real server name encrypted, the clear one
// naming only a front: Encrypted Client Hello (draft-ietf-tls-esni-18)
// and the earlier drafts' encrypted_server_name.
const (
	extensionECH  = 0xfe0d
	extensionESNI = 0xffce
)

var errGotHello = errors.New("egress: client hello read")

// readHello reads the client's first bytes (first, then from c). When they
// open a TLS handshake it reads the whole ClientHello and returns its
// server name. It returns every byte read, to be replayed upstream. A
// first byte of another TLS record type is an error (isTLS): no record
// may come before the ClientHello. So is a ClientHello with an encrypted
// server name (ECH, ESNI), whose clear one need not be where it goes.
func readHello(c net.Conn, first []byte) (read []byte, sni string, isTLS bool, err error) {
	rc := &recordingConn{Conn: c, pending: append([]byte(nil), first...)}
	if len(rc.pending) == 0 {
		var b [1]byte
		n, err := c.Read(b[:])
		if n == 0 {
			return nil, "", false, err
		}
		rc.pending = append(rc.pending, b[0])
	}
	switch rc.pending[0] {
	case recordHandshake:
	case recordChangeCipherSpec, recordAlert, recordApplicationData, recordHeartbeat:
		// A TLS record before the ClientHello: servers drop some (TLS 1.2
		// warning alerts) and read the hello after it, which would then
		// go unchecked.
		return rc.pending, "", true, fmt.Errorf("egress: a TLS record of type %d before the ClientHello", rc.pending[0])
	default: // another protocol
		return rc.pending, "", false, nil
	}
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	defer c.SetReadDeadline(time.Time{})
	var hidden error
	srv := tls.Server(rc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni = h.ServerName
		for _, e := range h.Extensions {
			if e == extensionECH || e == extensionESNI {
				hidden = fmt.Errorf("egress: the ClientHello carries an encrypted server name (extension %#04x) behind %q", e, sni)
			}
		}
		return nil, errGotHello
	}})
	herr := srv.Handshake()
	if !errors.Is(herr, errGotHello) {
		if herr == nil {
			herr = errors.New("egress: TLS handshake went on past the ClientHello")
		}
		return rc.all(), "", true, herr
	}
	return rc.all(), sni, true, hidden
}

// recordingConn replays pending bytes, then reads from Conn, keeping
// everything read; writes (the TLS alert of the aborted handshake) are
// dropped.
type recordingConn struct {
	net.Conn
	pending []byte
	off     int
	rec     []byte
}

func (r *recordingConn) Read(b []byte) (int, error) {
	if r.off < len(r.pending) {
		n := copy(b, r.pending[r.off:])
		r.off += n
		return n, nil
	}
	if len(r.pending)+len(r.rec) >= maxHello {
		return 0, errors.New("egress: TLS ClientHello too large")
	}
	n, err := r.Conn.Read(b[:min(len(b), maxHello-len(r.pending)-len(r.rec))])
	r.rec = append(r.rec, b[:n]...)
	if n == 0 && err == nil {
		err = io.ErrNoProgress
	}
	return n, err
}

func (r *recordingConn) Write(b []byte) (int, error) { return len(b), nil }

func (r *recordingConn) all() []byte { return append(append([]byte(nil), r.pending...), r.rec...) }
