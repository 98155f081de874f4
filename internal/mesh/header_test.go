package mesh

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"moat/internal/flow"
)

const testConnID = "00112233445566778899aabbccddeeff"

func TestHeaderRoundTrip(t *testing.T) {
	b, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID}, headerV2)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{2, 3, 'a', 'p', 'i', 0x1f, 0x90}, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding % x, want % x", b, want)
	}
	r, err := ReadRequest(bytes.NewReader(append(b, "trailing"...)), headerV2)
	if err != nil || r != (Request{Service: "api", Port: 8080, ConnID: testConnID}) {
		t.Fatalf("%+v %v", r, err)
	}
	t.Log("version 1, for a tunnel to or from an agent not yet upgraded: no ID, no code")
	v1 := []byte{1, 3, 'a', 'p', 'i', 0x1f, 0x90}
	if b, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID}, headerV1); err != nil || !bytes.Equal(b, v1) {
		t.Fatalf("v1 encoding % x, %v; want % x", b, err, v1)
	}
	r, err = ReadRequest(bytes.NewReader(v1), headerV1)
	if err != nil || r != (Request{Service: "api", Port: 8080}) {
		t.Fatalf("v1: %+v %v", r, err)
	}
	resp := Response{Status: StatusDeny, Code: "policy_denied", Rule: "default-deny", Reason: strings.Repeat("x", 300)}
	got, err := ReadResponse(bytes.NewReader(AppendResponse(nil, resp, headerV2)), headerV2)
	if err != nil || got.Status != StatusDeny || got.Code != "policy_denied" || got.Rule != "default-deny" || len(got.Reason) != 255 {
		t.Fatalf("%+v %v", got, err)
	}
	v1resp := []byte{1, StatusDeny, 2, 'r', '1', 1, 'x'}
	if b := AppendResponse(nil, Response{Status: StatusDeny, Code: "policy_denied", Rule: "r1", Reason: "x"}, headerV1); !bytes.Equal(b, v1resp) {
		t.Fatalf("v1 response encoding % x, want % x", b, v1resp)
	}
	got, err = ReadResponse(bytes.NewReader(v1resp), headerV1)
	if err != nil || got != (Response{Status: StatusDeny, Rule: "r1", Reason: "x"}) {
		t.Fatalf("v1 response: %+v %v", got, err)
	}
	t.Log("a header of another version than the tunnel's is refused")
	if _, err := ReadRequest(bytes.NewReader(v1), headerV2); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("v1 request on a v2 tunnel: %v", err)
	}
	if _, err := ReadResponse(bytes.NewReader(AppendResponse(nil, resp, headerV2)), headerV1); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("v2 response on a v1 tunnel: %v", err)
	}
	if _, err := AppendRequest(nil, Request{Service: "api", Port: 8080}, 4); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("version 4 encoded: %v", err)
	}
	t.Log("version 3 is version 2's layout under its own version byte")
	v3, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID}, headerV3)
	if err != nil || !bytes.Equal(v3[1:], want[1:]) || v3[0] != headerV3 {
		t.Fatalf("v3 encoding % x, %v", v3, err)
	}
	if r, err := ReadRequest(bytes.NewReader(v3), headerV3); err != nil || r != (Request{Service: "api", Port: 8080, ConnID: testConnID}) {
		t.Fatalf("v3: %+v %v", r, err)
	}
	if _, err := ReadRequest(bytes.NewReader(v3), headerV2); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("v3 request on a v2 tunnel: %v", err)
	}
}

