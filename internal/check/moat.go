package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"moat/internal/agent"
	"moat/internal/config"
	"moat/internal/gateway"
	"moat/internal/policy"
	"moat/internal/server"
)

// moat's own configuration files are read with the services' own schemas
// and decoders (policy.ParseDocument, server.File, agent.File,
// gateway.File), strictly: a key the service would refuse is an error here
// too. The file's kind is told by its top-level keys. Policy files are
// also read into the small struct below for the lines of their rules.

type moatPolicy struct {
	Default string `yaml:"default"`
	Rules   []struct {
		Name          string   `yaml:"name"`
		From          []string `yaml:"from"`
		FromPlaintext []string `yaml:"from_plaintext"`
		To            string   `yaml:"to"`
		Ports         []int    `yaml:"ports"`
		Mode          string   `yaml:"mode"`
	} `yaml:"rules"`
	Services map[string]struct {
		Mode string `yaml:"mode"`
	} `yaml:"services"`
}

// MoatKind tells a moat configuration file's kind from its top-level keys:
// "policy", "server", "agent", "gateway", or "" when it is none of them (or
// not YAML).
func MoatKind(src []byte) string {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil {
		return ""
	}
	return moatKind(&doc)
}

// moatKind tells a moat config file's kind from its top-level keys.
func moatKind(doc *yaml.Node) string {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return ""
	}
	keys := map[string]bool{}
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		keys[doc.Content[0].Content[i].Value] = true
	}
	switch {
	case keys["rules"] && (keys["default"] || keys["services"]) || keys["default"] && len(keys) <= 3 || intentionsAlone(doc.Content[0]):
		return "policy"
	case keys["node"] && (keys["server"] || keys["join"]):
		return "agent"
	case keys["trust_domain"] || keys["svid_ttl"] || keys["store"] || keys["admin_dir"] || keys["key_rotation"] || keys["retention"]:
		return "server"
	case keys["routes"] || keys["waf"] || keys["hsts"]:
		return "gateway"
	}
	return ""
}

// intentionsAlone reports whether m is an intentions file of rules or
// egress rules alone, as "moat policy apply" takes it: every top-level key
// is one of the policy file's, and every entry of its rules and egress
// lists is a mapping that names a destination ("to"), as no other tool's
// rules list does.
func intentionsAlone(m *yaml.Node) bool {
	lists := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i].Value, m.Content[i+1]
		switch k {
		case "default", "mode", "services":
		case "rules", "egress":
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return false
			}
			for _, e := range v.Content {
				if e.Kind != yaml.MappingNode || !hasKey(e, "to") {
					return false
				}
			}
			lists++
		default:
			return false
		}
	}
	return lists > 0
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// lineOf returns the line of the value at a top-level key path (or 1).
func lineOf(doc *yaml.Node, path ...string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 1
	for _, k := range path {
		found := false
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
		}
		if !found {
			break
		}
	}
	return line
}

func seqLine(doc *yaml.Node, key string, i int) int {
	n := doc.Content[0]
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key && n.Content[j+1].Kind == yaml.SequenceNode && i < len(n.Content[j+1].Content) {
			return n.Content[j+1].Content[i].Line
		}
	}
	return lineOf(doc, key)
}

