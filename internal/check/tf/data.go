package tf

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Data sources are read by the provider at plan time, so their attributes
// are unknown here, with one exception that rules need: a KMS key looked up
// by an alias or an ARN the configuration gives names that key, and every
// attribute that identifies it (arn, id, key_id, target_key_arn, …) reads as
// the alias or ARN given. KMS takes an alias wherever it takes a key, so a
// rule asking which key encrypts something gets the right answer: a
// reference to data.aws_kms_alias.x.target_key_arn with name = "alias/aws/sns"
// is the AWS-managed SNS key.

// kmsDataAttrs are the attributes of the aws_kms_key and aws_kms_alias data
// sources; those that identify the key are filled in, the rest unknown.
var kmsDataAttrs = map[string][]string{
	"aws_kms_key": {"arn", "aws_account_id", "cloud_hsm_cluster_id", "creation_date", "custom_key_store_id",
		"customer_master_key_spec", "deletion_date", "description", "enabled", "expiration_model", "grant_tokens",
		"id", "key_id", "key_manager", "key_spec", "key_state", "key_usage", "multi_region",
		"multi_region_configuration", "origin", "pending_deletion_window_in_days", "valid_to", "xks_key_configuration"},
	"aws_kms_alias": {"arn", "id", "name", "target_key_arn", "target_key_id"},
}

// kmsKeyAttrs identify the key.
var kmsKeyAttrs = map[string]bool{"arn": true, "id": true, "key_id": true, "target_key_arn": true, "target_key_id": true}

// dataScope builds the value of "data" for a module instance: every data
// block it declares is unknown, but for KMS keys named statically.
func (ev *evaluator) dataScope(in *instance) cty.Value {
	if len(in.mod.datas) == 0 {
		return cty.DynamicVal
	}
	ctx := ev.ctx(in)
	types := map[string]map[string]cty.Value{}
	for _, d := range in.mod.datas {
		if types[d.typ] == nil {
			types[d.typ] = map[string]cty.Value{}
		}
		types[d.typ][d.name] = ev.dataValue(d, ctx)
	}
	out := map[string]cty.Value{}
	for t, names := range types {
		out[t] = cty.ObjectVal(names)
	}
	return cty.ObjectVal(out)
}

// dataValue is one data block's value: unknown, or a KMS key's identity.
func (ev *evaluator) dataValue(d *resBlock, ctx *hcl.EvalContext) cty.Value {
	attrs, ok := kmsDataAttrs[d.typ]
	if !ok || d.body.attrs["count"] != nil || d.body.attrs["for_each"] != nil {
		return cty.DynamicVal
	}
	arg := "key_id"
	if d.typ == "aws_kms_alias" {
		arg = "name"
	}
	e := d.body.attrs[arg]
	if e == nil {
		return cty.DynamicVal
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() || !v.Type().Equals(cty.String) {
		return cty.DynamicVal
	}
	v, _ = v.Unmark()
	key := v.AsString()
	obj := map[string]cty.Value{}
	for _, a := range attrs {
		obj[a] = cty.DynamicVal
		if kmsKeyAttrs[a] {
			obj[a] = cty.StringVal(key)
		}
	}
	if d.typ == "aws_kms_alias" {
		obj["name"] = cty.StringVal(key)
	}
	if strings.HasPrefix(key, "alias/aws/") {
		obj["key_manager"] = cty.StringVal("AWS")
	}
	return cty.ObjectVal(obj)
}
