package policy

import (
	"strings"
	"testing"
)

const egressGood = `default: deny
rules:
  - name: api-to-db
    from: [api]
    to: db
    ports: [5432]
egress:
  - name: payments
    from: [api]
    to: api.stripe.com
    ports: [443]
  - name: uploads
    from: [media, api]
    to: "*.s3.amazonaws.com"
    ports: [443]
  - name: partner
    from: [billing]
    to: 203.0.113.0/24
    ports: [8443, 443]
  - name: one-host
    from: [billing]
    to: 2001:db8::7
    ports: [443]
`

func TestDecideEgress(t *testing.T) {
	tb, err := Parse([]byte(egressGood))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		src, host string
		port      int
		rule      string
	}{
		{"api", "api.stripe.com", 443, "payments"},
		{"api", "api.stripe.com", 80, DefaultDeny},       // port not listed
		{"db", "api.stripe.com", 443, DefaultDeny},       // source not listed
		{"", "api.stripe.com", 443, DefaultDeny},         // no identity
		{"api", "evil.api.stripe.com", 443, DefaultDeny}, // an exact name is not a wildcard
		{"api", "api.stripe.com.evil.io", 443, DefaultDeny},
		{"media", "bucket.s3.amazonaws.com", 443, "uploads"},
		{"media", "my.bucket.s3.amazonaws.com", 443, "uploads"}, // any depth
		{"media", "s3.amazonaws.com", 443, DefaultDeny},         // not the domain itself
		{"media", "evils3.amazonaws.com", 443, DefaultDeny},
		{"billing", "203.0.113.9", 8443, "partner"},
		{"billing", "203.0.114.9", 8443, DefaultDeny},
		{"billing", "2001:db8::7", 443, "one-host"},
		{"api", "203.0.113.9", 443, DefaultDeny}, // an address matches network rules only
	}
	for _, c := range cases {
		d := tb.DecideEgress(c.src, c.host, c.port)
		if d.Rule != c.rule || d.Allow != (c.rule != DefaultDeny) {
			t.Errorf("%s → %s:%d: got %+v, want rule %q", c.src, c.host, c.port, d, c.rule)
		}
	}
	if r, ok := tb.EgressFrom("media"); !ok || r != "uploads" {
		t.Errorf("EgressFrom(media) = %q %v", r, ok)
	}
	if _, ok := tb.EgressFrom("db"); ok {
		t.Error("db has no egress rule")
	}
	var nilT *Table
	if d := nilT.DecideEgress("api", "api.stripe.com", 443); d.Allow {
		t.Error("a nil table allowed egress")
	}
}

func TestEgressNormalForms(t *testing.T) {
	src := strings.Replace(egressGood, "to: api.stripe.com", "to: API.Stripe.com.", 1)
	tb, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.EgressRules()[0].To; got != "api.stripe.com" {
		t.Errorf("name not normalised: %q", got)
	}
	if got := tb.EgressRules()[3].To; got != "2001:db8::7/128" {
		t.Errorf("address not read as a one-address network: %q", got)
	}
	h, err := NormalizeHost("Api.Stripe.COM.")
	if err != nil || h != "api.stripe.com" {
		t.Errorf("NormalizeHost: %q %v", h, err)
	}
	if h, err := NormalizeHost("[::ffff:203.0.113.9]"); err != nil || h != "203.0.113.9" {
		t.Errorf("NormalizeHost mapped: %q %v", h, err)
	}
	for _, bad := range []string{"", "a b.com", "exa_mple.com", "-x.com", "x..com", "ünï.com", "fe80::1%eth0", "ap\u0130.stripe.com", "\u212aey.stripe.com", "api.stripe.com\xff",
		"3405803786", "0xcb00710a", "0313.0.0161.012", "203.0.29194", "127.1", "0x7f.1", "0x", "203.0.113.9."} {
		if _, err := NormalizeHost(bad); err == nil {
			t.Errorf("NormalizeHost(%q) accepted", bad)
		}
	}
}

