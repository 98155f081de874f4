package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"moat/internal/config"
)

// Egress rules say which services may reach which hosts outside the mesh,
// on which ports; everything else is denied (there is no other default):
//
//	egress:
//	  - name: payments
//	    from: [api]
//	    to: api.stripe.com          # one name
//	    ports: [443]
//	  - name: uploads
//	    from: [media]
//	    to: "*.s3.amazonaws.com"    # any name below s3.amazonaws.com (not the name itself)
//	    ports: [443]
//	  - name: partner
//	    from: [billing]
//	    to: 203.0.113.0/24          # addresses, for hosts without a name
//	    ports: [8443]
//
// A name rule is matched on the name the service asked for; the egress
// point resolves it itself and connects only to what it resolved, so a
// service cannot pair an allowed name with an address of its choosing. A
// network rule is matched on an address the service asked for; a name is
// never matched by a network rule. "*" (any name) and 0.0.0.0/0 are legal
// and warned about, as moat check reports them.

// AnyHost, as an egress rule's to, is every name.
const AnyHost = "*"

// EgressRule is one validated egress rule.
type EgressRule struct {
	Name  string   `json:"name"`
	From  []string `json:"from"`
	To    string   `json:"to"`
	Ports []int    `json:"ports"`
}

// Network returns the rule's network and true when To is one.
func (r EgressRule) Network() (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(r.To)
	return p, err == nil
}

func (r EgressRule) String() string {
	ports := make([]string, len(r.Ports))
	for i, p := range r.Ports {
		ports[i] = fmt.Sprint(p)
	}
	return fmt.Sprintf("%s: [%s] → %s:[%s] (egress)", r.Name, strings.Join(r.From, ", "), r.To, strings.Join(ports, ", "))
}

type rawEgress struct {
	Name  string   `yaml:"name"`
	From  []string `yaml:"from"`
	To    string   `yaml:"to"`
	Ports []int    `yaml:"ports"`
}

// EgressDecision answers one request to leave the mesh.
type EgressDecision struct {
	Allow bool
	// Rule names the egress rule that allowed it, or DefaultDeny.
	Rule string
	// Network is the network of the network rule that allowed an
	// address; not valid for a name.
	Network netip.Prefix
}

// compileEgress validates the egress rules into t. names holds the
// intention rules' names, which egress rules may not reuse.
func (t *Table) compileEgress(rs []rawEgress, names map[string]int) error {
	for i, rr := range rs {
		p := config.Index("egress", i)
		r, err := validateEgress(p, rr)
		if err != nil {
			return err
		}
		if j, dup := names[r.Name]; dup {
			return config.Errorf(config.Join(p, "name"), "%q is already the name of rules[%d]", r.Name, j)
		}
		for j, o := range t.egress {
			if o.Name == r.Name {
				return config.Errorf(config.Join(p, "name"), "%q is already the name of egress[%d]", r.Name, j)
			}
		}
		if wide := egressWidth(r.To); wide != "" {
			t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): egress to %s: %s", p, r.Name, r.To, wide))
		}
		for _, s := range r.From {
			if s == Wildcard {
				t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): from \"*\" lets every service reach %s", p, r.Name, r.To))
			}
		}
		t.egress = append(t.egress, r)
	}
	return nil
}

// EgressWidth says why an egress destination is wider than a rule should
// need ("" when it is not): every name, every address, or every name of a
// whole top-level domain.
func EgressWidth(to string) string { return egressWidth(to) }

func egressWidth(to string) string {
	if to == AnyHost {
		return "every host name on the internet"
	}
	if p, err := netip.ParsePrefix(to); err == nil {
		switch {
		case p.Bits() == 0:
			return "every address"
		case p.Addr().Is4() && p.Bits() < 8, p.Addr().Is6() && p.Bits() < 16:
			return fmt.Sprintf("a /%d network", p.Bits())
		}
		return ""
	}
	if rest, ok := strings.CutPrefix(to, "*."); ok && !strings.Contains(rest, ".") {
		return fmt.Sprintf("every name under the top-level domain .%s", rest)
	}
	return ""
}

