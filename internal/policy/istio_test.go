package policy

import (
	"strings"
	"testing"
)

const goodIstio = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: web-to-api
  namespace: default
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["example.org/svc/frontend", "spiffe://example.org/svc/gateway"]
    to:
    - operation:
        ports: ["8080"]
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: legacy
spec:
  selector:
    matchLabels:
      app: legacy
  mtls:
    mode: PERMISSIVE
`

func TestParseIstio(t *testing.T) {
	tb, err := ParseIstio([]byte(goodIstio), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if d := tb.Decide("frontend", "api", 8080); !d.Allow || d.Rule != "web-to-api" {
		t.Fatalf("frontend: %+v", d)
	}
	if d := tb.Decide("gateway", "api", 8080); !d.Allow {
		t.Fatalf("gateway: %+v", d)
	}
	if d := tb.Decide("db", "api", 8080); d.Allow {
		t.Fatalf("db: %+v", d)
	}
	if tb.PeerMode("legacy") != Permissive {
		t.Fatal("legacy not permissive")
	}
	native := mustParse(t, `services: {legacy: {mode: permissive}}
rules:
  - {name: web-to-api, from: [frontend, gateway], to: api, ports: [8080]}
`)
	if native.Version() != tb.Version() {
		t.Fatal("Istio and native forms of one policy differ in version")
	}
}

func TestParseIstioErrors(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"deny action", "action: ALLOW", "action: DENY", `spec.action: only ALLOW is supported`},
		{"l7 field", `        ports: ["8080"]`, `        ports: ["8080"]` + "\n        methods: [GET]", `unknown key`},
		{"no selector", "  selector:\n    matchLabels:\n      app: api\n  action", "  action", `spec.selector.matchLabels.app: name the destination service`},
		{"foreign principal", `"example.org/svc/frontend"`, `"other.org/svc/frontend"`, `principal "other.org/svc/frontend" is not in trust domain "example.org"`},
		{"istio sa principal", `"example.org/svc/frontend"`, `"cluster.local/ns/default/sa/frontend"`, `want "<trust-domain>/svc/<name>"`},
		{"bad port", `ports: ["8080"]`, `ports: ["http"]`, `spec.rules[0].to[0].operation.ports[0]: want a port number, got "http"`},
		{"disable", "mode: PERMISSIVE", "mode: DISABLE", `spec.mtls.mode: want STRICT or PERMISSIVE`},
		{"kind", "kind: PeerAuthentication", "kind: Sidecar", `document 1 (line 18): kind: want AuthorizationPolicy or PeerAuthentication`},
		{"api version", "apiVersion: security.istio.io/v1\n", "apiVersion: networking.istio.io/v1\n", `apiVersion: want security.istio.io/v1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(goodIstio, c.from, c.to, 1)
			if src == goodIstio {
				t.Fatalf("fixture lacks %q", c.from)
			}
			tb, err := ParseIstio([]byte(src), "example.org")
			if err == nil || !strings.Contains(err.Error(), c.want) || tb != nil {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
}

func FuzzParseIstio(f *testing.F) {
	f.Add([]byte(goodIstio))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := ParseIstio(data, "example.org")
		if err != nil {
			if tb != nil {
				t.Fatal("table with error")
			}
			return
		}
		for _, r := range tb.Rules() {
			if r.To == Wildcard || len(r.Ports) == 0 {
				t.Fatalf("rule %+v", r)
			}
		}
	})
}

func TestParseDocumentPicksTheFormat(t *testing.T) {
	moat := []byte("default: deny\nrules:\n  - name: a\n    from: [web]\n    to: api\n    ports: [80]\n")
	istio := []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: api-allow
spec:
  selector:
    matchLabels:
      app: api
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["example.org/svc/web"]
    to:
    - operation:
        ports: ["80"]
`)
	for name, doc := range map[string][]byte{"moat": moat, "istio": istio} {
		tab, err := ParseDocument(doc, "example.org")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := tab.Decide("web", "api", 80); !d.Allow {
			t.Errorf("%s: web → api:80 denied", name)
		}
		if d := tab.Decide("other", "api", 80); d.Allow {
			t.Errorf("%s: other → api:80 allowed", name)
		}
	}
}
