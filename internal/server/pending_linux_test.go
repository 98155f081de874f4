package server

import (
	"fmt"
	"net"
	"net/http"
	"testing"

	"moat/internal/api"
	"moat/internal/testkit"
)

// TestAPIBoundsPendingConnections: anyone who reaches the API's port (the
// bundle and joins need no certificate) could open connections and send
// nothing, each held for the handshake and the first request's header
// (10s): a flood from one address held a descriptor per connection until
// the server had none left. The server now holds at most 256 such
// connections per source and closes the rest at once, so under a
// descriptor limit that the flood would otherwise exhaust it keeps
// answering other clients.
func TestAPIBoundsPendingConnections(t *testing.T) {
	f := newAuthFixture(t)
	const flood = maxAPIPendingPerSource + 64
	// Room for the flood's own ends, the pending connections one source
	// may hold, and a call; not for the whole flood at the server.
	testkit.LimitOpenFiles(t, flood+maxAPIPendingPerSource+32)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: testkit.WaitLimit}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := d.Dial("tcp", f.srv.Addr())
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	testkit.WaitFor(t, "connections past the bound closed", func() bool { return f.srv.shedCount.Load() > 0 })
	t.Log("during the flood, another client is answered")
	if code, e := f.call(t, nil, http.MethodGet, api.PathBundle, nil, nil); code != http.StatusOK {
		t.Fatalf("bundle during the flood: %d %+v", code, e)
	}
	t.Logf("closed at once: %d", f.srv.shedCount.Load())

	t.Log("once the flood ends, its places are given back, and every connection that begins a request gives its own back")
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	get := func(tr *http.Transport) error {
		resp, err := (&http.Client{Transport: tr, Timeout: testkit.WaitLimit}).Get("https://" + f.srv.Addr() + api.PathBundle)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	for _, h2 := range []bool{true, false} {
		from := func() *http.Transport {
			tr := f.transport(nil)
			tr.DialContext = d.DialContext
			if !h2 {
				tr.ForceAttemptHTTP2 = false
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			return tr
		}
		testkit.WaitFor(t, "a call from the flood's address", func() bool {
			tr := from()
			defer tr.CloseIdleConnections()
			return get(tr) == nil
		})
		for i := range maxAPIPendingPerSource + 16 {
			tr := from()
			err := get(tr)
			tr.CloseIdleConnections()
			if err != nil {
				t.Fatalf("call %d from one address, one connection each (HTTP/2 %v): %v", i, h2, err)
			}
		}
	}
}
