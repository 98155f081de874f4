package policy

import (
	"net/netip"
	"strings"
	"testing"
)

const plainDoc = `default: deny
services:
  legacy: {mode: permissive}
rules:
  - name: web-to-legacy
    from: [web]
    to: legacy
    ports: [9000]
  - name: office
    from_plaintext: [10.20.0.0/16, "fd00::/8"]
    to: legacy
    ports: [9000]
`

func TestPlaintextSources(t *testing.T) {
	p, err := Parse([]byte(plainDoc))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr  string
		allow bool
	}{
		{"10.20.3.4", true}, {"::ffff:10.20.3.4", true}, {"fd00::1", true}, {"10.21.0.1", false}, {"127.0.0.1", false},
	} {
		if d := p.DecidePlaintext(netip.MustParseAddr(c.addr), "legacy", 9000); d.Allow != c.allow {
			t.Errorf("%s: %+v", c.addr, d)
		}
	}
	t.Log("a service name, even \"*\", never admits plaintext; a CIDR rule never admits a service")
	if d := p.Decide("", "legacy", 9000); d.Allow {
		t.Errorf("no identity allowed: %+v", d)
	}
	if d := p.DecideSource("10.20.0.9", "legacy", 9000); !d.Allow || d.Rule != "office" {
		t.Errorf("DecideSource by address: %+v", d)
	}
	strict := strings.Replace(plainDoc, "legacy: {mode: permissive}", "legacy: {mode: strict}", 1)
	ps, err := Parse([]byte(strict))
	if err != nil {
		t.Fatal(err)
	}
	if d := ps.DecideSource("10.20.0.9", "legacy", 9000); d.Allow {
		t.Errorf("a strict destination admitted plaintext: %+v", d)
	}
	if w := strings.Join(ps.Warnings(), "\n"); !strings.Contains(w, "from_plaintext has no effect while legacy is not permissive") {
		t.Errorf("warnings: %s", w)
	}
	ex := p.Explain("10.20.0.9", "legacy", 9000)
	if !strings.Contains(ex, "plaintext 10.20.0.9 → legacy:9000: ALLOW (rule office)") {
		t.Errorf("explain plaintext:\n%s", ex)
	}
	ex = p.Explain("web", "legacy", 9000)
	if !strings.Contains(ex, `plaintext: legacy is permissive; rule "office" admits plaintext callers from 10.20.0.0/16, fd00::/8 on port 9000`) {
		t.Errorf("explain shows no plaintext reachability:\n%s", ex)
	}
}

func TestPlaintextSourceErrors(t *testing.T) {
	for _, c := range []struct{ from, want string }{
		{`[10.20.0.1/16]`, "has host bits set"},
		{`[nowhere]`, "want a network in CIDR form"},
		{`[any, 10.0.0.0/8]`, "list nothing beside it"},
		{`["::ffff:10.0.0.0/104"]`, "IPv4-mapped"},
		{`[10.0.0.0/8, 10.0.0.0/8]`, "listed twice"},
	} {
		doc := "rules:\n  - name: r\n    from_plaintext: " + c.from + "\n    to: legacy\n    ports: [1]\n"
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.from, err, c.want)
		}
	}
	if _, err := Parse([]byte("rules:\n  - name: r\n    to: legacy\n    ports: [1]\n")); err == nil {
		t.Error("a rule with no source at all parsed")
	}
}