func TestHeaderErrors(t *testing.T) {
	good, _ := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID}, headerV2)
	cases := []struct {
		name string
		v    int
		b    []byte
		want string
	}{
		{"empty", headerV2, nil, "EOF"},
		{"tls record", headerV2, append([]byte{0x16}, good[1:]...), "version 22"},
		{"short", headerV2, good[:4], "unexpected EOF"},
		{"no conn id", headerV2, good[:7], "unexpected EOF"},
		{"bad name", headerV1, []byte{1, 3, 'A', '/', 'x', 0, 1}, "bad name"},
		{"empty name", headerV1, []byte{1, 0, 0, 1}, "bad name"},
		{"port zero", headerV1, []byte{1, 3, 'a', 'p', 'i', 0, 0}, "port 0"},
	}
	for _, c := range cases {
		_, err := ReadRequest(bytes.NewReader(c.b), c.v)
		if !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := AppendRequest(nil, Request{Service: "api", Port: 70000, ConnID: testConnID}, headerV2); err == nil {
		t.Error("port 70000 encoded")
	}
	if _, err := AppendRequest(nil, Request{Service: "api", Port: 80, ConnID: "abc"}, headerV2); err == nil {
		t.Error("a short connection id encoded")
	}
	if _, err := ReadResponse(bytes.NewReader([]byte{2, 9, 0, 0, 0}), headerV2); err == nil {
		t.Error("status 9 accepted")
	}
}

func FuzzReadRequest(f *testing.F) {
	good, _ := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: testConnID}, headerV2)
	f.Add(good)
	f.Add([]byte{1, 1, 'a', 0, 1})
	f.Add([]byte{0x16, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []int{headerV1, headerV2} {
			r, err := ReadRequest(bytes.NewReader(data), v)
			if err != nil {
				continue
			}
			b, err := AppendRequest(nil, r, v)
			if err != nil {
				t.Fatalf("decoded version %d request %+v does not encode: %v", v, r, err)
			}
			if !bytes.HasPrefix(data, b) {
				t.Fatalf("round trip: % x is not a prefix of % x", b, data)
			}
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	f.Add(AppendResponse(nil, Response{Status: StatusAllow, Rule: "web-to-api"}, headerV2))
	f.Add(AppendResponse(nil, Response{Status: StatusDeny, Code: "policy_denied", Rule: "default-deny", Reason: "no"}, headerV2))
	f.Add([]byte{1, 2, 1, 'r', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []int{headerV1, headerV2} {
			r, err := ReadResponse(bytes.NewReader(data), v)
			if err != nil {
				continue
			}
			if b := AppendResponse(nil, r, v); !bytes.HasPrefix(data, b) {
				t.Fatalf("round trip: % x is not a prefix of % x", b, data)
			}
		}
	})
}

// TestResponseFromALyingDestination: the destination is another node, and
// one taken over answers what it likes. A code outside the fixed set is
// dropped, so the source's record says what the status tells; the words
// for a human come out printable.
func TestResponseFromALyingDestination(t *testing.T) {
	resp := Response{Status: StatusError, Code: "all_good\x1b[2J", Rule: "r\x1b]0;x\x07", Reason: "fine\x1b[31m\nnext line"}
	got, err := ReadResponse(bytes.NewReader(AppendResponse(nil, resp, headerV2)), headerV2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != "" || responseCode(got) != flow.ReasonUnavailable {
		t.Errorf("code %q recorded as %q, want it dropped and %q", got.Code, responseCode(got), flow.ReasonUnavailable)
	}
	if strings.ContainsAny(got.Rule+got.Reason, "\x1b\x07\n") {
		t.Errorf("rule %q, reason %q: control bytes kept", got.Rule, got.Reason)
	}
	resp.Status = StatusDeny
	got, err = ReadResponse(bytes.NewReader(AppendResponse(nil, resp, headerV2)), headerV2)
	if err != nil || responseCode(got) != flow.ReasonPolicyDenied {
		t.Errorf("a deny with an unknown code recorded as %q (%v), want %q", responseCode(got), err, flow.ReasonPolicyDenied)
	}
	resp.Code = flow.ReasonRevoked
	got, err = ReadResponse(bytes.NewReader(AppendResponse(nil, resp, headerV2)), headerV2)
	if err != nil || responseCode(got) != flow.ReasonRevoked {
		t.Errorf("a known code recorded as %q (%v), want %q", responseCode(got), err, flow.ReasonRevoked)
	}
}
