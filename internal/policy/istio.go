package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"moat/internal/config"
)

// Istio's L4 subset: AuthorizationPolicy (action ALLOW, source principals,
// destination ports) and PeerAuthentication (STRICT or PERMISSIVE), each
// selecting one workload with matchLabels.app naming a moat service. HTTP
// fields (methods, paths, hosts), namespaces, IP blocks and conditions have
// no meaning at L4 and are refused as unknown keys, as is every action but
// ALLOW: moat denies by default and has no deny rules.

type istioHeader struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

type istioMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type istioSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type istioAuthz struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   istioMeta `yaml:"metadata"`
	Spec       struct {
		Selector *istioSelector `yaml:"selector"`
		Action   string         `yaml:"action"`
		Rules    []struct {
			From []struct {
				Source struct {
					Principals []string `yaml:"principals"`
				} `yaml:"source"`
			} `yaml:"from"`
			To []struct {
				Operation struct {
					Ports []string `yaml:"ports"`
				} `yaml:"operation"`
			} `yaml:"to"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type istioPeerAuth struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   istioMeta `yaml:"metadata"`
	Spec       struct {
		Selector *istioSelector `yaml:"selector"`
		MTLS     struct {
			Mode string `yaml:"mode"`
		} `yaml:"mtls"`
	} `yaml:"spec"`
}

// ParseIstio compiles a stream of Istio AuthorizationPolicy and
// PeerAuthentication documents (the L4 subset above) into a Table, as Parse
// does for moat's own format. Principals are SPIFFE IDs of moat services,
// with or without "spiffe://" ("example.org/svc/frontend"), or "*"; when
// trustDomain is not empty they must belong to it. Errors name the
// document and the key path.
func ParseIstio(data []byte, trustDomain string) (*Table, error) {
	r := raw{Services: map[string]rawService{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("policy: document %d: %v", i, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(doc.Content) == 0 {
			continue
		}
		b, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("policy: document %d: %v", i, err)
		}
		if err := istioDocument(&r, b, trustDomain); err != nil {
			return nil, fmt.Errorf("policy: document %d (line %d): %w", i, doc.Line, err)
		}
	}
	t, err := compile(&r)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	t.source = append([]byte(nil), data...)
	return t, nil
}

func istioDocument(r *raw, b []byte, td string) error {
	var h istioHeader
	if err := yaml.Unmarshal(b, &h); err != nil {
		return err
	}
	switch h.APIVersion {
	case "security.istio.io/v1", "security.istio.io/v1beta1":
	default:
		return config.Errorf("apiVersion", "want security.istio.io/v1 or v1beta1, got %q", h.APIVersion)
	}
	switch h.Kind {
	case "AuthorizationPolicy":
		var a istioAuthz
		if err := config.Decode(b, &a); err != nil {
			return err
		}
		return istioAuthzRules(r, &a, td)
	case "PeerAuthentication":
		var p istioPeerAuth
		if err := config.Decode(b, &p); err != nil {
			return err
		}
		svc, err := istioTarget(p.Spec.Selector)
		if err != nil {
			return err
		}
		switch p.Spec.MTLS.Mode {
		case "STRICT", "UNSET", "":
			r.Services[svc] = rawService{Mode: string(Strict)}
		case "PERMISSIVE":
			r.Services[svc] = rawService{Mode: string(Permissive)}
		default:
			return config.Errorf("spec.mtls.mode", "want STRICT or PERMISSIVE, got %q", p.Spec.MTLS.Mode)
		}
		return nil
	}
	return config.Errorf("kind", "want AuthorizationPolicy or PeerAuthentication, got %q", h.Kind)
}

func istioTarget(sel *istioSelector) (string, error) {
	if sel == nil || sel.MatchLabels["app"] == "" {
		return "", config.Errorf("spec.selector.matchLabels.app", "name the destination service (workload-wide selectors only)")
	}
	if len(sel.MatchLabels) != 1 {
		return "", config.Errorf("spec.selector.matchLabels", "only the \"app\" label is understood")
	}
	return sel.MatchLabels["app"], nil
}

func istioAuthzRules(r *raw, a *istioAuthz, td string) error {
	if a.Metadata.Name == "" {
		return config.Errorf("metadata.name", "every policy needs a name")
	}
	if a.Spec.Action != "" && a.Spec.Action != "ALLOW" {
		return config.Errorf("spec.action", "only ALLOW is supported (moat denies by default), got %q", a.Spec.Action)
	}
	dst, err := istioTarget(a.Spec.Selector)
	if err != nil {
		return err
	}
	if len(a.Spec.Rules) == 0 {
		return config.Errorf("spec.rules", "an ALLOW policy without rules allows nothing; remove it")
	}
	for i, ir := range a.Spec.Rules {
		p := config.Index("spec.rules", i)
		name := a.Metadata.Name
		if len(a.Spec.Rules) > 1 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		rule := rawRule{Name: name, To: dst}
		for j, f := range ir.From {
			fp := config.Join(config.Index(config.Join(p, "from"), j), "source.principals")
			if len(f.Source.Principals) == 0 {
				return config.Errorf(fp, "name the source principals (or \"*\")")
			}
			for k, pr := range f.Source.Principals {
				svc, err := istioPrincipal(pr, td)
				if err != nil {
					return config.Errorf(config.Index(fp, k), "%v", err)
				}
				rule.From = append(rule.From, svc)
			}
		}
		if len(ir.From) == 0 {
			return config.Errorf(config.Join(p, "from"), "name the sources; an explicit principals: [\"*\"] allows any service")
		}
		for j, to := range ir.To {
			tp := config.Join(config.Index(config.Join(p, "to"), j), "operation.ports")
			if len(to.Operation.Ports) == 0 {
				return config.Errorf(tp, "name the ports")
			}
			for k, ps := range to.Operation.Ports {
				port, err := strconv.Atoi(ps)
				if err != nil {
					return config.Errorf(config.Index(tp, k), "want a port number, got %q", ps)
				}
				rule.Ports = append(rule.Ports, port)
			}
		}
		if len(ir.To) == 0 {
			return config.Errorf(config.Join(p, "to"), "name the ports (operation.ports)")
		}
		r.Rules = append(r.Rules, rule)
	}
	return nil
}

func istioPrincipal(p, td string) (string, error) {
	if p == Wildcard {
		return Wildcard, nil
	}
	rest := strings.TrimPrefix(p, "spiffe://")
	domain, path, ok := strings.Cut(rest, "/")
	name, isSvc := strings.CutPrefix(path, "svc/")
	if !ok || !isSvc || domain == "" {
		return "", fmt.Errorf("principal %q: want \"<trust-domain>/svc/<name>\" or \"*\"", p)
	}
	if td != "" && domain != td {
		return "", fmt.Errorf("principal %q is not in trust domain %q", p, td)
	}
	return name, nil
}

// ParseDocument reads either format: Istio AuthorizationPolicy and
// PeerAuthentication documents (recognised by their security.istio.io
// apiVersion) or moat's own intentions file.
func ParseDocument(data []byte, trustDomain string) (*Table, error) {
	if istioAPIVersion().Match(data) {
		return ParseIstio(data, trustDomain)
	}
	return Parse(data)
}

// istioAPIVersion finds an Istio security apiVersion line.
var istioAPIVersion = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^apiVersion:\s*["']?security\.istio\.io/`) })