func TestEgressParseErrors(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"no name", "name: payments", "name: \"\"", `egress[0].name: every egress rule needs a name`},
		{"dup with rule", "name: payments", "name: api-to-db", `egress[0].name: "api-to-db" is already the name of rules[0]`},
		{"dup egress", "name: uploads", "name: payments", `egress[1].name: "payments" is already the name of egress[0]`},
		{"no from", "from: [api]\n    to: api.stripe.com", "from: []\n    to: api.stripe.com", `egress[0].from: name at least one source`},
		{"bad from", "from: [media, api]", "from: [media, Api]", `egress[1].from[1]: bad service name "Api"`},
		{"dup from", "from: [media, api]", "from: [api, api]", `egress[1].from[1]: "api" listed twice`},
		{"no to", "to: api.stripe.com", `to: ""`, `egress[0].to: name the destination`},
		{"single label", "to: api.stripe.com", "to: stripe", `egress[0].to: "stripe": write the fully qualified name`},
		{"inner wildcard", "to: api.stripe.com", `to: "api.*.com"`, `egress[0].to: "api.*.com": a wildcard is allowed only as the whole first label`},
		{"partial wildcard", "to: api.stripe.com", `to: "a*.stripe.com"`, `egress[0].to: "a*.stripe.com": a wildcard is allowed only`},
		{"bad char", "to: api.stripe.com", `to: "api_x.stripe.com"`, `character '_' is not allowed`},
		{"idn", "to: api.stripe.com", `to: "bücher.de"`, `write internationalized names in their ASCII (xn--) form`},
		{"host bits", "to: 203.0.113.0/24", "to: 203.0.113.1/24", `egress[2].to: "203.0.113.1/24" has host bits set; the network is 203.0.113.0/24`},
		{"mapped", "to: 203.0.113.0/24", `to: "::ffff:203.0.113.0/120"`, `IPv4-mapped IPv6 network`},
		{"bad net", "to: 203.0.113.0/24", "to: 203.0.113.0/33", `is neither a host name nor a network in CIDR form`},
		{"no ports", "ports: [8443, 443]", "ports: []", `egress[2].ports: name at least one port`},
		{"port range", "ports: [8443, 443]", "ports: [8443, 0]", `egress[2].ports[1]: port 0 is out of range 1-65535`},
		{"dup port", "ports: [8443, 443]", "ports: [443, 443]", `egress[2].ports[1]: port 443 listed twice`},
		{"unknown key", "    to: 203.0.113.0/24", "    dest: 203.0.113.0/24", `egress[2].dest: unknown key`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(egressGood, c.from, c.to, 1)
			if src == egressGood {
				t.Fatalf("fixture lacks %q", c.from)
			}
			tb, err := Parse([]byte(src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
			if tb != nil {
				t.Fatal("a table came back with an error")
			}
		})
	}
}

func TestEgressWarningsAndDiff(t *testing.T) {
	wide := egressGood + `  - name: anything
    from: ["*"]
    to: "*"
    ports: [443]
  - name: everywhere
    from: [api]
    to: 0.0.0.0/0
    ports: [443]
  - name: tld
    from: [api]
    to: "*.com"
    ports: [443]
`
	tb, err := Parse([]byte(wide))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(tb.Warnings(), "\n")
	for _, want := range []string{"egress[4] (anything): egress to *: every host name", `egress[4] (anything): from "*"`, "egress[5] (everywhere): egress to 0.0.0.0/0: every address", "egress[6] (tld): egress to *.com: every name under the top-level domain .com"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if d := tb.DecideEgress("db", "anything.example", 443); d.Rule != "anything" {
		t.Errorf("* from * to *: %+v", d)
	}
	if d := tb.DecideEgress("db", "198.51.100.1", 443); d.Allow {
		t.Errorf("\"*\" matched an address: %+v", d)
	}
	old, _ := Parse([]byte(egressGood))
	if old.Version() == tb.Version() {
		t.Error("egress rules do not change the version")
	}
	d := Diff(old, tb, nil)
	if len(d.EgressAdded) != 3 || len(d.EgressRemoved) != 0 || !strings.Contains(d.String(), "+ egress anything: [*] → *:[443] (egress)") {
		t.Errorf("diff:\n%s", d)
	}
}
