// Package policy holds moat's intentions: which service may call which other
// service on which port. Everything not allowed by a rule is denied
// ("default-deny"); there is no other default.
//
// A policy file reads:
//
//	default: deny            # optional; the only value accepted
//	mode: enforce            # optional; enforce (default) or audit for every destination
//	services:                # optional; per-service peer mode
//	  legacy: {mode: permissive}
//	rules:
//	  - name: web-to-api
//	    from: [gateway, frontend]   # "*" means any authenticated service (warned about)
//	    to: api
//	    ports: [8080]
//	  - name: api-to-db
//	    from: [api]
//	    to: db
//	    ports: [5432]
//	    mode: audit                 # db is in audit mode: would-deny traffic is let through and logged
//	  - name: old-clients-to-legacy
//	    from_plaintext: [10.20.0.0/16]  # plaintext callers from these networks ("any": every plaintext caller)
//	    to: legacy
//	    ports: [9000]
//	egress:                  # optional; hosts outside the mesh (see egress.go)
//	  - name: payments
//	    from: [api]
//	    to: api.stripe.com
//	    ports: [443]
//
// Plaintext has no identity, so no service name and not even "*" admits it:
// only a rule's from_plaintext does, and only for a destination whose peer
// mode is permissive (a strict service refuses plaintext whatever the rules
// say).
//
// Parse validates a file and compiles it into a Table whose Decide is a
// constant number of map lookups however many rules there are. A Table is
// immutable and safe for concurrent use; a new policy is a new Table.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"sync"

	"moat/internal/config"
	"moat/internal/identity"
)

// DefaultDeny is the rule name of decisions no rule made.
const DefaultDeny = "default-deny"

// Wildcard is the source that stands for any authenticated service.
const Wildcard = "*"

// AnyPlaintext, in a rule's from_plaintext, admits every plaintext caller
// whatever its address: the explicit unauthenticated source.
const AnyPlaintext = "any"

// Mode is how a destination enforces its rules.
type Mode string

// Enforcement modes.
const (
	Enforce Mode = "enforce" // denied connections are refused
	Audit   Mode = "audit"   // denied connections are let through and logged as would-deny
)

// PeerMode is how a service's inbound port treats plaintext.
type PeerMode string

// Peer modes.
const (
	Strict     PeerMode = "strict"     // mutual TLS only (the default)
	Permissive PeerMode = "permissive" // plaintext is accepted too, and flagged in the flow
)

// Rule is one validated intention.
type Rule struct {
	Name string   `json:"name"`
	From []string `json:"from"`
	// FromPlaintext lists the networks (CIDR prefixes, or AnyPlaintext)
	// whose plaintext callers the rule admits to a permissive destination.
	FromPlaintext []string `json:"from_plaintext,omitempty"`
	To            string   `json:"to"`
	Ports         []int    `json:"ports"`
	Mode          Mode     `json:"mode"`
}

// Decision is the answer to one connection.
type Decision struct {
	// Allow says whether the connection may proceed. It is true for audited
	// would-deny connections too.
	Allow bool
	// Audit is true when no rule allows the connection but the destination
	// is in audit mode, so it is let through and logged as would-deny.
	Audit bool
	// Rule names the rule that allowed the connection, or DefaultDeny.
	Rule string
}

// Verdict returns "allow", "deny" or "audit", as flow records spell it.
func (d Decision) Verdict() string {
	switch {
	case d.Audit:
		return "audit"
	case d.Allow:
		return "allow"
	}
	return "deny"
}

type raw struct {
	Default  string                `yaml:"default"`
	Mode     string                `yaml:"mode"`
	Services map[string]rawService `yaml:"services"`
	Rules    []rawRule             `yaml:"rules"`
	Egress   []rawEgress           `yaml:"egress"`
}

type rawService struct {
	Mode string `yaml:"mode"`
}

type rawRule struct {
	Name          string   `yaml:"name"`
	From          []string `yaml:"from"`
	FromPlaintext []string `yaml:"from_plaintext"`
	To            string   `yaml:"to"`
	Ports         []int    `yaml:"ports"`
	Mode          string   `yaml:"mode"`
}

// plainRule is one rule's plaintext sources for a destination port.
type plainRule struct {
	nets []netip.Prefix
	rule int
}

type key struct {
	src, dst string
	port     int
}

type dstPort struct {
	dst  string
	port int
}

// Table is a compiled policy. The zero Table and a nil *Table deny everything.
type Table struct {
	mode     Mode
	rules    []Rule
	services map[string]PeerMode
	allow    map[key]int     // exact source → rule index
	wild     map[dstPort]int // "*" source → rule index
	plain    map[dstPort][]plainRule
	auditDst map[string]int // destination in audit mode → rule index (-1: global mode)
	egress   []EgressRule
	version  string
	warnings []string
	source   []byte
}

var ruleNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$`) })

// validService reports whether s may name a service (as identity names them).
func validService(s string) bool { return identity.ValidName(s) == nil }

// AdminPrefix starts a source that names an administrator's identity
// ("admin/alice"): what a break-glass port forward connects as. Only an
// exact rule admits one; "*" stands for services, never administrators.
const AdminPrefix = "admin/"

// validSource reports whether s may name a rule's source.
func validSource(s string) bool {
	if name, ok := strings.CutPrefix(s, AdminPrefix); ok {
		return identity.ValidName(name) == nil
	}
	return validService(s)
}

// Parse decodes, validates and compiles a policy file. Errors name the key
// path and line; nothing is returned with an error.
func Parse(data []byte) (*Table, error) {
	var r raw
	if err := config.Decode(data, &r); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	t, err := compile(&r)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	t.source = append([]byte(nil), data...)
	return t, nil
}

// New compiles rules (and egress rules) given in Go, as Parse does a file;
// for tests and callers that build policy programmatically.
func New(mode Mode, services map[string]PeerMode, rules []Rule, egress ...EgressRule) (*Table, error) {
	r := raw{Mode: string(mode), Services: map[string]rawService{}}
	for _, e := range egress {
		r.Egress = append(r.Egress, rawEgress{Name: e.Name, From: e.From, To: e.To, Ports: e.Ports})
	}
	for s, m := range services {
		r.Services[s] = rawService{Mode: string(m)}
	}
	for _, ru := range rules {
		r.Rules = append(r.Rules, rawRule{Name: ru.Name, From: ru.From, FromPlaintext: ru.FromPlaintext, To: ru.To, Ports: ru.Ports, Mode: string(ru.Mode)})
	}
	t, err := compile(&r)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return t, nil
}

func compile(r *raw) (*Table, error) {
	t := &Table{
		mode:     Enforce,
		services: map[string]PeerMode{},
		allow:    map[key]int{},
		wild:     map[dstPort]int{},
		plain:    map[dstPort][]plainRule{},
		auditDst: map[string]int{},
	}
	switch r.Default {
	case "", "deny":
	default:
		return nil, config.Errorf("default", "%q is not accepted: the only default is \"deny\"", r.Default)
	}
	switch Mode(r.Mode) {
	case "", Enforce:
	case Audit:
		t.mode = Audit
		t.warnings = append(t.warnings, "mode: audit lets every would-deny connection through (logged); use it only for rollout")
	default:
		return nil, config.Errorf("mode", "want \"enforce\" or \"audit\", got %q", r.Mode)
	}
	names := make([]string, 0, len(r.Services))
	for n := range r.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := config.Join("services", n)
		if !validService(n) {
			return nil, config.Errorf(p, "bad service name %q (lowercase letters, digits, '-')", n)
		}
		switch PeerMode(r.Services[n].Mode) {
		case "", Strict:
			t.services[n] = Strict
		case Permissive:
			t.services[n] = Permissive
			t.warnings = append(t.warnings, fmt.Sprintf("%s: permissive: plaintext connections are accepted", p))
		default:
			return nil, config.Errorf(config.Join(p, "mode"), "want \"strict\" or \"permissive\", got %q", r.Services[n].Mode)
		}
	}
	seen := map[string]int{}
	for i, rr := range r.Rules {
		p := config.Index("rules", i)
		rule, err := validateRule(p, rr)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[rule.Name]; dup {
			return nil, config.Errorf(config.Join(p, "name"), "%q is already the name of rules[%d]", rule.Name, j)
		}
		seen[rule.Name] = i
		t.rules = append(t.rules, rule)
		if rule.Mode == Audit {
			if _, ok := t.auditDst[rule.To]; !ok {
				t.auditDst[rule.To] = i
			}
		}
		if len(rule.FromPlaintext) > 0 {
			nets := plaintextNets(rule.FromPlaintext)
			for _, port := range rule.Ports {
				k := dstPort{rule.To, port}
				t.plain[k] = append(t.plain[k], plainRule{nets: nets, rule: i})
			}
			if t.services[rule.To] != Permissive {
				t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): from_plaintext has no effect while %s is not permissive (services.%s.mode)", p, rule.Name, rule.To, rule.To))
			}
			for _, n := range nets {
				if n.Bits() == 0 {
					t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): from_plaintext admits plaintext callers from anywhere to %s", p, rule.Name, rule.To))
					break
				}
			}
		}
		for _, src := range rule.From {
			if src == Wildcard {
				t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): from \"*\" lets every service reach %s", p, rule.Name, rule.To))
			}
			for _, port := range rule.Ports {
				if src == Wildcard {
					k := dstPort{rule.To, port}
					if j, ok := t.wild[k]; ok {
						t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): * → %s:%d is already allowed by rule %q", p, rule.Name, rule.To, port, t.rules[j].Name))
						continue
					}
					t.wild[k] = i
					continue
				}
				k := key{src, rule.To, port}
				if j, ok := t.allow[k]; ok {
					t.warnings = append(t.warnings, fmt.Sprintf("%s (%s): %s → %s:%d is already allowed by rule %q", p, rule.Name, src, rule.To, port, t.rules[j].Name))
					continue
				}
				t.allow[k] = i
			}
		}
	}
	if err := t.compileEgress(r.Egress, seen); err != nil {
		return nil, err
	}
	if t.mode == Audit {
		t.auditDst = nil
	}
	t.version = t.hash()
	return t, nil
}

func validateRule(p string, rr rawRule) (Rule, error) {
	rule := Rule{Name: rr.Name, To: rr.To, Mode: Enforce}
	if rr.Name == "" {
		return rule, config.Errorf(config.Join(p, "name"), "every rule needs a name")
	}
	if !ruleNameRE().MatchString(rr.Name) || rr.Name == DefaultDeny {
		return rule, config.Errorf(config.Join(p, "name"), "bad rule name %q", rr.Name)
	}
	switch {
	case rr.To == "":
		return rule, config.Errorf(config.Join(p, "to"), "name the destination service")
	case rr.To == Wildcard:
		return rule, config.Errorf(config.Join(p, "to"), "a wildcard destination is not allowed; name one service")
	case !validService(rr.To):
		return rule, config.Errorf(config.Join(p, "to"), "bad service name %q", rr.To)
	}
	if len(rr.From) == 0 && len(rr.FromPlaintext) == 0 {
		return rule, config.Errorf(config.Join(p, "from"), "name at least one source service (or \"*\" for any), or plaintext sources in from_plaintext")
	}
	nets := map[netip.Prefix]bool{}
	for j, s := range rr.FromPlaintext {
		fp := config.Index(config.Join(p, "from_plaintext"), j)
		if s == AnyPlaintext {
			if len(rr.FromPlaintext) > 1 {
				return rule, config.Errorf(fp, "%q admits every plaintext caller; list nothing beside it", AnyPlaintext)
			}
			rule.FromPlaintext = []string{AnyPlaintext}
			break
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return rule, config.Errorf(fp, "want a network in CIDR form (10.0.0.0/8, fd00::/8) or %q, got %q", AnyPlaintext, s)
		}
		if pfx != pfx.Masked() {
			return rule, config.Errorf(fp, "%q has host bits set; the network is %s", s, pfx.Masked())
		}
		if pfx.Addr().Is4In6() {
			return rule, config.Errorf(fp, "%q is an IPv4-mapped IPv6 network; write the IPv4 network", s)
		}
		if nets[pfx] {
			return rule, config.Errorf(fp, "%q listed twice", s)
		}
		nets[pfx] = true
		rule.FromPlaintext = append(rule.FromPlaintext, pfx.String())
	}
	srcs := map[string]bool{}
	for j, s := range rr.From {
		fp := config.Index(config.Join(p, "from"), j)
		if s != Wildcard && !validSource(s) {
			return rule, config.Errorf(fp, "bad source %q (a service name, or admin/NAME for an administrator)", s)
		}
		if srcs[s] {
			return rule, config.Errorf(fp, "%q listed twice", s)
		}
		srcs[s] = true
		rule.From = append(rule.From, s)
	}
	var err error
	if rule.Ports, err = validatePorts(p, rr.Ports); err != nil {
		return rule, err
	}
	switch Mode(rr.Mode) {
	case "", Enforce:
	case Audit:
		rule.Mode = Audit
	default:
		return rule, config.Errorf(config.Join(p, "mode"), "want \"enforce\" or \"audit\", got %q", rr.Mode)
	}
	return rule, nil
}

// validatePorts checks a rule's ports: at least one, each in range, none
// twice.
func validatePorts(p string, in []int) ([]int, error) {
	if len(in) == 0 {
		return nil, config.Errorf(config.Join(p, "ports"), "name at least one port")
	}
	var out []int
	seen := map[int]bool{}
	for j, port := range in {
		pp := config.Index(config.Join(p, "ports"), j)
		if port < 1 || port > 65535 {
			return nil, config.Errorf(pp, "port %d is out of range 1-65535", port)
		}
		if seen[port] {
			return nil, config.Errorf(pp, "port %d listed twice", port)
		}
		seen[port] = true
		out = append(out, port)
	}
	return out, nil
}

// hash is a digest of the compiled policy, so two files that mean the same
// thing (comments, key order) share a version.
func (t *Table) hash() string {
	canon := struct {
		Mode     Mode                `json:"mode"`
		Services map[string]PeerMode `json:"services"`
		Rules    []Rule              `json:"rules"`
		Egress   []EgressRule        `json:"egress,omitempty"`
	}{t.mode, t.services, t.rules, t.egress}
	b, _ := json.Marshal(canon) // plain structs of strings and ints always encode
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Decide says whether src may open a connection to dst on port. src is the
// caller's authenticated service name; "" (no identity) matches no rule, not
// even "*", which means any authenticated service.
func (t *Table) Decide(src, dst string, port int) Decision {
	if t == nil || t.allow == nil {
		return Decision{Rule: DefaultDeny}
	}
	if src != "" {
		if i, ok := t.allow[key{src, dst, port}]; ok {
			return Decision{Allow: true, Rule: t.rules[i].Name}
		}
		if i, ok := t.wild[dstPort{dst, port}]; ok && !strings.HasPrefix(src, AdminPrefix) {
			return Decision{Allow: true, Rule: t.rules[i].Name}
		}
	}
	if t.auditing(dst) {
		return Decision{Allow: true, Audit: true, Rule: DefaultDeny}
	}
	return Decision{Rule: DefaultDeny}
}

// DecidePlaintext says whether a plaintext caller at addr may reach dst on
// port: only a rule whose from_plaintext holds addr allows it. It does not
// look at dst's peer mode; the caller refuses plaintext to a strict service
// before asking. An invalid addr matches no network.
func (t *Table) DecidePlaintext(addr netip.Addr, dst string, port int) Decision {
	if t == nil || t.allow == nil {
		return Decision{Rule: DefaultDeny}
	}
	addr = addr.Unmap()
	for _, pr := range t.plain[dstPort{dst, port}] {
		for _, n := range pr.nets {
			if addr.IsValid() && n.Contains(addr) {
				return Decision{Allow: true, Rule: t.rules[pr.rule].Name}
			}
		}
	}
	if t.auditing(dst) {
		return Decision{Allow: true, Audit: true, Rule: DefaultDeny}
	}
	return Decision{Rule: DefaultDeny}
}

// DecideSource decides for a caller named as an operator names one: a
// service name, or the IP address of a plaintext caller (refused outright
// by a strict destination).
func (t *Table) DecideSource(src, dst string, port int) Decision {
	addr, err := netip.ParseAddr(src)
	if err != nil {
		return t.Decide(src, dst, port)
	}
	if t.PeerMode(dst) != Permissive {
		return Decision{Rule: DefaultDeny}
	}
	return t.DecidePlaintext(addr, dst, port)
}

// plaintextNets compiles validated from_plaintext entries.
func plaintextNets(srcs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range srcs {
		if s == AnyPlaintext {
			return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func (t *Table) auditing(dst string) bool {
	if t.mode == Audit {
		return true
	}
	_, ok := t.auditDst[dst]
	return ok
}

// PeerMode returns the peer mode of service: Strict unless the policy says
// Permissive.
func (t *Table) PeerMode(service string) PeerMode {
	if t == nil {
		return Strict
	}
	if m, ok := t.services[service]; ok {
		return m
	}
	return Strict
}

// Version is a hex SHA-256 of the compiled policy; equal policies have equal
// versions. The nil Table's version is "".
func (t *Table) Version() string {
	if t == nil {
		return ""
	}
	return t.version
}

// Warnings lists what is legal but worth a second look (wildcard sources,
// audit mode, permissive services, repeated grants).
func (t *Table) Warnings() []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.warnings...)
}

// Rules returns a copy of the rules in file order.
func (t *Table) Rules() []Rule {
	if t == nil {
		return nil
	}
	out := make([]Rule, len(t.rules))
	for i, r := range t.rules {
		out[i] = r
		out[i].From = append([]string(nil), r.From...)
		if r.FromPlaintext != nil {
			out[i].FromPlaintext = append([]string(nil), r.FromPlaintext...)
		}
		out[i].Ports = append([]int(nil), r.Ports...)
	}
	return out
}

// Source returns the bytes the table was parsed from (nil for New).
func (t *Table) Source() []byte {
	if t == nil {
		return nil
	}
	return append([]byte(nil), t.source...)
}

// Mode returns the policy-wide mode.
func (t *Table) Mode() Mode {
	if t == nil {
		return Enforce
	}
	return t.mode
}

func (r Rule) String() string {
	ports := make([]string, len(r.Ports))
	for i, p := range r.Ports {
		ports[i] = fmt.Sprint(p)
	}
	from := strings.Join(r.From, ", ")
	if len(r.FromPlaintext) > 0 {
		if from != "" {
			from += ", "
		}
		from += "plaintext " + strings.Join(r.FromPlaintext, ", ")
	}
	s := fmt.Sprintf("%s: [%s] → %s:[%s]", r.Name, from, r.To, strings.Join(ports, ", "))
	if r.Mode == Audit {
		s += " (audit)"
	}
	return s
}
