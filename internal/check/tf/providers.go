package tf

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	goversion "github.com/hashicorp/go-version"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Provider is what the configuration says of a provider's version: the
// version constraints of every module's required_providers entry and
// provider blocks for it,
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
			if diags.HasErrors() {
				// configuration_aliases = [azurerm.runtime] names
				// provider configurations, which evaluate to nothing:
				// the version is read alone.
				v, diags = objectItem(e, "version")
			}
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
			l.constrain(name, v.AsString())
		}
	}
}

// providerVersion records the version constraint a provider block gives
// its provider (provider "azurerm" { version = "=1.36.1" }), as Terraform
// before 0.13 wrote them and later ones still honour.
func (l *loader) providerVersion(name string, bd *body) {
	e := bd.attrs["version"]
	if e == nil {
		return
	}
	if v, diags := e.Value(nil); !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
		l.constrain(name, v.AsString())
	}
}

// constrain records version constraint c of the provider the
// configuration names name.
func (l *loader) constrain(name, c string) {
	if l.providers == nil {
		l.providers = map[string]*Provider{}
	}
	if l.providers[name] == nil {
		l.providers[name] = &Provider{}
	}
	l.providers[name].Constraints = append(l.providers[name].Constraints, c)
}

// requiredVersion records the required_version constraint of a terraform
// block; one not known statically says nothing.
func (l *loader) requiredVersion(bd *body) {
	e := bd.attrs["required_version"]
	if e == nil {
		return
	}
	if v, diags := e.Value(nil); !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
		l.terraform = append(l.terraform, v.AsString())
	}
}

