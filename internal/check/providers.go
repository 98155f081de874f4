package check

import (
	"fmt"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// providerBefore says whether the provider the configuration names name
// runs at a version before major.0.0, where a default changed: the
// version .terraform.lock.hcl selects, else every version its
// required_providers constraints admit (Terraform installs the newest
// that meets them all, so a constraint without an upper bound below
// major, or none at all, is read as a version after it). why names what
// says so, for the finding.
func (m *Model) providerBefore(name string, major int) (why string, before bool) {
	p, ok := m.providers[name]
	if !ok {
		return "", false
	}
	limit := goversion.Must(goversion.NewVersion(fmt.Sprintf("%d.0.0", major)))
	if p.Locked != "" {
		v, err := goversion.NewVersion(p.Locked)
		if err != nil || !v.LessThan(limit) {
			return "", false
		}
		return fmt.Sprintf("%s %s, as .terraform.lock.hcl selects", name, p.Locked), true
	}
	for _, c := range p.Constraints {
		for _, part := range strings.Split(c, ",") {
			if below(strings.TrimSpace(part), limit) {
				return fmt.Sprintf("%s %q, as required_providers constrains it", name, strings.TrimSpace(c)), true
			}
		}
	}
	return "", false
}

// below reports whether the version constraint c (one of a list: "<
// 3.0", "~> 2.46", "= 2.99.0", "2.99.0") admits no version at or after
// limit. A pessimistic constraint of one segment ("~> 2") and one that
// does not parse bound nothing.
func below(c string, limit *goversion.Version) bool {
	op := "="
	for _, o := range []string{"~>", ">=", "<=", "!=", "=", ">", "<"} {
		if rest, ok := strings.CutPrefix(c, o); ok {
			op, c = o, strings.TrimSpace(rest)
			break
		}
	}
	v, err := goversion.NewVersion(c)
	if err != nil {
		return false
	}
	switch op {
	case "<":
		return !limit.LessThan(v) // v <= limit
	case "<=", "=":
		return v.LessThan(limit)
	case "~>":
		segs := strings.Count(strings.TrimPrefix(c, "v"), ".") + 1
		if segs < 2 {
			return false
		}
		s := v.Segments()
		s[segs-2]++
		for i := segs - 1; i < len(s); i++ {
			s[i] = 0
		}
		parts := make([]string, len(s))
		for i, x := range s {
			parts[i] = fmt.Sprint(x)
		}
		up, err := goversion.NewVersion(strings.Join(parts, "."))
		return err == nil && !limit.LessThan(up)
	}
	return false
}
