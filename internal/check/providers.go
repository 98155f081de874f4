package check

import (
	"fmt"
	"strings"

	goversion "github.com/hashicorp/go-version"

	"moat/internal/check/tf"
)

// providerBefore says whether the provider the configuration names name
// runs at a version before limit ("3.0.0"), where a default changed: the
// version .terraform.lock.hcl selects, else every version its version
// constraints (of required_providers or provider blocks) admit
// (Terraform installs the newest that meets them all, so a constraint
// without an upper bound below limit, or none at all, is read as a
// version after it). why names what says so, for the finding.
func (m *Model) providerBefore(name, version string) (why string, before bool) {
	p, ok := m.providers[name]
	if !ok {
		return "", false
	}
	limit := goversion.Must(goversion.NewVersion(version))
	if p.Locked != "" {
		v, err := goversion.NewVersion(p.Locked)
		if err != nil || !v.LessThan(limit) {
			return "", false
		}
		return fmt.Sprintf("%s %s, as .terraform.lock.hcl selects", name, p.Locked), true
	}
	for _, c := range p.Constraints {
		for _, part := range strings.Split(c, ",") {
			if tf.Below(strings.TrimSpace(part), limit) {
				return fmt.Sprintf("%s %q, as a version constraint of the configuration holds it", name, strings.TrimSpace(c)), true
			}
		}
	}
	return "", false
}
