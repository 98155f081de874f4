package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

// backends serves, on loopback ports the kernel picks, what every path
// carries: an HTTP echo (1 KB POSTs answered with their body), a TCP echo
// (a new connection per request) and a sink (bulk: it reads to EOF and
// answers the byte count). It prints "http ADDR", "echo ADDR" and
// "sink ADDR" and serves until killed. It runs as a process of its own so
// that the load generator and the proxies do not share its runtime.
func backends() error {
	listen := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	hl, err := listen()
	if err != nil {
		return err
	}
	el, err := listen()
	if err != nil {
		return err
	}
	sl, err := listen()
	if err != nil {
		return err
	}
	fmt.Printf("http %s\necho %s\nsink %s\n", hl.Addr(), el.Addr(), sl.Addr())
	_ = os.Stdout.Sync()
	go serveEach(el, func(c net.Conn) { _, _ = io.Copy(c, c) })
	go serveEach(sl, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		_ = binary.Write(c, binary.BigEndian, uint64(n))
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})}
	return srv.Serve(hl)
}

func serveEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}