// moatFile checks one YAML file; ok is false when it is no moat config.
func moatFile(name string, src []byte, fs *findings) (bool, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, fmt.Errorf("check: %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	kind := moatKind(&doc)
	addSev := func(sev Severity, rule string, line int, addr, format string, args ...any) {
		fs.list = append(fs.list, Finding{RuleID: rule, Severity: sev, Address: addr,
			File: name, Line: line, end: line, Message: fmt.Sprintf(format, args...)})
	}
	add := func(rule string, line int, addr, format string, args ...any) {
		addSev(fs.rules[rule].Severity, rule, line, addr, format, args...)
	}
	decode := func(v any) error {
		if err := doc.Decode(v); err != nil {
			return fmt.Errorf("check: %s: %s config: %s", name, kind, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	switch kind {
	case "policy":
		var p moatPolicy
		if err := decode(&p); err != nil {
			return true, err
		}
		if p.Default != "" && p.Default != "deny" {
			add(RuleDefaultAllow, lineOf(&doc, "default"), "policy.default", "default is %q, not \"deny\" (moat refuses to load such a file)", p.Default)
		} else if _, err := policy.ParseDocument(src, ""); err != nil {
			// Judge only what moat would load: the policy package's own
			// parser decides whether this file is valid.
			return true, fmt.Errorf("check: %s: %w", name, err)
		}
		checkEgress(&doc, src, add)
		for i, r := range p.Rules {
			addr := fmt.Sprintf("policy.rules[%d]", i)
			if r.Name != "" {
				addr = fmt.Sprintf("policy.rules[%q]", r.Name)
			}
			for _, f := range r.From {
				if strings.Contains(f, "*") {
					add(RuleWildcard, seqLine(&doc, "rules", i), addr, "source %q admits every service", f)
				}
			}
			if strings.Contains(r.To, "*") {
				add(RuleWildcard, seqLine(&doc, "rules", i), addr, "destination %q admits every service", r.To)
			}
			if strings.EqualFold(r.Mode, "audit") {
				add(RulePermissive, seqLine(&doc, "rules", i), addr, "rule only audits (mode: audit)")
			}
		}
		for name, s := range p.Services {
			if !strings.EqualFold(s.Mode, "permissive") {
				continue
			}
			// Plaintext reachability: who reaches the service without an
			// identity, by the rules' from_plaintext.
			var reach []string
			for _, r := range p.Rules {
				if r.To == name && len(r.FromPlaintext) > 0 {
					reach = append(reach, fmt.Sprintf("%s on ports %v (rule %q)", strings.Join(r.FromPlaintext, ", "), r.Ports, r.Name))
				}
			}
			msg := "service accepts connections without mutual TLS (mode: permissive), but no rule admits a plaintext caller"
			if len(reach) > 0 {
				msg = "service accepts connections without mutual TLS (mode: permissive); plaintext callers reach it from " + strings.Join(reach, "; ")
			}
			add(RulePermissive, lineOf(&doc, "services", name), "policy.services."+name, "%s", msg)
		}
	case "server":
		f, err := server.ParseFile(src)
		if err != nil {
			return true, fmt.Errorf("check: %s: server config: %w", name, err)
		}
		if f.SVIDTTL > 24*time.Hour {
			add(RuleLongSVID, lineOf(&doc, "svid_ttl"), "server.svid_ttl", "svid_ttl is %s, over 24h (moat refuses to run with it)", f.SVIDTTL)
			f.SVIDTTL = 0 // reported; judge the rest
		}
		if err := f.ValidateFile(); err != nil {
			return true, fmt.Errorf("check: %s: server config: %w", name, err)
		}
		checkStoreAuth(&doc, f, addSev)
		// The API takes a client certificate and checks its role on every
		// call but the bundle, a join and a re-attestation, wherever it
		// listens; what a server exposes without authentication is its
		// metrics.
		if f.Metrics != "" && !loopback(f.Metrics) {
			add(RuleMetricsExposed, lineOf(&doc, "metrics"), "server.metrics", "metrics listen on %q, beyond loopback, without authentication", f.Metrics)
		}
		checkAdminAuth(&doc, f, add, addSev)
	case "agent":
		f, err := agent.ParseFile(src)
		if err != nil {
			return true, fmt.Errorf("check: %s: agent config: %w", name, err)
		}
		if err := f.ValidateFile(); err != nil {
			return true, fmt.Errorf("check: %s: agent config: %w", name, err)
		}
		if f.Metrics != "" && !loopback(f.Metrics) {
			add(RuleMetricsExposed, lineOf(&doc, "metrics"), "agent.metrics", "metrics listen on %q, beyond loopback, without authentication", f.Metrics)
		}
	case "gateway":
		var g gateway.File
		if err := config.Decode(src, &g); err != nil {
			return true, fmt.Errorf("check: %s: gateway config: %w", name, err)
		}
		if g.HSTS.Disabled {
			add(RuleGatewayNoHSTSWAF, lineOf(&doc, "hsts", "disabled"), "gateway.hsts", "HSTS is disabled")
		} else if g.HSTS.MaxAge != 0 && time.Duration(g.HSTS.MaxAge) < 180*24*time.Hour {
			add(RuleGatewayNoHSTSWAF, lineOf(&doc, "hsts", "max_age"), "gateway.hsts", "HSTS max_age %s is under 180 days", time.Duration(g.HSTS.MaxAge))
		}
		switch {
		case g.WAF.Disabled:
			add(RuleGatewayNoHSTSWAF, lineOf(&doc, "waf", "disabled"), "gateway.waf", "WAF is disabled")
		case g.WAF.DetectionOnly:
			add(RuleWAFDetect, lineOf(&doc, "waf", "detection_only"), "gateway.waf", "WAF runs in detection-only mode")
		}
	default:
		return false, nil
	}
	return true, nil
}

// loopback reports whether a listen address binds only loopback. An empty
// address binds every interface.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
