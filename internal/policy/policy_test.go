package policy

import (
	"strings"
	"testing"
)

const good = `default: deny
services:
  legacy:
    mode: permissive
rules:
  - name: web-to-api
    from: [gateway, frontend]
    to: api
    ports: [8080]
  - name: api-to-db
    from: [api]
    to: db
    ports: [5432]
    mode: audit
  - name: metrics
    from: ["*"]
    to: prom
    ports: [9090]
`

func mustParse(t *testing.T, src string) *Table {
	t.Helper()
	tb, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestDecide(t *testing.T) {
	tb := mustParse(t, good)
	cases := []struct {
		src, dst string
		port     int
		want     Decision
	}{
		{"frontend", "api", 8080, Decision{Allow: true, Rule: "web-to-api"}},
		{"gateway", "api", 8080, Decision{Allow: true, Rule: "web-to-api"}},
		{"frontend", "api", 8081, Decision{Rule: DefaultDeny}},
		{"db", "api", 8080, Decision{Rule: DefaultDeny}},
		{"api", "db", 5432, Decision{Allow: true, Rule: "api-to-db"}},
		{"frontend", "db", 5432, Decision{Allow: true, Audit: true, Rule: DefaultDeny}},
		{"anything", "prom", 9090, Decision{Allow: true, Rule: "metrics"}},
		{"", "prom", 9090, Decision{Rule: DefaultDeny}},
		{"", "api", 8080, Decision{Rule: DefaultDeny}},
		{"frontend", "frontend", 8080, Decision{Rule: DefaultDeny}},
	}
	for _, c := range cases {
		if got := tb.Decide(c.src, c.dst, c.port); got != c.want {
			t.Errorf("Decide(%q, %q, %d) = %+v, want %+v", c.src, c.dst, c.port, got, c.want)
		}
	}
	var nilTable *Table
	if got := nilTable.Decide("a", "b", 1); got.Allow || got.Rule != DefaultDeny {
		t.Errorf("nil table: %+v", got)
	}
	if tb.PeerMode("legacy") != Permissive || tb.PeerMode("api") != Strict || nilTable.PeerMode("x") != Strict {
		t.Error("peer modes wrong")
	}
	w := strings.Join(tb.Warnings(), "\n")
	if !strings.Contains(w, `from "*" lets every service reach prom`) || !strings.Contains(w, "services.legacy: permissive") {
		t.Errorf("warnings: %s", w)
	}
}

func TestGlobalAudit(t *testing.T) {
	tb := mustParse(t, "mode: audit\n"+strings.TrimPrefix(good, "default: deny\n"))
	if got := tb.Decide("x", "api", 1); got != (Decision{Allow: true, Audit: true, Rule: DefaultDeny}) {
		t.Fatalf("got %+v", got)
	}
	if got := tb.Decide("frontend", "api", 8080); got != (Decision{Allow: true, Rule: "web-to-api"}) {
		t.Fatalf("got %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"default allow", "default: deny", "default: allow", `default: "allow" is not accepted: the only default is "deny"`},
		{"bad mode", "default: deny", "default: deny\nmode: lax", `mode: want "enforce" or "audit", got "lax"`},
		{"unknown key", "    to: api", "    too: api", `rules[0].too: unknown key (did you mean "to"?)`},
		{"no name", "  - name: web-to-api\n    from", "  - from", `rules[0].name: every rule needs a name`},
		{"dup name", "name: api-to-db", "name: web-to-api", `rules[1].name: "web-to-api" is already the name of rules[0]`},
		{"reserved name", "name: api-to-db", "name: default-deny", `rules[1].name: bad rule name "default-deny"`},
		{"no to", "    to: api\n", "", `rules[0].to: name the destination service`},
		{"wild to", "to: api", `to: "*"`, `rules[0].to: a wildcard destination is not allowed`},
		{"bad src", "from: [api]", "from: [a/b]", `rules[1].from[0]: bad source "a/b"`},
		{"bad admin src", "from: [api]", "from: [admin/A]", `rules[1].from[0]: bad source "admin/A"`},
		{"dup src", "from: [api]", "from: [api, api]", `rules[1].from[1]: "api" listed twice`},
		{"empty from", "from: [api]", "from: []", `rules[1].from: name at least one source`},
		{"no ports", "ports: [8080]", "ports: []", `rules[0].ports: name at least one port`},
		{"port range", "ports: [8080]", "ports: [8080, 70000]", `rules[0].ports[1]: port 70000 is out of range`},
		{"port zero", "ports: [8080]", "ports: [0]", `rules[0].ports[0]: port 0 is out of range`},
		{"dup port", "ports: [8080]", "ports: [8080, 8080]", `rules[0].ports[1]: port 8080 listed twice`},
		{"port type", "ports: [8080]", "ports: [http]", `rules[0].ports[0]: want a whole number, got "http"`},
		{"rule mode", "mode: audit", "mode: loud", `rules[1].mode: want "enforce" or "audit", got "loud"`},
		{"peer mode", "mode: permissive", "mode: open", `services.legacy.mode: want "strict" or "permissive", got "open"`},
		{"bad svc", "  legacy:", "  \"le gacy\":", `services.le gacy: bad service name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(good, c.from, c.to, 1)
			if src == good {
				t.Fatalf("fixture lacks %q", c.from)
			}
			tb, err := Parse([]byte(src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
			if tb != nil {
				t.Fatal("a table came back with an error")
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("error lacks package prefix: %v", err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	a := mustParse(t, good)
	b := mustParse(t, "# a comment\n"+good)
	if a.Version() != b.Version() || len(a.Version()) != 64 {
		t.Fatalf("versions %q %q", a.Version(), b.Version())
	}
	c := mustParse(t, strings.Replace(good, "8080", "8081", 1))
	if c.Version() == a.Version() {
		t.Fatal("different policies share a version")
	}
	n, err := New(Enforce, map[string]PeerMode{"legacy": Permissive}, a.Rules())
	if err != nil {
		t.Fatal(err)
	}
	if n.Version() != a.Version() {
		t.Fatal("New and Parse of the same rules differ")
	}
}

func TestDiff(t *testing.T) {
	old := mustParse(t, good)
	newSrc := strings.Replace(good, "from: [gateway, frontend]", "from: [gateway]", 1)
	newSrc = strings.Replace(newSrc, "  - name: metrics\n    from: [\"*\"]\n    to: prom\n    ports: [9090]\n", "  - name: cache\n    from: [api]\n    to: redis\n    ports: [6379]\n", 1)
	newSrc = strings.Replace(newSrc, "mode: permissive", "mode: strict", 1)
	nt := mustParse(t, newSrc)
	recent := []Edge{{"frontend", "api", 8080}, {"gateway", "api", 8080}, {"x", "prom", 9090}, {"api", "redis", 6379}, {"frontend", "api", 8080}}
	d := Diff(old, nt, recent)
	if len(d.Added) != 1 || d.Added[0].Name != "cache" || len(d.Removed) != 1 || d.Removed[0].Name != "metrics" ||
		len(d.Changed) != 1 || d.Changed[0].New.Name != "web-to-api" {
		t.Fatalf("rules delta %+v", d)
	}
	if len(d.NowDenied) != 2 || d.NowDenied[0].Edge != (Edge{"frontend", "api", 8080}) || d.NowDenied[1].Edge != (Edge{"x", "prom", 9090}) {
		t.Fatalf("now denied %+v", d.NowDenied)
	}
	if len(d.NowAllowed) != 1 || d.NowAllowed[0].New.Rule != "cache" {
		t.Fatalf("now allowed %+v", d.NowAllowed)
	}
	if len(d.PeerModes) != 1 || d.PeerModes[0] != "legacy: permissive → strict" {
		t.Fatalf("peer modes %v", d.PeerModes)
	}
	s := d.String()
	for _, want := range []string{"+ rule cache", "- rule metrics", "~ rule web-to-api", "recent flow frontend → api:8080 would now be DENIED (was allow by web-to-api)"} {
		if !strings.Contains(s, want) {
			t.Errorf("diff text lacks %q:\n%s", want, s)
		}
	}
	if !Diff(old, old, recent).Empty() {
		t.Error("diff of a policy with itself is not empty")
	}
	fromNothing := Diff(nil, old, recent)
	if len(fromNothing.Added) != 3 || len(fromNothing.NowDenied) != 0 {
		t.Fatalf("from nothing: %+v", fromNothing)
	}
}

func TestExplain(t *testing.T) {
	tb := mustParse(t, good)
	cases := []struct {
		src, dst string
		port     int
		want     []string
	}{
		{"frontend", "api", 8080, []string{"ALLOW (rule web-to-api)", `rule "web-to-api" allows frontend to reach api on port 8080`}},
		{"frontend", "api", 9000, []string{"DENY (rule default-deny)", `rule "web-to-api" lets frontend reach api, but only on ports [8080]`, "default (deny) decides"}},
		{"db", "api", 8080, []string{`covers api but only from [gateway frontend]`}},
		{"x", "nowhere", 1, []string{"no rule names nowhere as a destination"}},
		{"frontend", "db", 5432, []string{"AUDIT (rule default-deny)", `db is in audit mode (rule "api-to-db")`}},
		{"x", "prom", 9090, []string{`"*" (any authenticated service)`}},
	}
	for _, c := range cases {
		got := tb.Explain(c.src, c.dst, c.port)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("Explain(%s,%s,%d) lacks %q:\n%s", c.src, c.dst, c.port, w, got)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("rules: [{name: a, from: ['*'], to: b, ports: [1]}]"))
	f.Add([]byte("mode: audit\nservices: {a: {mode: permissive}}"))
	f.Add([]byte("egress: [{name: e, from: [a], to: '*.example.com', ports: [443]}, {name: n, from: ['*'], to: 203.0.113.0/24, ports: [1]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := Parse(data)
		if err != nil {
			if tb != nil {
				t.Fatal("table with error")
			}
			return
		}
		// A parsed table must compile again from its own rules to the same
		// version, and every rule must allow what it names.
		services := map[string]PeerMode{}
		for s, m := range tb.services {
			services[s] = m
		}
		again, err := New(tb.Mode(), services, tb.Rules(), tb.EgressRules()...)
		if err != nil {
			t.Fatalf("rules of a valid table do not compile: %v", err)
		}
		if again.Version() != tb.Version() {
			t.Fatal("version changed on recompile")
		}
		for _, r := range tb.Rules() {
			for _, s := range r.From {
				src := s
				if s == Wildcard {
					src = "some-service"
				}
				if d := tb.Decide(src, r.To, r.Ports[0]); !d.Allow || d.Audit {
					t.Fatalf("rule %s does not allow %s: %+v", r.Name, src, d)
				}
			}
		}
		for _, r := range tb.EgressRules() {
			src := r.From[0]
			if src == Wildcard {
				src = "some-service"
			}
			host := strings.Replace(r.To, "*", "x", 1)
			if p, ok := r.Network(); ok {
				host = p.Addr().String()
			} else if r.To == AnyHost {
				host = "any.example"
			}
			if d := tb.DecideEgress(src, host, r.Ports[0]); !d.Allow {
				t.Fatalf("egress rule %s does not allow %s → %s: %+v", r.Name, src, host, d)
			}
		}
		_ = tb.Explain("a", "b", 1)
	})
}

func TestNilTable(t *testing.T) {
	var tb *Table
	if got := tb.Explain("a", "b", 1); !strings.Contains(got, "DENY (rule default-deny)") || !strings.Contains(got, "no rule names b") {
		t.Fatalf("explain on nil: %s", got)
	}
	if !Diff(nil, nil, []Edge{{"a", "b", 1}}).Empty() {
		t.Fatal("diff of nothing with nothing")
	}
	if tb.Version() != "" || tb.Rules() != nil || tb.Warnings() != nil || tb.Mode() != Enforce {
		t.Fatal("nil table accessors")
	}
}
