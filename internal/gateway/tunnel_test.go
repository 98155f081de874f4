//go:build unix

package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat/internal/testkit"
)

// tunnelIdle is the chat route's WebSocket idle timeout in the tests.
const tunnelIdle = time.Second

// tunnelYAML routes chat.example to a WebSocket service whose route sets
// its own idle timeout, well below the file's default.
const tunnelYAML = plainYAML + noWAF + `limits:
  websocket_idle_timeout: 1h
services: [chat]
routes:
  - host: chat.example
    service: chat
    port: 80
    websocket_idle_timeout: 1s
`

// chatService accepts a WebSocket handshake and then reads lines: "echo"
// is answered with itself, "push" with a "tick" every tenth of the idle
// timeout for over twice the timeout, then "done"; anything else is read
// and not answered. When the client's stream ends it stalls: it neither
// sends nor closes, until the gateway closes its connection. ended is
// closed once that is done.
func chatService(t *testing.T) (sock string, ended <-chan struct{}) {
	done := make(chan struct{})
	sock = serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				if hungUp(conn) {
					close(done)
				}
				return
			}
			switch line {
			case "echo\n":
				io.WriteString(conn, line)
			case "push\n":
				tick := time.NewTicker(tunnelIdle / 10)
				for start := time.Now(); time.Since(start) < 2*tunnelIdle+tunnelIdle/2; {
					<-tick.C
					io.WriteString(conn, "tick\n")
				}
				tick.Stop()
				io.WriteString(conn, "done\n")
			}
		}
	})})
	return sock, done
}

// hungUp waits, bounded, until the peer of c has closed its end (not
// merely its stream, which a read's EOF also reports), and says whether
// it did.
func hungUp(c net.Conn) bool {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	fds := []unix.PollFd{{}} // no events asked: only a hangup or an error wakes it
	rc.Control(func(fd uintptr) {
		fds[0].Fd = int32(fd)
		unix.Poll(fds, int(testkit.WaitLimit/time.Millisecond))
	})
	return fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
}

// openChat opens a WebSocket to the chat service through the gateway.
func (f *fixture) openChat() (*tls.Conn, *bufio.Reader) {
	f.t.Helper()
	c, br := f.rawConn()
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	fmt.Fprintf(c, "GET /room HTTP/1.1\r\nHost: chat.example\r\nOrigin: https://chat.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", key)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		f.t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	c.SetDeadline(time.Now().Add(testkit.WaitLimit)) // a guard: every wait below is far shorter
	return c, br
}

// echo checks that the tunnel still carries a message both ways.
func echo(t *testing.T, c net.Conn, br *bufio.Reader, when string) {
	t.Helper()
	io.WriteString(c, "echo\n")
	if line, err := br.ReadString('\n'); line != "echo\n" || err != nil {
		t.Fatalf("%s: echo through the tunnel: %q %v", when, line, err)
	}
}

// TestWebSocketIdleTimeout: once a WebSocket is open the gateway no longer
// reads it and HTTP's timeouts are off, so a client, or a stalled service,
// could hold it (and a place under the per-IP connection cap) for ever
// with nothing sent. Traffic either way keeps it open past its route's
// websocket_idle_timeout; once none has moved for that long, both sides
// are closed and the close is logged.
func TestWebSocketIdleTimeout(t *testing.T) {
	sock, ended := chatService(t)
	f := newFixtureWith(t, tunnelYAML, map[string]string{"chat": sock})
	c, br := f.openChat()

	t.Log("the client sends, the service is silent: open past the timeout")
	tick := time.NewTicker(tunnelIdle / 10)
	for start := time.Now(); time.Since(start) < 2*tunnelIdle+tunnelIdle/2; {
		<-tick.C
		if _, err := io.WriteString(c, "note\n"); err != nil {
			t.Fatalf("sending while the service is silent: %v", err)
		}
	}
	tick.Stop()
	echo(t, c, br, "after the client alone sent")

	t.Log("the service sends, the client is silent: open past the timeout")
	io.WriteString(c, "push\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading what the service pushes: %v", err)
		}
		if line == "done\n" {
			break
		}
	}
	echo(t, c, br, "after the service alone sent")

	t.Log("nothing moves either way: the gateway closes both sides")
	_, err := br.ReadString('\n')
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("an idle WebSocket was still open after %s", testkit.WaitLimit)
	}
	if err == nil {
		t.Fatal("the idle tunnel carried a message no one sent")
	}
	select {
	case <-ended:
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("the service's side of the idle tunnel was still open after %s", testkit.WaitLimit)
	}
	waitFor(t, "the idle close in the log", func() bool {
		l := f.log.String()
		return strings.Contains(l, "websocket closed") && strings.Contains(l, "route=chat") && strings.Contains(l, "idle_timeout=1s")
	})
}

// TestWebSocketIdleStalledService: a client that has ended its stream
// (TLS close_notify, passed on to the service as the end of its input)
// leaves the gateway waiting only for the service's side; a service that
// then stalls, neither sending nor closing, is closed by the idle timeout
// too.
func TestWebSocketIdleStalledService(t *testing.T) {
	sock, ended := chatService(t)
	f := newFixtureWith(t, tunnelYAML, map[string]string{"chat": sock})
	c, br := f.openChat()
	echo(t, c, br, "once open")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the stalled tunnel carried a message no one sent")
	}
	select {
	case <-ended:
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("the stalled service's side of the tunnel was still open after %s", testkit.WaitLimit)
	}
}
