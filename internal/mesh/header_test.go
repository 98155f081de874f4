package mesh

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const testConnID = "00112233445566778899aabbccddeeff"

func TestHeaderRoundTrip(t *testing.T) {
	b, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{2, 3, 'a', 'p', 'i', 0x1f, 0x90}, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding % x, want % x", b, want)
	}
	r, err := ReadRequest(bytes.NewReader(append(b, "trailing"...)))
	if err != nil || r != (Request{Service: "api", Port: 8080, ConnID: testConnID}) {
		t.Fatalf("%+v %v", r, err)
	}
	t.Log("a version 1 request (an agent not yet upgraded) still reads, without an ID")
	r, err = ReadRequest(bytes.NewReader([]byte{1, 3, 'a', 'p', 'i', 0x1f, 0x90}))
	if err != nil || r != (Request{Service: "api", Port: 8080}) {
		t.Fatalf("v1: %+v %v", r, err)
	}
	resp := Response{Status: StatusDeny, Code: "policy_denied", Rule: "default-deny", Reason: strings.Repeat("x", 300)}
	got, err := ReadResponse(bytes.NewReader(AppendResponse(nil, resp)))
	if err != nil || got.Status != StatusDeny || got.Code != "policy_denied" || got.Rule != "default-deny" || len(got.Reason) != 255 {
		t.Fatalf("%+v %v", got, err)
	}
	got, err = ReadResponse(bytes.NewReader([]byte{1, StatusDeny, 2, 'r', '1', 1, 'x'}))
	if err != nil || got != (Response{Status: StatusDeny, Rule: "r1", Reason: "x"}) {
		t.Fatalf("v1 response: %+v %v", got, err)
	}
}

func TestHeaderErrors(t *testing.T) {
	good, _ := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID})
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"tls record", append([]byte{0x16}, good[1:]...), "version 22"},
		{"short", good[:4], "unexpected EOF"},
		{"no conn id", good[:7], "unexpected EOF"},
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
	if _, err := AppendRequest(nil, Request{Service: "api", Port: 70000, ConnID: testConnID}); err == nil {
		t.Error("port 70000 encoded")
	}
	if _, err := AppendRequest(nil, Request{Service: "api", Port: 80, ConnID: "abc"}); err == nil {
		t.Error("a short connection id encoded")
	}
	if _, err := ReadResponse(bytes.NewReader([]byte{2, 9, 0, 0, 0})); err == nil {
		t.Error("status 9 accepted")
	}
}

func FuzzReadRequest(f *testing.F) {
	good, _ := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID})
	f.Add(good)
	f.Add([]byte{1, 1, 'a', 0, 1})
	f.Add([]byte{0x16, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		if r.ConnID == "" { // version 1: fields checked, nothing to re-encode
			if data[0] != headerV1 {
				t.Fatalf("a version %d request without a connection id", data[0])
			}
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
	f.Add(AppendResponse(nil, Response{Status: StatusDeny, Code: "policy_denied", Rule: "default-deny", Reason: "no"}))
	f.Add([]byte{1, 2, 1, 'r', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadResponse(bytes.NewReader(data))
		if err != nil || data[0] == headerV1 {
			return
		}
		if b := AppendResponse(nil, r); !bytes.HasPrefix(data, b) {
			t.Fatalf("round trip: % x is not a prefix of % x", b, data)
		}
	})
}
