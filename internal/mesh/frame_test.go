package mesh

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"moat/internal/testkit"
)

// countingConn counts the writes that reach the transport.
type countingConn struct {
	net.Conn
	mu     sync.Mutex // guards writes
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// tlsPair is a TLS connection over a counted transport, and what its peer
// reads until it is closed.
func tlsPair(t *testing.T) (client *tls.Conn, bc *batchConn, raw *countingConn, got chan []byte) {
	f := newFixture(t)
	cert := f.issue(t, "api", time.Hour)
	a, b := net.Pipe()
	raw = &countingConn{Conn: a}
	bc = &batchConn{Conn: raw}
	client = tls.Client(bc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13})
	got = make(chan []byte, 1)
	go func() {
		_ = server.Handshake()
		buf, _ := io.ReadAll(server)
		got <- buf
	}()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	return client, bc, raw, got
}

// frames writes yamux data frames to fc and keeps what it wrote.
type frames struct {
	t    *testing.T
	fc   *frameConn
	want []byte
}

func (w *frames) write(body int, fill byte) {
	f := make([]byte, yamuxHeaderLen+body)
	binary.BigEndian.PutUint32(f[8:], uint32(body))
	for i := yamuxHeaderLen; i < len(f); i++ {
		f[i] = fill
	}
	w.want = append(w.want, f...)
	if _, err := w.fc.Write(f); err != nil {
		w.t.Fatal(err)
	}
}

// holding is a session's send queue as frameConn sees it: n frames
// still to come.
type holding struct{ n atomic.Int64 }

func (h *holding) queued() int { return int(h.n.Load()) }

// TestFramesLeaveInOneWrite: a large yamux frame (thirty-two TLS records),
// written by the session in one call, reaches the transport at once in one
// write; small frames written while the session holds more for its send
// loop are gathered and leave together, in one write, with the one after
// which it holds none; and the peer reads every frame whole and in order.
func TestFramesLeaveInOneWrite(t *testing.T) {
	client, bc, raw, got := tlsPair(t)
	fc := newFrameConn(client, bc)
	var h holding
	fc.queued = h.queued
	w := &frames{t: t, fc: fc}
	before := raw.count()
	w.write(largeBuf, 'L')
	if n := raw.count() - before; n != 1 {
		t.Errorf("a frame with a %d-byte body took %d writes", largeBuf, n)
	}

	before = raw.count()
	for i := range 10 {
		h.n.Store(int64(9 - i))
		w.write(1024, byte('a'+i))
		if n := raw.count() - before; i < 9 && n != 0 {
			t.Fatalf("%d writes reached the transport with %d frames still to come", n, 9-i)
		}
	}
	if n := raw.count() - before; n != 1 {
		t.Errorf("ten gathered small frames took %d writes", n)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-got, w.want) {
		t.Fatal("the peer did not read the frames as written")
	}
}

// TestLargeFrameTakesGathered: a large frame leaves behind the small frames
// gathered before it, in the same write; small frames still gathered at
// Close leave before the connection closes.
func TestLargeFrameTakesGathered(t *testing.T) {
	client, bc, raw, got := tlsPair(t)
	fc := newFrameConn(client, bc)
	var h holding
	h.n.Store(1) // the session always holds more: small frames stay gathered
	fc.queued = h.queued
	w := &frames{t: t, fc: fc}
	before := raw.count()
	for i := range 3 {
		w.write(100, byte('a'+i))
	}
	w.write(largeBuf, 'L')
	if n := raw.count() - before; n != 1 {
		t.Errorf("three small frames and a large one behind them took %d writes", n)
	}
	w.write(100, 'z')
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-got, w.want) {
		t.Fatal("the peer did not read the frames as written")
	}
}