// terraformBefore reports whether the required_version constraints of the
// configuration admit no Terraform at or after version limit.
func (l *loader) terraformBefore(limit string) bool {
	lv := goversion.Must(goversion.NewVersion(limit))
	for _, c := range l.terraform {
		for _, part := range strings.Split(c, ",") {
			if Below(strings.TrimSpace(part), lv) {
				return true
			}
		}
	}
	return false
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

// Below reports whether the version constraint c (one of a list: "<
// 3.0", "~> 2.46", "= 2.99.0", "2.99.0") admits no version at or after
// limit. A pessimistic constraint of one segment ("~> 2") and one that
// does not parse bound nothing.
func Below(c string, limit *goversion.Version) bool {
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

// providerConfig returns the provider configuration, as the root module
// names it ("aws", "aws.west"), that a resource or data block of type typ
// with body bd uses in module instance in: the one its provider argument
// names, else its provider's default one, followed up through the
// providers argument of each module call above it. A configuration a call
// does not pass on by name is the caller's of the same name, as Terraform
// passes default configurations on.
func (in *instance) providerConfig(bd *body, typ string) string {
	name, _, _ := strings.Cut(typ, "_")
	if e := bd.attrs["provider"]; e != nil {
		if t, diags := hcl.AbsTraversalForExpr(e); !diags.HasErrors() {
			name = configName(t)
		}
	}
	for c := in; c.parent != nil && c.call != nil; c = c.parent {
		name = c.call.cb.passes(name)
	}
	return name
}

// passes returns the caller's provider configuration that a module call
// gives its module as the configuration name (providers = { aws = aws.west
// }), or name itself when the call does not say.
func (cb *callBlock) passes(name string) string {
	e := cb.body.attrs["providers"]
	if e == nil {
		return name
	}
	pairs, diags := hcl.ExprMap(e)
	if diags.HasErrors() {
		return name
	}
	for _, p := range pairs {
		k, kd := hcl.AbsTraversalForExpr(p.Key)
		v, vd := hcl.AbsTraversalForExpr(p.Value)
		if !kd.HasErrors() && !vd.HasErrors() && configName(k) == name {
			return configName(v)
		}
	}
	return name
}

// configName is the name of the provider configuration traversal t names:
// aws, or aws.west for an alias.
func configName(t hcl.Traversal) string {
	name := t.RootName()
	if len(t) > 1 {
		if a, ok := t[1].(hcl.TraverseAttr); ok {
			name += "." + a.Name
		}
	}
	return name
}

// providerBlock is a provider configuration a module writes: its name as
// the module names it ("aws", "aws.west") and its body.
type providerBlock struct {
	name string
	body *body
}

// awsCredentials are the arguments and blocks of an AWS provider
// configuration that choose whose credentials it uses, and so may make
// it another account's.
var awsCredentials = []string{"access_key", "assume_role", "assume_role_with_web_identity", "profile",
	"secret_key", "shared_config_files", "shared_credentials_file", "shared_credentials_files", "token"}

// sameConfigs names as one in Configs, by the first name, the AWS provider
// configurations of the root module known to be one region of one
// account, which share one default VPC: each sets region to the same value
// known statically, sets the arguments that choose credentials
// (awsCredentials) to the same values known statically or leaves them
// unset, and their allowed_account_ids, where known, share an account.
// One whose region is not set (the environment's) or not known is
// its own.
func (ev *evaluator) sameConfigs() {
	ctx := ev.ctx(ev.root)
	type ident struct {
		name, region, creds string
		accounts            map[string]bool // nil: not said
	}
	var ids []ident
	for _, pb := range ev.root.mod.providers {
		if pb.name != "aws" && !strings.HasPrefix(pb.name, "aws.") {
			continue
		}
		region, ok := knownString(pb.body.attrs["region"], ctx)
		if !ok {
			continue
		}
		creds, ok := awsCredentialsOf(pb.body, ctx)
		if !ok {
			continue
		}
		id := ident{name: pb.name, region: region, creds: creds}
		if v, ok := knownValue(pb.body.attrs["allowed_account_ids"], ctx); ok && v.CanIterateElements() {
			id.accounts = map[string]bool{}
			for _, a := range v.AsValueSlice() {
				if a.Type() == cty.String {
					id.accounts[a.AsString()] = true
				}
			}
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].name < ids[j].name })
	// Each configuration joins the first before it that it may be one
	// with; that one's accounts narrow to those both allow.
	same := map[string]string{} // configuration → the first of those it is one with
	for i := range ids {
		a := &ids[i]
		for j := range ids[:i] {
			b := &ids[j]
			if a.region != b.region || a.creds != b.creds || same[b.name] != "" {
				continue
			}
			if a.accounts != nil && b.accounts != nil && !overlaps(a.accounts, b.accounts) {
				continue
			}
			same[a.name] = b.name
			if b.accounts == nil {
				b.accounts = a.accounts
			} else if a.accounts != nil {
				for k := range b.accounts {
					if !a.accounts[k] {
						delete(b.accounts, k)
					}
				}
			}
			break
		}
	}
	for addr, c := range ev.p.Configs {
		if s, ok := same[c]; ok {
			ev.p.Configs[addr] = s
		}
	}
}

// awsCredentialsOf returns what an AWS provider configuration's body says
// of its credentials (awsCredentials): the values it sets, in a text that
// is the same for the same values; false when one is not known
// statically or written by a dynamic block.
func awsCredentialsOf(bd *body, ctx *hcl.EvalContext) (string, bool) {
	var parts []string
	for _, k := range awsCredentials {
		if e := bd.attrs[k]; e != nil {
			v, ok := knownValue(e, ctx)
			if !ok {
				return "", false
			}
			parts = append(parts, k+"="+v.GoString())
		}
	}
	for _, b := range bd.blocks {
		if b.typ == "dynamic" {
			return "", false
		}
		if !slices.Contains(awsCredentials, b.typ) {
			continue
		}
		keys := make([]string, 0, len(b.body.attrs))
		for k := range b.body.attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, ok := knownValue(b.body.attrs[k], ctx)
			if !ok {
				return "", false
			}
			parts = append(parts, b.typ+"."+k+"="+v.GoString())
		}
		parts = append(parts, b.typ)
	}
	return strings.Join(parts, "\n"), true
}

// overlaps reports whether sets a and b share an element.
func overlaps(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}

// objectItem evaluates the item named key of an object written in place,
// { version = "3.43.0", ... }, alone; an error when e is not such an
// object or has no such item.
func objectItem(e hcl.Expression, key string) (cty.Value, hcl.Diagnostics) {
	items, diags := hcl.ExprMap(e)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	for _, it := range items {
		if hcl.ExprAsKeyword(it.Key) == key {
			return it.Value.Value(nil)
		}
	}
	return cty.NilVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "no " + key}}
}
