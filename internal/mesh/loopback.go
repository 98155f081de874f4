package mesh

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// ListenLoopback listens on addr and, when that is 127.0.0.1, on the same
// port of ::1 too, serving both as one listener: a local user who bound
// that port on ::1 would take the calls of an app told "localhost", which
// getaddrinfo sends to ::1 first. A port another socket holds on ::1 is
// an error; a node without IPv6 loopback, where no one can bind it, is
// served on 127.0.0.1 alone. Addr is addr's bound address.
func ListenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		return ln, nil
	}
	six := net.JoinHostPort("::1", strconv.Itoa(a.Port))
	twin, err := net.Listen("tcp6", six)
	switch {
	case err == nil:
		return newPairListener(ln, twin), nil
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT):
		return ln, nil
	}
	ln.Close()
	return nil, fmt.Errorf("the same port on IPv6 loopback, %s, where apps told \"localhost\" connect first: %w", six, err)
}

// pairListener accepts from two listeners as one.
type pairListener struct {
	first    net.Listener // whose address is Addr
	lns      [2]net.Listener
	accepted chan acceptResult
	done     chan struct{}
	once     sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newPairListener(a, b net.Listener) *pairListener {
	p := &pairListener{first: a, lns: [2]net.Listener{a, b}, accepted: make(chan acceptResult), done: make(chan struct{})}
	for _, ln := range p.lns {
		go p.serve(ln)
	}
	return p
}

// serve hands what ln accepts to Accept until the pair is closed.
func (p *pairListener) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case p.accepted <- acceptResult{c, err}:
		case <-p.done:
			if c != nil {
				c.Close()
			}
			return
		}
	}
}

func (p *pairListener) Accept() (net.Conn, error) {
	select {
	case r := <-p.accepted:
		return r.c, r.err
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pairListener) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = errors.Join(p.lns[0].Close(), p.lns[1].Close())
	})
	return err
}

func (p *pairListener) Addr() net.Addr { return p.first.Addr() }
