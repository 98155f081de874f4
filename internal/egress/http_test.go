package egress

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzRequestHead: the request reader never panics, and a request it lets
// through names the target host in its one Host field.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
		"POST http://api.example.test:80/x HTTP/1.1\r\nHost: API.example.test:80\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\n\r\n",
		"\r\nPUT / HTTP/1.0\r\nHost: api.example.test\r\nContent-Length: 3\r\n\r\nabc",
		"GET /\r\n",
		"SSH-2.0-x y\r\n",
	} {
		f.Add([]byte(s))
	}
	t := Target{Host: "api.example.test", Port: 80}
	f.Fuzz(func(tt *testing.T, b []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(b), maxHTTPLine)
		if isHTTP, err := sniffHTTP(br); err != nil || !isHTTP {
			return
		}
		h, err := readRequestHead(br)
		if err != nil || h.check(t, true) != nil {
			return
		}
		if len(h.host) != 1 || !strings.EqualFold(strings.TrimSuffix(h.host[0], ":80"), t.Host) {
			tt.Fatalf("let through with Host %q", h.host)
		}
		if h.chunked {
			budget := maxHTTPHead
			if line, err := readLine(br, &budget); err == nil {
				_, _ = chunkSize(line)
			}
		}
	})
}
