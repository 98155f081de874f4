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
	"sync"
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

// longIdleYAML is tunnelYAML with an hour's idle timeout on the chat
// route, so that only what a test does ends a WebSocket.
var longIdleYAML = strings.Replace(tunnelYAML, "websocket_idle_timeout: 1s", "websocket_idle_timeout: 1h", 1)

// chatService accepts a WebSocket handshake and then reads lines: "echo"
// is answered with itself, "push" with a "tick" every tenth of the idle
// timeout for over twice the timeout, then "done"; "bye" ends the
// WebSocket (the service closes its connection); anything else is read
// and not answered. When the client's stream ends it stalls: it neither
// sends nor closes, until the gateway closes its connection. ended is
// closed once that is done (on the first connection it is done to).
func chatService(t *testing.T) (sock string, ended <-chan struct{}) {
	done := make(chan struct{})
	var once sync.Once
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
					once.Do(func() { close(done) })
				}
				return
			}
			switch line {
			case "echo\n":
				io.WriteString(conn, line)
			case "bye\n":
				return
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
	waitFor(t, "no tunnel left in the gateway's set", func() bool { return f.gw.tunnels.count() == 0 })
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
	waitFor(t, "no tunnel left in the gateway's set", func() bool { return f.gw.tunnels.count() == 0 })
}

// chatUntilClosed sends "echo" on c, and reads it back, every tenth of
// tunnelIdle until the gateway closes the WebSocket; it fails t if the
// WebSocket is still open when c's deadline (openChat's guard) comes.
func chatUntilClosed(t *testing.T, c net.Conn, br *bufio.Reader, when string) {
	t.Helper()
	tick := time.NewTicker(tunnelIdle / 10)
	defer tick.Stop()
	for {
		<-tick.C
		line := ""
		_, err := io.WriteString(c, "echo\n")
		if err == nil {
			line, err = br.ReadString('\n')
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: a WebSocket carrying messages was still open after %s", when, testkit.WaitLimit)
		}
		if err != nil {
			return
		}
		if line != "echo\n" {
			t.Fatalf("%s: the tunnel carried %q", when, line)
		}
	}
}

// TestShutdownClosesOpenWebSockets: net/http's Shutdown forgets a
// connection once it is hijacked, so a WebSocket carrying messages would
// outlive the gateway's stop, holding its descriptors and the
// configuration it was opened under. Past the shutdown grace the gateway
// closes both of its sides, logs how many it closed, and Run returns.
func TestShutdownClosesOpenWebSockets(t *testing.T) {
	sock, ended := chatService(t)
	f := newFixtureTuned(t, longIdleYAML, map[string]string{"chat": sock}, func(c *Config) {
		c.ShutdownGrace = tunnelIdle / 5
	})
	c, br := f.openChat()
	echo(t, c, br, "once open")
	if n := f.gw.tunnels.count(); n != 1 {
		t.Fatalf("open tunnels: %d, want 1", n)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- f.stop() }()
	chatUntilClosed(t, c, br, "after shutdown began")
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("Run had not returned %s after its context ended", testkit.WaitLimit)
	}
	select {
	case <-ended:
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("the service's side of the tunnel was still open %s after shutdown", testkit.WaitLimit)
	}
	waitFor(t, "the count of tunnels closed at shutdown in the log", func() bool {
		l := f.log.String()
		return strings.Contains(l, "websocket tunnels closed at shutdown") && strings.Contains(l, "closed=1")
	})
	waitFor(t, "no tunnel left in the gateway's set", func() bool { return f.gw.tunnels.count() == 0 })
}

// TestShutdownWaitsForWebSockets: a WebSocket still carries messages
// once shutdown has begun (new connections are refused), and one that
// ends within the grace (here an hour, so Run returns only because it
// ended) is left to end by itself: none is closed, and Run returns.
func TestShutdownWaitsForWebSockets(t *testing.T) {
	sock, _ := chatService(t)
	f := newFixtureTuned(t, longIdleYAML, map[string]string{"chat": sock}, func(c *Config) {
		c.ShutdownGrace = time.Hour
	})
	c, br := f.openChat()
	echo(t, c, br, "once open")

	stopped := make(chan error, 1)
	go func() { stopped <- f.stop() }()
	waitFor(t, "the gateway to refuse new connections", func() bool {
		nc, err := net.Dial("tcp", f.gw.Addr().String())
		if err != nil {
			return true
		}
		nc.Close()
		return false
	})
	echo(t, c, br, "after shutdown began")
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a WebSocket was open, within the grace", err)
	default:
	}

	t.Log("the service ends the WebSocket, then the client")
	io.WriteString(c, "bye\n")
	if _, err := br.ReadString('\n'); err != io.EOF {
		t.Fatalf("the service's end of the WebSocket: %v, want EOF", err)
	}
	c.Close()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(testkit.WaitLimit):
		t.Fatalf("Run had not returned %s after the last WebSocket ended", testkit.WaitLimit)
	}
	if n := f.gw.tunnels.count(); n != 0 {
		t.Errorf("open tunnels after Run returned: %d, want 0", n)
	}
	if l := f.log.String(); strings.Contains(l, "closed at shutdown") || strings.Contains(l, "websocket closed") {
		t.Errorf("a WebSocket that ended by itself was closed by the gateway:\n%s", l)
	}
}

// TestWebSocketTunnelsLeaveTheSet: the gateway tracks every open tunnel
// so as to close it at shutdown; one that ends, by the service's close or
// the client's abort, leaves the set (the idle tests check that one the
// idle timeout ends does too).
func TestWebSocketTunnelsLeaveTheSet(t *testing.T) {
	sock, _ := chatService(t)
	f := newFixtureWith(t, longIdleYAML, map[string]string{"chat": sock})
	c1, br1 := f.openChat()
	c2, br2 := f.openChat()
	echo(t, c1, br1, "the first, once open")
	echo(t, c2, br2, "the second, once open")
	if n := f.gw.tunnels.count(); n != 2 {
		t.Fatalf("open tunnels: %d, want 2", n)
	}

	t.Log("the service ends the first")
	io.WriteString(c1, "bye\n")
	if _, err := br1.ReadString('\n'); err != io.EOF {
		t.Fatalf("the service's end of the first WebSocket: %v, want EOF", err)
	}
	c1.Close()
	waitFor(t, "the first tunnel to leave the set", func() bool { return f.gw.tunnels.count() == 1 })

	t.Log("the client aborts the second (a TCP reset)")
	if err := c2.NetConn().(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c2.NetConn().Close()
	waitFor(t, "no tunnel left in the set", func() bool { return f.gw.tunnels.count() == 0 })
}
