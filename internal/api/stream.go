package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Stream opens a full-duplex byte stream to the server at path: the
// request body carries what is written, the response body what is read. It
// is how an agent keeps its access tunnel open and how an administrator's
// client reaches a node through the relay. The stream ends when either side
// closes it or ctx ends.
func (c *Client) Stream(ctx context.Context, path string, header http.Header) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	// Each attempt has a pipe of its own: nothing is written into it
	// before an answer came, so a server that could not be reached or
	// answered 503 took nothing, and the next one is tried.
	var pw *io.PipeWriter
	resp, err := c.do(ctx, failoverAny, func(base string) (*http.Request, error) {
		if pw != nil {
			pw.Close()
		}
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, pr)
		if err != nil {
			return nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		return req, nil
	})
	if err != nil {
		cancel()
		if pw != nil {
			pw.Close()
		}
		return nil, fmt.Errorf("api: %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		pw.Close()
		return nil, readError(resp)
	}
	w := pw
	return &StreamConn{R: resp.Body, W: w, Header: resp.Header, Closer: func() error {
		cancel()
		w.Close()
		return resp.Body.Close()
	}}, nil
}

// StreamConn is a net.Conn over a reader and a writer (an HTTP body pair).
// Deadlines are not supported; Close ends both directions.
type StreamConn struct {
	R      io.Reader
	W      io.Writer
	Closer func() error
	// Flush, when set, is called after every write.
	Flush func() error
	// Local and Remote are reported by LocalAddr and RemoteAddr.
	Local, Remote net.Addr
	// Header is the answer's header, on a client's stream (Client.Stream).
	Header http.Header

	once sync.Once
	err  error
	mu   sync.Mutex // serializes writes
}

func (s *StreamConn) Read(p []byte) (int, error) { return s.R.Read(p) }

func (s *StreamConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.W.Write(p)
	if err == nil && s.Flush != nil {
		err = s.Flush()
	}
	return n, err
}

// Close ends the stream; it is idempotent.
func (s *StreamConn) Close() error {
	s.once.Do(func() {
		if s.Closer != nil {
			s.err = s.Closer()
		}
	})
	return s.err
}

type streamAddr string

func (a streamAddr) Network() string { return "moat-stream" }
func (a streamAddr) String() string  { return string(a) }

// LocalAddr implements net.Conn.
func (s *StreamConn) LocalAddr() net.Addr {
	if s.Local != nil {
		return s.Local
	}
	return streamAddr("local")
}

// RemoteAddr implements net.Conn.
func (s *StreamConn) RemoteAddr() net.Addr {
	if s.Remote != nil {
		return s.Remote
	}
	return streamAddr("remote")
}

// SetDeadline is not supported on a stream; it returns nil so TLS and SSH
// libraries that set deadlines opportunistically keep working.
func (s *StreamConn) SetDeadline(time.Time) error      { return nil }
func (s *StreamConn) SetReadDeadline(time.Time) error  { return nil }
func (s *StreamConn) SetWriteDeadline(time.Time) error { return nil }

// Upload sends body as the raw request body of a POST to path (to the
// servers in turn, as Call) and decodes the JSON answer into out (nil to
// discard it).
func (c *Client) Upload(ctx context.Context, path string, body []byte, out any) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	resp, err := c.do(ctx, failoverAny, func(base string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		return req, err
	})
	if err != nil {
		return fmt.Errorf("api: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}
