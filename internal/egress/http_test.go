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
		"GET / HTTP/1.1\r\nHost: api.example.test\r\nForwarded: for=192.0.2.1;host=\"api.example.test\", for=x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Forwarded-Host: api.example.test, api.example.test:80\r\n\r\n",
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
		for _, f := range h.fields {
			if !strings.EqualFold(f.name, "forwarded") {
				continue
			}
			// However loosely a server reads host= out of it, it names
			// the target.
			low := strings.ToLower(f.value)
			for i := strings.Index(low, "host="); i >= 0; {
				v := strings.TrimLeft(f.value[i+5:], `"`)
				if end := strings.IndexAny(v, `";,`); end >= 0 {
					v = v[:end]
				}
				if v = strings.TrimSuffix(v, ":80"); !strings.EqualFold(v, t.Host) && !strings.HasSuffix(low[:i], "x") {
					tt.Fatalf("let through with Forwarded %q", f.value)
				}
				next := strings.Index(low[i+5:], "host=")
				if next < 0 {
					break
				}
				i += 5 + next
			}
		}
		if h.chunked {
			budget := maxHTTPHead
			if line, err := readLine(br, &budget); err == nil {
				_, _ = chunkSize(line)
			}
		}
	})
}

// TestCheckForwarded: the host= of a Forwarded field (RFC 7239) is found
// in every form the grammar allows, and a field this reading cannot take
// apart is refused.
func TestCheckForwarded(t *testing.T) {
	target := Target{Host: "api.example.test", Port: 80}
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"for=192.0.2.60;proto=http;by=203.0.113.43", true},
		{`for="[2001:db8:cafe::17]:4711"`, true},
		{"for=192.0.2.43, for=198.51.100.17", true},
		{"host=api.example.test", true},
		{"Host=API.example.test:80", true},
		{`host="api.example.test"`, true},
		{`for="_gazonk" ; host=api.example.test`, true},
		{"", true},
		{"host=evil.example.test", false},
		{"for=x, host=evil.example.test", false},
		{`HOST="evil.example.test"`, false},
		{`host="api.example.test\\x"`, false},
		{"host=api.example.test:8080", false},
		{"host=api.example.test.", false},
		{`for="x;host=evil.example.test`, false},
		{"for=x;;host=evil.example.test", false},
		{"for=x host=evil.example.test", false},
		{"host", false},
		{"=x", false},
	} {
		err := checkForwarded(c.v, target)
		if (err == nil) != c.ok {
			t.Errorf("Forwarded %q: got %v, want ok=%v", c.v, err, c.ok)
		}
	}
}
