package tf

import (
	"io/fs"
	"path"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Provider is what the configuration says of a provider's version: the
// version constraints of every module's required_providers entry for it,
// and the version .terraform.lock.hcl of the root module selects, if any.
// Defaults that changed across a provider's major versions are read with
// it (see check's providerBefore).
type Provider struct {
	Constraints []string
	Locked      string
}

// requiredProviders records the version constraints of a terraform
// block's required_providers entries (an object's version, or a string,
// as Terraform 0.12 wrote them); a constraint not known statically says
// nothing.
func (l *loader) requiredProviders(bd *body) {
	for _, b := range bd.blocks {
		if b.typ != "required_providers" {
			continue
		}
		for name, e := range b.body.attrs {
			v, diags := e.Value(nil)
			if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
				continue
			}
			switch {
			case v.Type() == cty.String:
			case v.Type().IsObjectType() && v.Type().HasAttribute("version"):
				v = v.GetAttr("version")
			default:
				continue
			}
			if v.IsNull() || v.Type() != cty.String {
				continue
			}
			if l.providers == nil {
				l.providers = map[string]*Provider{}
			}
			if l.providers[name] == nil {
				l.providers[name] = &Provider{}
			}
			l.providers[name].Constraints = append(l.providers[name].Constraints, v.AsString())
		}
	}
}

// lockedProviders reads the versions the root module's dependency lock
// file selects (provider "registry.terraform.io/hashicorp/azurerm" {
// version = "2.99.0" }), by the provider's local name; no file, no
// versions.
func (l *loader) lockedProviders(dir string) error {
	name := path.Join(dir, ".terraform.lock.hcl")
	if _, err := fs.Stat(l.fsys, name); err != nil {
		return nil
	}
	b, err := l.parse(name)
	if err != nil {
		return err
	}
	content, _, _ := b.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "provider", LabelNames: []string{"source"}}}})
	for _, p := range content.Blocks {
		attrs, _ := p.Body.JustAttributes()
		a := attrs["version"]
		if a == nil {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			continue
		}
		local := p.Labels[0][strings.LastIndex(p.Labels[0], "/")+1:]
		if l.providers == nil {
			l.providers = map[string]*Provider{}
		}
		if l.providers[local] == nil {
			l.providers[local] = &Provider{}
		}
		l.providers[local].Locked = v.AsString()
	}
	return nil
}
