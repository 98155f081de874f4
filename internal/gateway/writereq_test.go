package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// writeRequest writes what Request.Write writes, byte for byte, and fails
// where it fails: requests of any method, host, target, fields (names as
// given, not canonicalised: both writers read the same map), body and
// declared length.
func FuzzWriteRequest(f *testing.F) {
	f.Add(uint8(0), "localhost", "/products", "id=42&sort=price", "User-Agent:Mozilla/5.0\nAccept:text/html\nX-Request-Id:0af1", 0, 0, false)
	f.Add(uint8(2), "localhost:8443", "/contact", "", "Content-Type:application/x-www-form-urlencoded\nOrigin:https://localhost\nUser-Agent:", 30, 30, false)
	f.Add(uint8(2), "shop.example", "/api/orders", "", "Content-Type:application/json\nContent-Length:5\nTransfer-Encoding:chunked\nHost:evil", 12, 10, false)
	f.Add(uint8(3), "[::1]:80", "/a b/ü", "q=1'", "user-agent:x\nX-A: padded \t\nX-A:second\nBad Name:v\nTrailer:X", 5, 9, false)
	f.Add(uint8(3), "[::1]:80", "/a b/ü", "q=1'", "user-agent:x\nX-A: padded \t\nX-A:second\nBad Name:v\nTrailer:X", 9, 9, false)
	f.Add(uint8(5), "localhost", "/", "", "User-Agent: \t \nX-Empty:", 0, 0, false)
	f.Add(uint8(5), "[fe80::1%25eth0]", "/", "", "User-Agent:   \nX-Empty:", 0, 0, true)
	f.Add(uint8(6), "héllo.example", "/x", "a=\x01", "X-CR:a\rb\nX-LF:c", 0, 0, false)
	f.Add(uint8(8), "", "", "", "", 1, 0, false)
	f.Add(uint8(0), "localhost", "/", "", "User-Agent:a\rb\nAccept:x", 0, 0, false)
	f.Add(uint8(9), "a/b", "//x", "", "Connection:close", 0, -1, false)
	f.Fuzz(func(t *testing.T, m uint8, host, path, query, fields string, bodyLen, declared int, closing bool) {
		methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "", "get", "CONNECT"}
		bodyLen, declared = bodyLen%100, declared%100
		build := func() *http.Request {
			r := &http.Request{
				Method: methods[int(m)%len(methods)],
				URL:    &url.URL{Scheme: "http", Host: "app:8080", Path: path, RawQuery: query},
				Host:   host, Header: http.Header{}, Close: closing, ContentLength: int64(declared),
			}
			if fields != "" {
				for _, line := range strings.Split(fields, "\n") {
					k, v, _ := strings.Cut(line, ":")
					r.Header[k] = append(r.Header[k], v)
				}
			}
			if bodyLen > 0 {
				r.Body = io.NopCloser(strings.NewReader(strings.Repeat("b", bodyLen)))
			} else if bodyLen < 0 {
				r.Body = http.NoBody
			}
			return r
		}
		var want, got bytes.Buffer
		ww, gw := bufio.NewWriter(&want), bufio.NewWriter(&got)
		werr := build().Write(bodyBehind{ww})
		gerr := writeRequest(gw, build())
		ww.Flush()
		gw.Flush()
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			t.Fatalf("Request.Write: %v; writeRequest: %v", werr, gerr)
		}
		if werr == nil && want.String() != got.String() {
			t.Fatalf("Request.Write wrote\n%q\nwriteRequest\n%q", want.String(), got.String())
		}
	})
}

// BenchmarkWriteRequest writes the GET of bench/gateway as the gateway
// forwards it, with Request.Write and with writeRequest.
func BenchmarkWriteRequest(b *testing.B) {
	r := &http.Request{
		Method: "GET", URL: &url.URL{Scheme: "http", Host: "app:8080", Path: "/products", RawQuery: "id=42&sort=price"},
		Host: "localhost",
		Header: http.Header{
			"User-Agent":        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"},
			"Accept":            {"text/html,application/json"},
			"Accept-Encoding":   {"gzip"},
			"X-Forwarded-For":   {"127.0.0.1"},
			"X-Forwarded-Host":  {"localhost"},
			"X-Forwarded-Proto": {"https"},
			"X-Real-Ip":         {"127.0.0.1"},
			"X-Request-Id":      {"6f1c0e0b9a4d4f6c8e2b1a3d5c7e9f01"},
		},
	}
	for _, w := range []struct {
		name  string
		write func(*bufio.Writer, *http.Request) error
	}{
		{"Request.Write", func(bw *bufio.Writer, r *http.Request) error { return r.Write(bodyBehind{bw}) }},
		{"writeRequest", writeRequest},
	} {
		b.Run(w.name, func(b *testing.B) {
			bw := bufio.NewWriter(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.write(bw, r); err != nil {
					b.Fatal(err)
				}
				bw.Flush()
			}
		})
	}
}