// TestFrameConnCloseUnblocksWrite: a send loop stuck writing a batch (the
// peer stopped reading) returns when the tunnel is closed, instead of
// hanging the session's shutdown.
func TestFrameConnCloseUnblocksWrite(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	fc := newFrameConn(a, &batchConn{Conn: a})
	errc := make(chan error, 1)
	go func() {
		small := make([]byte, 1024)
		for {
			if _, err := fc.Write(small); err != nil {
				errc <- err
				return
			}
		}
	}()
	testkit.WaitFor(t, "the send loop to be stuck in its write", func() bool {
		if !fc.wmu.TryLock() {
			return true
		}
		fc.wmu.Unlock()
		return false
	})
	// Close cannot flush (a write is under way): it closes the conn.
	_ = fc.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Write succeeded after Close")
		}
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("Write still blocked %s after Close", testkit.WaitLimit)
	}
}

// TestFrameConnFollowsSendQueue: follow counts the frames a go-yamux
// session holds for its send loop (read from the library's unexported
// queue, which a new version may rename or retype), and those frames
// leave once the send loop can write again.
func TestFrameConnFollowsSendQueue(t *testing.T) {
	client, bc, _, got := tlsPair(t)
	fc := newFrameConn(client, bc)
	sess, err := yamux.Client(fc, muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fc.follow(sess)
	fc.wmu.Lock()
	st, err := sess.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The send loop waits to write the stream's opening frame or the large
	// one after it; the small ones behind them stay in the session's
	// queue.
	if _, err := st.Write(bytes.Repeat([]byte{'L'}, tlsRecord)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		if _, err := st.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, "the session to hold the three small frames", func() bool { return fc.queued() >= 3 })
	fc.wmu.Unlock()
	testkit.WaitFor(t, "the send loop to write them", func() bool { return fc.queued() == 0 })
	_ = sess.Close()
	b := <-got
	for _, m := range []string{"one", "two", "three"} {
		if !bytes.Contains(b, []byte(m)) {
			t.Errorf("the peer did not read %q", m)
		}
	}
}

// TestTunnelCarriesStreamsWhole: two yamux sessions over TLS, each end's
// writes through a frameConn as a tunnel's are, carry many streams at once
// (small writes that are gathered, full-buffer ones that leave at once,
// sizes in between), each echoed back by the peer, every byte whole and in
// order.
func TestTunnelCarriesStreamsWhole(t *testing.T) {
	f := newFixture(t)
	cert := f.issue(t, "api", time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		bc := &batchConn{Conn: c}
		tc := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
		if tc.Handshake() != nil {
			return
		}
		sess, err := yamux.Server(newFrameConn(tc, bc), muxConfig(), nil)
		if err != nil {
			return
		}
		defer sess.Close()
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(st, st)
				_ = st.CloseWrite()
			}()
		}
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bc := &batchConn{Conn: c}
	tc := tls.Client(bc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(newFrameConn(tc, bc), muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	sizes := []int{1, 100, 1024, largeBuf, 5000, tlsRecord, tlsRecord - 1, 3 * largeBuf, 12}
	const streams = 16
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := sess.OpenStream(context.Background())
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(testkit.WaitLimit))
			var want []byte
			for j := range 20 {
				n := sizes[(i+j)%len(sizes)]
				want = append(want, bytes.Repeat([]byte{byte(i*31 + j)}, n)...)
			}
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(st)
				got <- b
			}()
			for off, j := 0, 0; off < len(want); j++ {
				n := sizes[(i+j)%len(sizes)]
				if _, err := st.Write(want[off : off+n]); err != nil {
					errs <- err
					return
				}
				off += n
			}
			if err := st.CloseWrite(); err != nil {
				errs <- err
				return
			}
			if b := <-got; !bytes.Equal(b, want) {
				errs <- fmt.Errorf("stream %d: %d bytes echoed, %d sent, or not as sent", i, len(b), len(want))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// recordingConn keeps every write that reaches it, or fails them all.
type recordingConn struct {
	net.Conn
	writes [][]byte
	fail   error
}

func (c *recordingConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// TestBatchConnGathersEverySize: whatever a held write gathers (a small
// batch, a medium frame, a full frame's records, a full frame behind a
// full gathered batch, more than that), flush sends it in one write, in
// order; a buffer larger than batchKeep is not kept after its flush (an
// idle tunnel holds none); a failed write is flush's error and leaves the
// batchConn ready for the next batch.
func TestBatchConnGathersEverySize(t *testing.T) {
	rc := &recordingConn{}
	bc := &batchConn{Conn: rc}
	big := gatherMax + largeBuf + yamuxHeaderLen
	for _, n := range []int{100, 40 << 10, largeBuf + yamuxHeaderLen, big, 2 * big, 100} {
		var want []byte
		bc.hold(n)
		// TLS writes a record at a time.
		for off := 0; off < n; off += tlsRecord + recordOverhead {
			rec := bytes.Repeat([]byte{byte(n + off)}, min(tlsRecord+recordOverhead, n-off))
			want = append(want, rec...)
			if _, err := bc.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		before := len(rc.writes)
		if err := bc.flush(); err != nil {
			t.Fatal(err)
		}
		if len(rc.writes) != before+1 || !bytes.Equal(rc.writes[before], want) {
			t.Fatalf("%d bytes held: %d writes, or not the bytes written", n, len(rc.writes)-before)
		}
		if bc.big != nil || cap(bc.buf) > batchKeep {
			t.Errorf("after a %d-byte batch the batchConn keeps a %d-byte buffer (a pooled one: %v)", n, cap(bc.buf), bc.big != nil)
		}
	}

	rc.fail = errors.New("broken pipe")
	bc.hold(largeBuf)
	if _, err := bc.Write(make([]byte, largeBuf)); err != nil {
		t.Fatal(err)
	}
	if err := bc.flush(); !errors.Is(err, rc.fail) {
		t.Fatalf("flush over a failing transport returned %v", err)
	}
	if bc.big != nil || len(bc.buf) != 0 {
		t.Error("a failed flush left its batch behind")
	}
	rc.fail = nil
	if _, err := bc.Write([]byte("after")); err != nil || !bytes.Equal(rc.writes[len(rc.writes)-1], []byte("after")) {
		t.Errorf("a write outside hold after a failed flush: %v", err)
	}
}

// tapConn diverts a connection once tapped: the client's writes go to buf,
// the server's reads come from it; reads counts the server's reads.
type tapConn struct {
	net.Conn
	mu     sync.Mutex // guards the fields below
	tapped bool
	buf    *bytes.Buffer
	reads  int
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tapped {
		return c.buf.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *tapConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if !c.tapped {
		c.mu.Unlock()
		return c.Conn.Read(p)
	}
	defer c.mu.Unlock()
	c.reads++
	return c.buf.Read(p)
}

// TestBatchConnReadsAhead: while bulk arrives (reads fill what TLS asks
// for), the tunnel's reads take a frame's records at a time, not one
// record each, and TLS reads every byte as sent; once what arrives is
// small again, the read-ahead buffer is let go.
func TestBatchConnReadsAhead(t *testing.T) {
	f := newFixture(t)
	cert := f.issue(t, "api", time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, ok := <-accepted
	if !ok {
		t.Fatal("no connection accepted")
	}
	defer sc.Close()

	var buf bytes.Buffer
	ctap, stap := &tapConn{Conn: cc, buf: &buf}, &tapConn{Conn: sc, buf: &buf}
	bc := &batchConn{Conn: stap}
	server := tls.Server(bc, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true})
	client := tls.Client(ctap, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, DynamicRecordSizingDisabled: true})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range []*tapConn{ctap, stap} {
		c.mu.Lock()
		c.tapped = true
		c.mu.Unlock()
	}

	// 2 MB in 128 records, all of them waiting to be read.
	want := make([]byte, 128*tlsRecord)
	for i := range want {
		want[i] = byte(i * 7 / 3)
	}
	if _, err := client.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read through the read-ahead are not the bytes written")
	}
	if n := stap.reads; n > 12 {
		t.Errorf("128 records waiting took %d reads of the transport", n)
	}
	if bc.ahead == nil {
		t.Error("no read-ahead buffer while bulk arrived")
	}

	if _, err := client.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 5)
	if _, err := io.ReadFull(server, small); err != nil || string(small) != "small" {
		t.Fatalf("after the bulk, read %q, %v", small, err)
	}
	if bc.ahead != nil {
		t.Error("the read-ahead buffer is kept while what arrives is small")
	}
}