func validateEgress(p string, rr rawEgress) (EgressRule, error) {
	r := EgressRule{Name: rr.Name}
	if rr.Name == "" {
		return r, config.Errorf(config.Join(p, "name"), "every egress rule needs a name")
	}
	if !ruleNameRE().MatchString(rr.Name) || rr.Name == DefaultDeny {
		return r, config.Errorf(config.Join(p, "name"), "bad rule name %q", rr.Name)
	}
	if len(rr.From) == 0 {
		return r, config.Errorf(config.Join(p, "from"), "name at least one source service (or \"*\" for any)")
	}
	seen := map[string]bool{}
	for j, s := range rr.From {
		fp := config.Index(config.Join(p, "from"), j)
		if s != Wildcard && !validService(s) {
			return r, config.Errorf(fp, "bad service name %q", s)
		}
		if seen[s] {
			return r, config.Errorf(fp, "%q listed twice", s)
		}
		seen[s] = true
		r.From = append(r.From, s)
	}
	to, err := normalizeEgressTo(rr.To)
	if err != nil {
		return r, config.Errorf(config.Join(p, "to"), "%v", err)
	}
	r.To = to
	r.Ports, err = validatePorts(p, rr.Ports)
	return r, err
}

// normalizeEgressTo checks a destination: "*", a DNS name (lower-cased,
// without a trailing dot), "*." and a name, a CIDR network, or an address
// (read as a one-address network).
func normalizeEgressTo(s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("name the destination: a host name, \"*.\" and a domain, or a network in CIDR form")
	case s == AnyHost:
		return s, nil
	}
	if strings.ContainsAny(s, "/:") || isDigitsAndDots(s) {
		if a, err := netip.ParseAddr(s); err == nil {
			if a.Is4In6() {
				return "", fmt.Errorf("%q is an IPv4-mapped IPv6 address; write the IPv4 address", s)
			}
			return netip.PrefixFrom(a, a.BitLen()).String(), nil
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("%q is neither a host name nor a network in CIDR form", s)
		}
		if pfx != pfx.Masked() {
			return "", fmt.Errorf("%q has host bits set; the network is %s", s, pfx.Masked())
		}
		if pfx.Addr().Is4In6() {
			return "", fmt.Errorf("%q is an IPv4-mapped IPv6 network; write the IPv4 network", s)
		}
		return pfx.String(), nil
	}
	return NormalizeHostPattern(s)
}

func isDigitsAndDots(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// lowerName lower-cases an ASCII name and drops its trailing dot. Other
// characters are refused before lower-casing, which would turn some into
// ASCII letters (U+0130 into "i", the Kelvin sign into "k"): a name a
// server reads as another would pass for an allowed one.
func lowerName(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] > 0x7f {
			return "", errIDN
		}
	}
	return strings.TrimSuffix(strings.ToLower(s), "."), nil
}

var errIDN = errors.New("write internationalized names in their ASCII (xn--) form")

// checkHostName accepts a DNS host name in ASCII (RFC 1123 labels), not
// ending in a number.
func checkHostName(n string) error {
	if n == "" || len(n) > 253 {
		return fmt.Errorf("a host name has 1 to 253 characters")
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("empty or over-long label %q", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for _, c := range l {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			case c == '*':
				return fmt.Errorf("a wildcard is allowed only as the whole first label (\"*.example.com\")")
			case c > 0x7f:
				return errIDN
			default:
				return fmt.Errorf("character %q is not allowed in a host name", c)
			}
		}
	}
	if endsInNumber(n) {
		return fmt.Errorf("a name ending in a number is an IPv4 address in another form than a.b.c.d (decimal, octal, hexadecimal or fewer parts)")
	}
	return nil
}

