package gateway

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
)

// Attacks on what the gateway answers: the service's response headers
// and bodies on their way to the client.

// TestServiceCannotOverrideGatewayHeaders: a service (or an attacker who
// makes it echo headers) answering with its own Strict-Transport-Security
// ("max-age=0", which would end the browser's HSTS policy wherever a cache
// or a client reads the last field or joins them) or X-Request-ID (which
// would point a report at another request than the gateway recorded) has
// them dropped: the client gets the gateway's, once, over HTTP/2 and
// HTTP/1.1. With the gateway's HSTS off, the service's own passes.
func TestServiceCannotOverrideGatewayHeaders(t *testing.T) {
	var log servedLog
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		w.Header().Set("Strict-Transport-Security", "max-age=0")
		w.Header().Set("X-Request-ID", "chosen-by-the-service")
		fmt.Fprint(w, "served")
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
	check := func(proto string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", proto, resp.StatusCode)
		}
		if v := resp.Header.Values("Strict-Transport-Security"); !slices.Equal(v, []string{"max-age=31536000"}) {
			t.Errorf("%s: Strict-Transport-Security %q, want the gateway's alone", proto, v)
		}
		ids := resp.Header.Values("X-Request-Id")
		if len(ids) != 1 || len(ids[0]) != 32 {
			t.Errorf("%s: X-Request-ID %q, want the gateway's alone", proto, ids)
		}
		lines := log.all()
		if want := "GET /static/x " + ids[0]; len(lines) == 0 || lines[len(lines)-1] != want {
			t.Errorf("%s: the service served %q, want %q", proto, lines, want)
		}
	}
	r := f.req("GET", "/static/x", nil)
	r.Host = "shop.example.org"
	_, _, resp := f.do(r)
	if resp.ProtoMajor != 2 {
		t.Fatalf("negotiated %s, want HTTP/2", resp.Proto)
	}
	check("HTTP/2", resp)

	c, br := f.rawConn()
	io.WriteString(c, "GET /static/x HTTP/1.1\r\nHost: shop.example.org\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	check("HTTP/1.1", resp)

	t.Log("with the gateway's HSTS off, the service's is the only one and passes")
	f.write(pathYAML + "hsts:\n  disabled: true\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	r = f.req("GET", "/static/x", nil)
	r.Host = "shop.example.org"
	if _, _, resp = f.do(r); !slices.Equal(resp.Header.Values("Strict-Transport-Security"), []string{"max-age=0"}) {
		t.Errorf("HSTS off: Strict-Transport-Security %q, want the service's", resp.Header.Values("Strict-Transport-Security"))
	}
}
