package tf

import (
	"encoding/json"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// An aws_iam_policy_document data source is rendered by the provider from
// its own arguments alone, without calling AWS, so its json is known here
// whenever its statements are: a bucket or domain policy written with it is
// read as the policy it is. A document that merges others
// (source_policy_documents, override_policy_documents and their older
// forms) is left unknown, as is one with a value not known statically.

// policyMerges are the arguments that merge other documents in.
var policyMerges = []string{"source_policy_documents", "override_policy_documents", "source_json", "override_json"}

// policyDocument is the value of an aws_iam_policy_document data block.
func (ev *evaluator) policyDocument(d *resBlock, ctx *hcl.EvalContext) cty.Value {
	obj := map[string]cty.Value{}
	for _, a := range []string{"id", "json", "minified_json", "policy_id", "statement", "version",
		"source_policy_documents", "override_policy_documents", "source_json", "override_json"} {
		obj[a] = cty.DynamicVal
	}
	if doc, known, ok := ev.renderPolicy(d, ctx); ok {
		pretty, err1 := json.MarshalIndent(doc, "", "  ")
		min, err2 := json.Marshal(doc)
		switch {
		case err1 != nil || err2 != nil:
		case known:
			obj["json"], obj["minified_json"] = cty.StringVal(string(pretty)), cty.StringVal(string(min))
		default:
			// Some of it is not known statically: the document is not,
			// but what is known of it can be read (Unknown.JSON).
			part := cty.UnknownVal(cty.String).Mark(jsonMark{string(min)})
			obj["json"], obj["minified_json"] = part, part
		}
	}
	return cty.ObjectVal(obj)
}

// renderPolicy builds the document as the provider writes it: Version,
// Id, and each statement's Sid, Effect (Allow unless said), Action,
// NotAction, Resource, NotResource, Principal, NotPrincipal and
// Condition. ok is false when it cannot be known; known is false when
// parts of it are not known statically, each then written as UnknownJSON.
func (ev *evaluator) renderPolicy(d *resBlock, ctx *hcl.EvalContext) (doc map[string]any, known, ok bool) {
	for _, a := range policyMerges {
		if d.body.attrs[a] != nil {
			return nil, false, false
		}
	}
	quiet := ev.quiet
	ev.quiet = true // the data block is not a resource: its unknowns are not noted
	v := ev.body(d.body, ctx, "data."+d.typ+"."+d.name, true)
	ev.quiet = quiet
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() {
		return nil, false, false
	}
	vals, _ := partialGo(v).(map[string]any)
	doc = map[string]any{"Version": "2012-10-17"}
	if s, ok := vals["version"].(string); ok {
		doc["Version"] = s
	}
	if s, ok := vals["policy_id"].(string); ok {
		doc["Id"] = s
	}
	var stmts []any
	for _, sv := range list(vals["statement"]) {
		s, _ := sv.(map[string]any)
		out := map[string]any{"Effect": "Allow"}
		if e, ok := s["effect"].(string); ok && e != "" {
			out["Effect"] = e
		}
		if sid, ok := s["sid"].(string); ok && sid != "" {
			out["Sid"] = sid
		}
		for k, name := range map[string]string{"actions": "Action", "not_actions": "NotAction", "resources": "Resource", "not_resources": "NotResource"} {
			if xs := stringsOf(s[k]); len(xs) > 0 {
				out[name] = oneOrMany(xs)
			}
		}
		for k, name := range map[string]string{"principals": "Principal", "not_principals": "NotPrincipal"} {
			if p, ok := principals(list(s[k])); ok {
				out[name] = p
			}
		}
		cond := map[string]map[string]any{}
		for _, cv := range list(s["condition"]) {
			c, _ := cv.(map[string]any)
			test, _ := c["test"].(string)
			variable, _ := c["variable"].(string)
			if cond[test] == nil {
				cond[test] = map[string]any{}
			}
			cond[test][variable] = oneOrMany(stringsOf(c["values"]))
		}
		if len(cond) > 0 {
			out["Condition"] = cond
		}
		stmts = append(stmts, out)
	}
	doc["Statement"] = stmts
	return doc, v.IsWhollyKnown(), true
}

// principals writes principal blocks as the provider does: a map of type to
// identifiers, or "*" for the type "*" with identifier "*".
func principals(blocks []any) (any, bool) {
	if len(blocks) == 0 {
		return nil, false
	}
	byType := map[string][]string{}
	for _, bv := range blocks {
		b, _ := bv.(map[string]any)
		t, _ := b["type"].(string)
		byType[t] = append(byType[t], stringsOf(b["identifiers"])...)
	}
	if ids, ok := byType["*"]; ok && len(byType) == 1 && len(ids) == 1 && ids[0] == "*" {
		return "*", true
	}
	out := map[string]any{}
	for t, ids := range byType {
		sort.Strings(ids)
		out[t] = oneOrMany(ids)
	}
	return out, true
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func stringsOf(v any) []string {
	var out []string
	for _, x := range list(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// oneOrMany writes one value as a string, several as a list.
func oneOrMany(xs []string) any {
	if len(xs) == 1 {
		return xs[0]
	}
	return xs
}
