package egress

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
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

const extensionServerName = 0

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
	if hidden != nil {
		return rc.all(), sni, true, hidden
	}
	_, msg, err := helloEnd(rc.all())
	if err == nil {
		err = oneServerName(msg)
	}
	return rc.all(), sni, true, err
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

// helloEnd returns where the ClientHello at the start of b ends, past
// the handshake records that carry it, which must carry nothing else (a
// record that went on past it could hide another hello), and the
// handshake message itself.
func helloEnd(b []byte) (end int, msg []byte, err error) {
	need := -1 // handshake bytes the hello still needs, once known
	for need != 0 {
		if len(b)-end < 5 || b[end] != recordHandshake {
			return 0, nil, errors.New("egress: the ClientHello's records end short")
		}
		n := int(b[end+3])<<8 | int(b[end+4])
		if len(b)-end-5 < n {
			return 0, nil, errors.New("egress: the ClientHello's records end short")
		}
		msg = append(msg, b[end+5:end+5+n]...)
		end += 5 + n
		if need < 0 && len(msg) >= 4 {
			need = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
		}
		if need >= 0 {
			if len(msg) > need {
				return 0, nil, errors.New("egress: a record carries more than the ClientHello")
			}
			if len(msg) == need {
				need = 0
			}
		}
	}
	return end, msg, nil
}

// oneServerName checks the server_name extension of a ClientHello message
// holds one name, of type host_name: servers differ on which of several
// names, or of a name of another type, they read (RFC 6066 leaves it to
// them), so the name checked might not be the one served.
func oneServerName(msg []byte) error {
	s := cryptobyte.String(msg[4:])
	var sessionID, suites, compression, exts cryptobyte.String
	if !s.Skip(2+32) || !s.ReadUint8LengthPrefixed(&sessionID) || !s.ReadUint16LengthPrefixed(&suites) ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return errors.New("egress: malformed ClientHello")
	}
	if s.Empty() {
		return nil // no extensions
	}
	if !s.ReadUint16LengthPrefixed(&exts) {
		return errors.New("egress: malformed ClientHello extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var body, list cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&body) {
			return errors.New("egress: malformed ClientHello extensions")
		}
		if typ != extensionServerName {
			continue
		}
		var name cryptobyte.String
		var nameType uint8
		if !body.ReadUint16LengthPrefixed(&list) || !body.Empty() || !list.ReadUint8(&nameType) ||
			!list.ReadUint16LengthPrefixed(&name) || nameType != 0 || !list.Empty() {
			return errors.New("egress: the server_name extension holds other than one host name")
		}
	}
	return nil
}

// helloRetryRandom is the random of a ServerHello that is a
// HelloRetryRequest (RFC 8446, 4.1.3).
var helloRetryRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// serverHello watches the first bytes a server sends (it is written to)
// and tells, once they are in or the server stopped, whether they open a
// HelloRetryRequest, after which the client sends a second ClientHello.
// A ServerHello too short in its first record to tell counts as one.
//
// On a plain HTTP connection it also tells, from the same bytes, whether
// the server's first answer is a 101 (Switching Protocols).
type serverHello struct {
	buf   []byte
	once  sync.Once
	done  chan struct{}
	retry bool

	statusOnce sync.Once
	status     chan struct{} // closed once statusLine holds what came of the first 13 bytes
	statusLine []byte
}

// statusHead is the length of "HTTP/1.1 101 ".
const statusHead = 13

// serverHelloHead is a record header, a handshake header, the version and
// the random.
const serverHelloHead = 5 + 4 + 2 + 32

func newServerHello() *serverHello {
	return &serverHello{done: make(chan struct{}), status: make(chan struct{})}
}

func (s *serverHello) Write(b []byte) (int, error) {
	if len(s.buf) < serverHelloHead {
		s.buf = append(s.buf, b[:min(len(b), serverHelloHead-len(s.buf))]...)
		if len(s.buf) >= statusHead {
			s.endStatus()
		}
		if len(s.buf) == serverHelloHead {
			s.end()
		}
	}
	return len(b), nil
}

// endStatus keeps what came of the first answer's status line.
func (s *serverHello) endStatus() {
	s.statusOnce.Do(func() {
		s.statusLine = append([]byte(nil), s.buf[:min(len(s.buf), statusHead)]...)
		close(s.status)
	})
}

// switched reports whether the server's first answer is a 101; it is
// called once status is closed.
func (s *serverHello) switched() bool {
	b := s.statusLine
	return len(b) == statusHead && (string(b[:9]) == "HTTP/1.1 " || string(b[:9]) == "HTTP/1.0 ") &&
		string(b[9:12]) == "101" && (b[12] == ' ' || b[12] == '\r')
}

// copyHead copies src to dst until the first serverHelloHead bytes went
// through (or src ended) and decides on them, so that the rest can be
// copied without watching.
func (s *serverHello) copyHead(dst io.Writer, src io.Reader) (int64, error) {
	defer s.end()
	var n int64
	buf := make([]byte, serverHelloHead)
	for len(s.buf) < serverHelloHead {
		k, err := src.Read(buf[:serverHelloHead-len(s.buf)])
		s.Write(buf[:k])
		if k > 0 {
			w, werr := dst.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// end decides on what came; the server sent all it will send first.
func (s *serverHello) end() {
	s.endStatus()
	s.once.Do(func() {
		b := s.buf
		if len(b) >= 6 && b[0] == recordHandshake && b[5] == 2 { // a ServerHello
			short := int(b[3])<<8|int(b[4]) < serverHelloHead-5
			s.retry = short || len(b) == serverHelloHead && [32]byte(b[11:]) == helloRetryRandom
		}
		close(s.done)
	})
}