// endsInNumber reports a name whose last label is a number, decimal or
// 0x hexadecimal (octal is decimal's digits): no top-level domain is one,
// and resolvers (inet_aton) and URL parsers read such a name as an IPv4
// address, so a name rule would admit an address.
func endsInNumber(n string) bool {
	l := n[strings.LastIndexByte(n, '.')+1:]
	if h, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// NormalizeHost puts a requested host in the form egress rules match: a
// name lower-cased without its trailing dot, or an address unmapped.
// It fails on what is neither a host name nor an address.
func NormalizeHost(h string) (string, error) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("policy: host %q: an address with a zone", h)
		}
		return a.Unmap().String(), nil
	}
	n, err := lowerName(h)
	if err == nil {
		err = checkHostName(n)
	}
	if err != nil {
		return "", fmt.Errorf("policy: host %q: %v", h, err)
	}
	return n, nil
}

// DecideEgress says whether service src may reach host on port outside the
// mesh. host is a name or an address in NormalizeHost's form; a name
// matches only name rules, an address only network rules. src "" (no
// identity) matches nothing.
func (t *Table) DecideEgress(src, host string, port int) EgressDecision {
	if t == nil || src == "" {
		return EgressDecision{Rule: DefaultDeny}
	}
	addr, aerr := netip.ParseAddr(host)
	for _, r := range t.egress {
		if !containsInt(r.Ports, port) || (!contains(r.From, src) && !contains(r.From, Wildcard)) {
			continue
		}
		if aerr == nil {
			if p, ok := r.Network(); ok && p.Contains(addr.Unmap()) {
				return EgressDecision{Allow: true, Rule: r.Name, Network: p}
			}
			continue
		}
		if HostMatches(r.To, host) {
			return EgressDecision{Allow: true, Rule: r.Name}
		}
	}
	return EgressDecision{Rule: DefaultDeny}
}

// EgressNamed returns the first name rule (any port) whose destination
// matches host, a name in NormalizeHost's form, and that names a source
// from accepts (or "*"): the names a node's DNS filter lets its local
// users resolve. A nil from accepts every source.
func (t *Table) EgressNamed(host string, from func(src string) bool) (string, bool) {
	if t == nil {
		return "", false
	}
	for _, r := range t.egress {
		if _, ok := r.Network(); ok || !HostMatches(r.To, host) {
			continue
		}
		if from == nil || contains(r.From, Wildcard) || slices.ContainsFunc(r.From, from) {
			return r.Name, true
		}
	}
	return "", false
}

// NormalizeHostPattern checks a name pattern as an egress rule's name
// destination is written, a DNS name or "*." and a name, and returns it
// lower-cased without a trailing dot. "*" alone (every name) and
// addresses are refused.
func NormalizeHostPattern(s string) (string, error) {
	name, err := lowerName(s)
	if err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	rest, wild := strings.CutPrefix(name, "*.")
	if err := checkHostName(rest); err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	if !wild && !strings.Contains(rest, ".") {
		return "", fmt.Errorf("%q: write the fully qualified name (a single label is resolved through search domains)", s)
	}
	return name, nil
}

// HostMatches matches a name against a rule's name, "*.domain" (any name
// below domain, at any depth) or "*".
func HostMatches(pattern, host string) bool {
	switch {
	case pattern == AnyHost:
		_, err := netip.ParsePrefix(host)
		return err != nil
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(host, pattern[1:]) && len(host) > len(pattern)-1
	}
	return pattern == host
}

// EgressFrom returns the first egress rule that names src (or "*"): a
// service with none has no business with the egress gateway.
func (t *Table) EgressFrom(src string) (string, bool) {
	if t == nil || src == "" {
		return "", false
	}
	for _, r := range t.egress {
		if contains(r.From, src) || contains(r.From, Wildcard) {
			return r.Name, true
		}
	}
	return "", false
}

// EgressRules returns a copy of the egress rules in file order.
func (t *Table) EgressRules() []EgressRule {
	if t == nil {
		return nil
	}
	out := make([]EgressRule, len(t.egress))
	for i, r := range t.egress {
		out[i] = r
		out[i].From = append([]string(nil), r.From...)
		out[i].Ports = append([]int(nil), r.Ports...)
	}
	return out
}
