package api

import (
	"strings"
	"testing"
)

var goodHello = RelayHello{Session: "0123456789abcdef01234567", Grant: "1f2e3d", Admin: "spiffe://example.org/admin/alice",
	Remote: "127.0.0.1:5555", ALPN: ALPNAccessSSH}

// TestRelayHello: a hello round-trips; one the relay could be fooled by
// is refused with the field named.
func TestRelayHello(t *testing.T) {
	b, err := goodHello.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRelayHello(append(b, '\n'))
	if err != nil || got != goodHello {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown field", `{"session":"0123456789abcdef01234567","grant":"1f","admin":"spiffe://example.org/admin/a","alpn":"moat-access-ssh/1","x":1}`, "unknown field"},
		{"short session", `{"session":"0123","grant":"1f","admin":"spiffe://example.org/admin/a","alpn":"moat-access-ssh/1"}`, "session"},
		{"bad grant", `{"session":"0123456789abcdef01234567","grant":"0f","admin":"spiffe://example.org/admin/a","alpn":"moat-access-ssh/1"}`, "grant ID"},
		{"a service, not an admin", `{"session":"0123456789abcdef01234567","grant":"1f","admin":"spiffe://example.org/svc/a","alpn":"moat-access-ssh/1"}`, "not an administrator"},
		{"another protocol", `{"session":"0123456789abcdef01234567","grant":"1f","admin":"spiffe://example.org/admin/a","alpn":"h2"}`, "protocol"},
		{"a remote with a newline", `{"session":"0123456789abcdef01234567","grant":"1f","admin":"spiffe://example.org/admin/a","alpn":"moat-access-ssh/1","remote":"a\nb"}`, "remote"},
		{"two values", `{"session":"0123456789abcdef01234567","grant":"1f","admin":"spiffe://example.org/admin/a","alpn":"moat-access-ssh/1"} {}`, "trailing"},
		{"oversized", `{"remote":"` + strings.Repeat("a", MaxRelayHello) + `"}`, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRelayHello([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// FuzzParseRelayHello: whatever a relayed stream or a peer's header
// carries, parsing never panics, and what is accepted encodes back to a
// hello that parses to the same value.
func FuzzParseRelayHello(f *testing.F) {
	b, _ := goodHello.Encode()
	f.Add(b)
	f.Add([]byte(`{"session":"0123456789abcdef01234567","grant":"ffffffffffffffffffffffffffffffff","admin":"spiffe://x/admin/b","alpn":"moat-access-forward/1"}`))
	f.Add([]byte(`{"session":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseRelayHello(in)
		if err != nil {
			return
		}
		out, err := h.Encode()
		if err != nil {
			t.Fatalf("accepted %q, but it does not encode: %v", in, err)
		}
		again, err := ParseRelayHello(out)
		if err != nil || again != h {
			t.Fatalf("%q: round trip gave %+v, %v", in, again, err)
		}
	})
}
