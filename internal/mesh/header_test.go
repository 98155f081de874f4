package mesh

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	b, err := AppendRequest(nil, Request{Service: "api", Port: 8080})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{1, 3, 'a', 'p', 'i', 0x1f, 0x90}; !bytes.Equal(b, want) {
		t.Fatalf("encoding % x, want % x", b, want)
	}
	r, err := ReadRequest(bytes.NewReader(append(b, "trailing"...)))
	if err != nil || r != (Request{Service: "api", Port: 8080}) {
		t.Fatalf("%+v %v", r, err)
	}
	resp := Response{Status: StatusDeny, Rule: "default-deny", Reason: strings.Repeat("x", 300)}
	got, err := ReadResponse(bytes.NewReader(AppendResponse(nil, resp)))
	if err != nil || got.Status != StatusDeny || got.Rule != "default-deny" || len(got.Reason) != 255 {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestHeaderErrors(t *testing.T) {
	good, _ := AppendRequest(nil, Request{Service: "api", Port: 8080})
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"tls record", append([]byte{0x16}, good[1:]...), "version 22"},
		{"short", good[:4], "unexpected EOF"},
		{"bad name", []byte{1, 3, 'A', '/', 'x', 0, 1}, "bad name"},
		{"empty name", []byte{1, 0, 0, 1}, "bad name"},
		{"port zero", []byte{1, 3, 'a', 'p', 'i', 0, 0}, "port 0"},
	}
	for _, c := range cases {
		_, err := ReadRequest(bytes.NewReader(c.b))
		if !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := AppendRequest(nil, Request{Service: "api", Port: 70000}); err == nil {
		t.Error("port 70000 encoded")
	}
	if _, err := ReadResponse(bytes.NewReader([]byte{1, 9, 0, 0})); err == nil {
		t.Error("status 9 accepted")
	}
}

func FuzzReadRequest(f *testing.F) {
	good, _ := AppendRequest(nil, Request{Service: "api", Port: 8080})
	f.Add(good)
	f.Add([]byte{1, 1, 'a', 0, 1})
	f.Add([]byte{0x16, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		b, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("decoded request %+v does not encode: %v", r, err)
		}
		if !bytes.HasPrefix(data, b) {
			t.Fatalf("round trip: % x is not a prefix of % x", b, data)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	f.Add(AppendResponse(nil, Response{Status: StatusAllow, Rule: "web-to-api"}))
	f.Add(AppendResponse(nil, Response{Status: StatusDeny, Rule: "default-deny", Reason: "no"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadResponse(bytes.NewReader(data))
		if err != nil {
			return
		}
		if b := AppendResponse(nil, r); !bytes.HasPrefix(data, b) {
			t.Fatalf("round trip: % x is not a prefix of % x", b, data)
		}
	})
}
