package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzReadPlainHead holds readPlainHead to http.ReadResponse: an answer
// it reads is read by http.ReadResponse field for field, its body byte for
// byte with the same end, and what follows it on the connection is left
// alike; split sends the bytes in two parts, the second after the first
// was buffered.
func FuzzReadPlainHead(f *testing.F) {
	for _, a := range directAnswers {
		f.Add(a.raw, "GET", 0)
	}
	f.Add("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 23:00:00 GMT\r\nContent-Length: 3\r\n\r\nok\n", "GET", 0)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nX-A:  2 \t\r\nX-Empty:\r\n\r\nok\nHTTP/1.1 200 OK\r\n", "POST", 0)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", "GET", 0)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", 0)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567", "GET", 0)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-1abc-Def: v\r\n\r\nok", "GET", 30)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\rb\r\n\r\nok", "GET", 0)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\nContent-Length: 3\r\n\r\nok", "GET", 0)
	f.Fuzz(func(t *testing.T, answer, method string, split int) {
		req := &http.Request{Method: method}
		first, second := answer, ""
		if split > 0 && split < len(answer) {
			first, second = answer[:split], answer[split:]
		}
		src := io.MultiReader(strings.NewReader(first), strings.NewReader(second))
		br := bufio.NewReader(iotest.HalfReader(src))
		if _, err := br.Peek(1); err != nil {
			return
		}
		got, ok := readPlainHead(br, req)
		if !ok {
			return
		}
		want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), req)
		if err != nil {
			t.Fatalf("readPlainHead read %q, http.ReadResponse refused it: %v", answer, err)
		}
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"Status", got.Status, want.Status},
			{"StatusCode", got.StatusCode, want.StatusCode},
			{"Proto", got.Proto, want.Proto},
			{"ProtoMajor", got.ProtoMajor, want.ProtoMajor},
			{"ProtoMinor", got.ProtoMinor, want.ProtoMinor},
			{"Header", got.Header, want.Header},
			{"ContentLength", got.ContentLength, want.ContentLength},
			{"TransferEncoding", got.TransferEncoding, want.TransferEncoding},
			{"Close", got.Close, want.Close},
			{"Uncompressed", got.Uncompressed, want.Uncompressed},
			{"Trailer", got.Trailer, want.Trailer},
			{"Request", got.Request, want.Request},
			{"TLS", got.TLS, want.TLS},
			{"NoBody", got.Body == http.NoBody, want.Body == http.NoBody},
		} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Fatalf("answer %q: %s %#v, http.ReadResponse's %#v", answer, c.name, c.got, c.want)
			}
		}
		gb, gerr := readBody(got.Body)
		wantBR := bufio.NewReader(strings.NewReader(answer))
		want, _ = http.ReadResponse(wantBR, req)
		wb, werr := readBody(want.Body)
		if !bytes.Equal(gb, wb) || !errors.Is(gerr, werr) && gerr != werr {
			t.Fatalf("answer %q: body %q, %v; http.ReadResponse's %q, %v", answer, gb, gerr, wb, werr)
		}
		rest, _ := io.ReadAll(br)
		wrest, _ := io.ReadAll(wantBR)
		if !bytes.Equal(rest, wrest) {
			t.Fatalf("answer %q: left %q, http.ReadResponse left %q", answer, rest, wrest)
		}
	})
}

// readBody reads b to its end, as the copy to the client does, and
// returns its bytes and the error it ended with (nil for io.EOF).
func readBody(b io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := b.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestReadPlainHeadTakesPlainAnswers: the benchmark's backend's answer and
// the fixture's are read by readPlainHead, not left to http.ReadResponse.
func TestReadPlainHeadTakesPlainAnswers(t *testing.T) {
	for _, a := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 23:00:00 GMT\r\nContent-Length: 3\r\n\r\nok\n",
		directAnswers[0].raw,
		directAnswers[2].raw,
		directAnswers[11].raw,
	} {
		br := bufio.NewReader(strings.NewReader(a))
		br.Peek(1)
		if _, ok := readPlainHead(br, &http.Request{Method: "GET"}); !ok {
			t.Errorf("readPlainHead left %q to http.ReadResponse", a)
		}
	}
}
