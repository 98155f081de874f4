package tf

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Data sources are read by the provider at plan time, so their attributes
// are unknown here, with exceptions that rules need (dataValue), among them: a KMS key looked up
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
// block it declares, each instance of one with count or for_each as a
// resource's (dataOf); those not known statically unknown.
func (ev *evaluator) dataScope(in *instance) cty.Value {
	if len(in.datas) == 0 {
		return cty.DynamicVal
	}
	ctx := ev.ctx(in)
	types := map[string]map[string]cty.Value{}
	for _, ds := range in.datas {
		if types[ds.rb.typ] == nil {
			types[ds.rb.typ] = map[string]cty.Value{}
		}
		types[ds.rb.typ][ds.rb.name] = ev.dataOf(in, ds, ctx)
	}
	out := map[string]cty.Value{}
	for t, names := range types {
		out[t] = cty.ObjectVal(names)
	}
	return cty.ObjectVal(out)
}

// dataOf expands a data block's count or for_each as a resource's
// (expand, within maxInstances) once it is known statically, and returns
// its value: one instance's (dataValue), or a tuple or object of them,
// each read with its count.index or each; unknown while its instances are
// not known. Its count or for_each are not noted: what reads the data
// block is, where its value is not known.
func (ev *evaluator) dataOf(in *instance, ds *dataState, ctx *hcl.EvalContext) cty.Value {
	ev.p.Configs[dataAddr(in, ds.rb.typ, ds.rb.name)] = in.providerConfig(ds.rb.body, ds.rb.typ)
	if !ds.expanded {
		quiet := ev.quiet
		ev.quiet = true
		ev.expand(ctx, ds.rb.body, &ds.expansion)
		ev.quiet = quiet
	}
	if !ds.expanded || ds.unknownKey {
		return cty.DynamicVal
	}
	switch ds.mode {
	case modeCount:
		vs := make([]cty.Value, len(ds.keys))
		for i := range ds.keys {
			vs[i] = ev.dataValue(in, ds.rb, ds.child(ctx, i))
		}
		return tupleOf(vs)
	case modeEach:
		m := map[string]cty.Value{}
		for i, k := range ds.keys {
			m[k.AsString()] = ev.dataValue(in, ds.rb, ds.child(ctx, i))
		}
		return objectOf(m)
	}
	return ev.dataValue(in, ds.rb, ctx)
}

// AL2023AMI is what the AMI ID an aws_ami or aws_ssm_parameter lookup
// returns reads as when the lookup can only find Amazon Linux 2023 images
// that Amazon publishes: AL2023 AMIs are registered with imds_support =
// "v2.0", so instances launched from them require IMDSv2 tokens unless
// they say otherwise. The ID itself is unknown until plan.
const AL2023AMI = "an Amazon Linux 2023 AMI (imds_support = v2.0)"

// amiDataAttrs are the attributes of the aws_ami and aws_ssm_parameter
// data sources.
var amiDataAttrs = map[string][]string{
	"aws_ami": {"allow_unsafe_filter", "architecture", "arn", "block_device_mappings", "boot_mode", "creation_date",
		"deprecation_time", "description", "ena_support", "executable_users", "filter", "hypervisor", "id", "image_id",
		"image_location", "image_owner_alias", "image_type", "imds_support", "include_deprecated", "kernel_id",
		"last_launched_time", "most_recent", "name", "name_regex", "owner_id", "owners", "platform",
		"platform_details", "product_codes", "public", "ramdisk_id", "region", "root_device_name",
		"root_device_type", "root_snapshot_id", "sriov_net_support", "state", "state_reason", "tags",
		"tpm_support", "uefi_data", "usage_operation", "virtualization_type"},
	"aws_ssm_parameter": {"arn", "id", "insecure_value", "name", "region", "type", "value", "version", "with_decryption"},
}

// knownString is e's value in ctx when it is a string known statically.
func knownString(e hcl.Expression, ctx *hcl.EvalContext) (string, bool) {
	if e == nil {
		return "", false
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() || !v.Type().Equals(cty.String) {
		return "", false
	}
	v, _ = v.Unmark()
	return v.AsString(), true
}

// al2023Lookup reports whether a data block can only find Amazon Linux 2023
// AMIs published by Amazon: an aws_ami lookup owned by Amazon whose name
// filters (or name_regex) all start with al2023-ami- (the ECS-optimized
// al2023-ami-ecs- images excepted), or an aws_ssm_parameter that reads
// Amazon's public AL2023 parameter.
func al2023Lookup(d *resBlock, ctx *hcl.EvalContext) bool {
	str := func(e hcl.Expression) (string, bool) { return knownString(e, ctx) }
	al2023 := func(name string) bool {
		name = strings.TrimPrefix(name, "^")
		return strings.HasPrefix(name, "al2023-ami-") && !strings.HasPrefix(name, "al2023-ami-ecs")
	}
	if d.typ == "aws_ssm_parameter" {
		n, ok := str(d.body.attrs["name"])
		return ok && strings.HasPrefix(n, "/aws/service/ami-amazon-linux-latest/al2023-ami-")
	}
	// every reports whether e is a known, non-empty list of strings each
	// of which ok accepts.
	every := func(e hcl.Expression, ok func(string) bool) bool {
		if e == nil {
			return false
		}
		v, diags := e.Value(ctx)
		if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() || v.LengthInt() == 0 {
			return false
		}
		for it := v.ElementIterator(); it.Next(); {
			_, x := it.Element()
			x, _ = x.Unmark()
			if !x.Type().Equals(cty.String) || !ok(x.AsString()) {
				return false
			}
		}
		return true
	}
	if !every(d.body.attrs["owners"], func(o string) bool { return o == "amazon" || o == "137112412989" }) {
		return false
	}
	named := false
	if n, ok := str(d.body.attrs["name_regex"]); ok {
		if !al2023(n) {
			return false
		}
		named = true
	}
	for _, b := range d.body.blocks {
		if b.typ != "filter" {
			continue
		}
		if n, _ := str(b.body.attrs["name"]); n != "name" {
			continue
		}
		if !every(b.body.attrs["values"], al2023) {
			return false
		}
		named = true
	}
	return named
}

// AWSManagedPrefixList begins the names of the prefix lists AWS manages,
// each one service's ranges (com.amazonaws.global.cloudfront.origin-facing,
// com.amazonaws.us-east-1.s3). An aws_ec2_managed_prefix_list lookup by such
// a name has that name as its id and name: the list's entries are AWS's,
// not the configuration's, but it is that list and no other.
const AWSManagedPrefixList = "com.amazonaws."

// managedPrefixListName returns the AWS-managed list a lookup names: by
// name, or by one prefix-list-name filter with one value.
func managedPrefixListName(d *resBlock, ctx *hcl.EvalContext) (string, bool) {
	known := func(e hcl.Expression) (cty.Value, bool) { return knownValue(e, ctx) }
	var names []string
	if v, ok := known(d.body.attrs["name"]); ok && v.Type().Equals(cty.String) {
		names = append(names, v.AsString())
	}
	for _, b := range d.body.blocks {
		if b.typ != "filter" {
			continue
		}
		n, ok := known(b.body.attrs["name"])
		if !ok || !n.Type().Equals(cty.String) || n.AsString() != "prefix-list-name" {
			return "", false // another filter: which list is found is AWS's answer
		}
		v, ok := known(b.body.attrs["values"])
		if !ok || !v.CanIterateElements() || v.LengthInt() != 1 {
			return "", false
		}
		for it := v.ElementIterator(); it.Next(); {
			if _, x := it.Element(); x.Type().Equals(cty.String) {
				names = append(names, x.AsString())
			}
		}
	}
	if len(names) == 0 {
		return "", false
	}
	for _, n := range names {
		if n != names[0] || !strings.HasPrefix(n, AWSManagedPrefixList) {
			return "", false
		}
	}
	return names[0], true
}

// managedPrefixListAttrs are the attributes of the aws_ec2_managed_prefix_list
// data source.
var managedPrefixListAttrs = []string{"address_family", "arn", "entries", "filter", "id", "max_entries", "name", "owner_id", "region", "tags", "version"}

// azureSubnetAttrs are the attributes of the azurerm_subnet data source.
var azureSubnetAttrs = []string{"address_prefix", "address_prefixes", "default_outbound_access_enabled",
	"enforce_private_link_endpoint_network_policies", "enforce_private_link_service_network_policies", "id", "name",
	"network_security_group_id", "private_endpoint_network_policies", "private_endpoint_network_policies_enabled",
	"private_link_service_network_policies_enabled", "resource_group_name", "route_table_id", "service_endpoints",
	"timeouts", "virtual_network_name"}

// inlineSubnetLookup returns the ID of the subnet an azurerm_subnet lookup
// finds when it names, by name and virtual_network_name, a subnet written
// inside a virtual network of this module (InlineSubnetID): exactly one
// such subnet, in a network of that name whose resource group, when both
// are known, is the lookup's. Azure knows a subnet by those names, so the
// lookup is that subnet; a lookup of a subnet made elsewhere stays unknown.
func inlineSubnetLookup(d *resBlock, ctx *hcl.EvalContext) (string, bool) {
	str := func(e hcl.Expression) (string, bool) { return knownString(e, ctx) }
	name, ok1 := str(d.body.attrs["name"])
	vnet, ok2 := str(d.body.attrs["virtual_network_name"])
	rg, rgKnown := str(d.body.attrs["resource_group_name"])
	if !ok1 || !ok2 {
		return "", false
	}
	var found []string
	var visit func(v cty.Value)
	visit = func(v cty.Value) {
		v, _ = v.Unmark()
		if !v.IsKnown() || v.IsNull() {
			return
		}
		if _, ok := objString(v, "id"); ok && v.Type().HasAttribute("subnet") {
			if n, ok := objString(v, "name"); !ok || n != vnet {
				return
			}
			if g, ok := objString(v, "resource_group_name"); ok && rgKnown && !strings.EqualFold(g, rg) {
				return
			}
			sn, _ := v.GetAttr("subnet").Unmark()
			if !sn.IsKnown() || sn.IsNull() || !sn.CanIterateElements() {
				return
			}
			for it := sn.ElementIterator(); it.Next(); {
				_, s := it.Element()
				if n, ok := objString(s, "name"); ok && n == name {
					if id, ok := objString(s, "id"); ok {
						found = append(found, id)
					}
				}
			}
			return
		}
		if v.Type().IsObjectType() || v.Type().IsMapType() || v.Type().IsTupleType() || v.Type().IsListType() {
			for it := v.ElementIterator(); it.Next(); {
				_, x := it.Element()
				visit(x)
			}
		}
	}
	if vnets, ok := ctx.Variables["azurerm_virtual_network"]; ok {
		visit(vnets)
	}
	if len(found) != 1 {
		return "", false
	}
	return found[0], true
}

// securityGroupAttrs are the attributes of the aws_security_group data
// source.
var securityGroupAttrs = []string{"arn", "description", "filter", "id", "name", "region", "tags", "timeouts", "vpc_id"}

// idDataAttrs are the attributes of the data sources that look up a VPC, a
// subnet or a security group, each of which may name it by its id: one so
// named is that one, its ID the one given (lookedUp).
var idDataAttrs = map[string][]string{
	"aws_vpc":            vpcDataAttrs,
	"aws_subnet":         subnetsDataAttrs["aws_subnet"],
	"aws_security_group": securityGroupAttrs,
}

// securityGroupLookup returns the address of the security group an
// aws_security_group lookup finds when it names, by its name argument or
// group-name filter (with a vpc-id filter or vpc_id at most besides), a
// group this module makes: exactly one group of that name, in that VPC
// when both are known. A group's name is unique within its VPC, so the
// lookup is that group; a lookup by ID, tags or any other filter, or of a
// group made elsewhere, stays unknown.
func securityGroupLookup(d *resBlock, ctx *hcl.EvalContext) (string, bool) {
	known := func(e hcl.Expression) (cty.Value, bool) { return knownValue(e, ctx) }
	one := func(e hcl.Expression) (string, bool) {
		v, ok := known(e)
		if !ok || !v.CanIterateElements() || v.LengthInt() != 1 {
			return "", false
		}
		it := v.ElementIterator()
		it.Next()
		_, x := it.Element()
		if !x.Type().Equals(cty.String) {
			return "", false
		}
		return x.AsString(), true
	}
	if d.body.attrs["id"] != nil || d.body.attrs["tags"] != nil {
		return "", false
	}
	name, named := knownString(d.body.attrs["name"], ctx)
	vpc, vpcKnown := knownString(d.body.attrs["vpc_id"], ctx)
	if d.body.attrs["vpc_id"] != nil && !vpcKnown {
		return "", false
	}
	for _, b := range d.body.blocks {
		if b.typ != "filter" {
			continue
		}
		f, ok := knownString(b.body.attrs["name"], ctx)
		if !ok {
			return "", false
		}
		v, ok := one(b.body.attrs["values"])
		switch {
		case !ok || strings.ContainsAny(v, "*?"):
			return "", false
		case f == "group-name" && (!named || v == name):
			name, named = v, true
		case f == "vpc-id" && (!vpcKnown || v == vpc):
			vpc, vpcKnown = v, true
		default:
			return "", false // another filter: which group is found is AWS's answer
		}
	}
	if !named {
		return "", false
	}
	groups, ok := ctx.Variables["aws_security_group"]
	if groups, _ = groups.Unmark(); !ok || !groups.IsKnown() || !groups.Type().IsObjectType() {
		return "", false
	}
	var found []string
	for it := groups.ElementIterator(); it.Next(); {
		_, g := it.Element()
		for _, inst := range instancesOf(g) {
			n, ok := objString(inst, "name")
			if !ok {
				if !inst.Type().IsObjectType() {
					return "", false // instances not known: one may be named so
				}
				continue
			}
			if n != name {
				continue
			}
			if v, ok := objString(inst, "vpc_id"); ok && vpcKnown && v != vpc {
				continue
			}
			if id, ok := objString(inst, "id"); ok {
				found = append(found, id)
			}
		}
	}
	if len(found) != 1 {
		return "", false
	}
	return found[0], true
}

// instancesOf returns the instances of a resource's value: v itself when
// it is one object with an id (no count or for_each), else the elements of
// the tuple or object it is; one unknown value when v is not known.
func instancesOf(v cty.Value) []cty.Value {
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() {
		return []cty.Value{cty.DynamicVal}
	}
	if v.Type().IsObjectType() && v.Type().HasAttribute("id") {
		return []cty.Value{v}
	}
	if !v.CanIterateElements() {
		return []cty.Value{cty.DynamicVal}
	}
	var out []cty.Value
	for it := v.ElementIterator(); it.Next(); {
		_, x := it.Element()
		x, _ = x.Unmark()
		out = append(out, x)
	}
	return out
}

// dataValue is one data block's value: unknown, or a VPC, subnet or
// security group looked up by its ID, a KMS key's identity,
// an Amazon Linux 2023 AMI lookup's ID, an AWS-managed prefix list's name,
// an Azure subnet written inside a virtual network of the module, a
// security group the module makes looked up by name, the default VPC or
// its subnets, or an IAM policy document.
func (ev *evaluator) dataValue(in *instance, d *resBlock, ctx *hcl.EvalContext) cty.Value {
	if d.typ == "aws_iam_policy_document" {
		return ev.policyDocument(d, ctx)
	}
	if v, ok := defaultVPCValue(in, d, ctx); ok {
		return v
	}
	if attrs, ok := idDataAttrs[d.typ]; ok {
		if id, ok := knownString(d.body.attrs["id"], ctx); ok {
			return lookedUp(attrs, id)
		}
	}
	if d.typ == "azurerm_subnet" {
		if id, ok := inlineSubnetLookup(d, ctx); ok {
			return lookedUp(azureSubnetAttrs, id)
		}
	}
	if d.typ == "aws_security_group" {
		if id, ok := securityGroupLookup(d, ctx); ok {
			return lookedUp(securityGroupAttrs, id)
		}
	}
	if d.typ == "aws_ec2_managed_prefix_list" {
		if name, ok := managedPrefixListName(d, ctx); ok {
			obj := map[string]cty.Value{}
			for _, a := range managedPrefixListAttrs {
				obj[a] = cty.DynamicVal
			}
			obj["id"], obj["name"] = cty.StringVal(name), cty.StringVal(name)
			return cty.ObjectVal(obj)
		}
	}
	if attrs, ok := amiDataAttrs[d.typ]; ok && al2023Lookup(d, ctx) {
		obj := map[string]cty.Value{}
		for _, a := range attrs {
			obj[a] = cty.DynamicVal
		}
		if d.typ == "aws_ssm_parameter" {
			obj["value"], obj["insecure_value"] = cty.StringVal(AL2023AMI), cty.StringVal(AL2023AMI)
		} else {
			obj["id"], obj["image_id"], obj["imds_support"] = cty.StringVal(AL2023AMI), cty.StringVal(AL2023AMI), cty.StringVal("v2.0")
		}
		return cty.ObjectVal(obj)
	}
	if d.typ == "azurerm_resource_group" {
		// Looked up by its name, which it is.
		if name, ok := knownString(d.body.attrs["name"], ctx); ok {
			return cty.ObjectVal(map[string]cty.Value{"id": cty.DynamicVal, "name": cty.StringVal(name),
				"location": cty.DynamicVal, "managed_by": cty.DynamicVal, "tags": cty.DynamicVal, "timeouts": cty.DynamicVal})
		}
	}
	attrs, ok := kmsDataAttrs[d.typ]
	if !ok {
		return cty.DynamicVal
	}
	arg := "key_id"
	if d.typ == "aws_kms_alias" {
		arg = "name"
	}
	key, ok := knownString(d.body.attrs[arg], ctx)
	if !ok {
		return cty.DynamicVal
	}
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

// knownValue is e's value when it is known statically, wholly and not
// null (unmarked); false for a missing expression.
func knownValue(e hcl.Expression, ctx *hcl.EvalContext) (cty.Value, bool) {
	if e == nil {
		return cty.NilVal, false
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, false
	}
	v, _ = v.UnmarkDeep()
	return v, true
}

// objString is the string attribute k of object o when it is known and not
// null.
func objString(o cty.Value, k string) (string, bool) {
	if !o.Type().IsObjectType() || !o.Type().HasAttribute(k) {
		return "", false
	}
	v, _ := o.GetAttr(k).Unmark()
	if !v.IsKnown() || v.IsNull() || !v.Type().Equals(cty.String) {
		return "", false
	}
	return v.AsString(), true
}

// The default VPC's data attributes: aws_vpc's, and those of the lookups
// of subnets (aws_subnets, the older aws_subnet_ids, aws_subnet).
var (
	vpcDataAttrs = []string{"arn", "cidr_block", "cidr_block_associations", "default", "dhcp_options_id",
		"enable_dns_hostnames", "enable_dns_support", "enable_network_address_usage_metrics", "filter", "id",
		"instance_tenancy", "ipv6_association_id", "ipv6_cidr_block", "main_route_table_id", "owner_id", "region",
		"state", "tags", "timeouts"}
	subnetsDataAttrs = map[string][]string{
		"aws_subnets":    {"filter", "id", "ids", "region", "tags", "timeouts"},
		"aws_subnet_ids": {"filter", "id", "ids", "tags", "vpc_id"},
		"aws_subnet": {"arn", "assign_ipv6_address_on_creation", "availability_zone", "availability_zone_id",
			"available_ip_address_count", "cidr_block", "customer_owned_ipv4_pool", "default_for_az", "enable_dns64",
			"enable_lni_at_device_index", "enable_resource_name_dns_a_record_on_launch",
			"enable_resource_name_dns_aaaa_record_on_launch", "filter", "id", "ipv6_cidr_block",
			"ipv6_cidr_block_association_id", "ipv6_native", "map_customer_owned_ip_on_launch",
			"map_public_ip_on_launch", "outpost_arn", "owner_id", "private_dns_hostname_type_on_launch", "region",
			"state", "tags", "timeouts", "vpc_id"},
	}
)

// dataAddr is the address of data block typ.name of module instance in.
func dataAddr(in *instance, typ, name string) string {
	a := "data." + typ + "." + name
	if in.addr != "" {
		a = in.addr + "." + a
	}
	return a
}

// defaultVPCValue is the value of a lookup of the default VPC or of its
// subnets (defaultVPCLookup, defaultSubnetsLookup): the VPC's ID
// (DefaultVPCOf), range and main route table are known; a subnet lookup's
// IDs are not, but what takes them is a default subnet (recorded on in for
// sources: DefaultSubnetsOf), and so is its VPC. Their stand-ins are named
// by the data block's address, not an instance's: a lookup with count or
// for_each stays unknown.
func defaultVPCValue(in *instance, d *resBlock, ctx *hcl.EvalContext) (cty.Value, bool) {
	if d.body.attrs["count"] != nil || d.body.attrs["for_each"] != nil {
		return cty.NilVal, false
	}
	obj := map[string]cty.Value{}
	switch {
	case d.typ == "aws_vpc" && defaultVPCLookup(d, ctx):
		for _, a := range vpcDataAttrs {
			obj[a] = cty.DynamicVal
		}
		id := DefaultVPCOf(dataAddr(in, d.typ, d.name))
		obj["id"], obj["default"], obj["cidr_block"] = cty.StringVal(id), cty.True, cty.StringVal(DefaultVPCRange)
		obj["main_route_table_id"] = cty.StringVal(VPCDefaults(id)["main_route_table_id"])
	case subnetsDataAttrs[d.typ] != nil:
		vpc, ok := defaultSubnetsLookup(d, ctx, dataAddr(in, d.typ, d.name))
		if !ok {
			return cty.NilVal, false
		}
		for _, a := range subnetsDataAttrs[d.typ] {
			obj[a] = cty.DynamicVal
		}
		if d.typ == "aws_subnet" {
			obj["id"] = cty.UnknownVal(cty.String)
			obj["vpc_id"], obj["default_for_az"], obj["map_public_ip_on_launch"] = cty.StringVal(vpc), cty.True, cty.True
		} else {
			obj["ids"] = cty.UnknownVal(cty.List(cty.String))
		}
		if in.defaultSubnets == nil {
			in.defaultSubnets = map[string]bool{}
		}
		in.defaultSubnets[d.typ+"."+d.name] = true
	default:
		return cty.NilVal, false
	}
	return cty.ObjectVal(obj), true
}

// defaultVPCLookup reports whether an aws_vpc lookup finds the default VPC:
// default = true, which only narrows what else it says.
func defaultVPCLookup(d *resBlock, ctx *hcl.EvalContext) bool {
	v, ok := knownValue(d.body.attrs["default"], ctx)
	return ok && v.Type() == cty.Bool && v.True()
}

// defaultSubnetsLookup returns the ID of the default VPC (DefaultVPCOf) in
// which a lookup of subnets (aws_subnets, aws_subnet_ids, aws_subnet)
// finds its subnets, and whether it does: its VPC, by vpc_id or a vpc-id
// filter, is the default VPC, and what else it asks narrows only by zone
// or to the zones' default subnets (availability_zone, default_for_az, or
// filters availability-zone, availability-zone-id, default-for-az =
// true); or it asks for default subnets alone, which only the default
// VPC has (its ID is then DefaultVPCOf the lookup at addr). A default
// VPC's subnets are its default subnets unless a subnet was added to it;
// one selected by tags or any other filter may be such a subnet, and the
// lookup stays unknown.
func defaultSubnetsLookup(d *resBlock, ctx *hcl.EvalContext, addr string) (string, bool) {
	vpc, defaults := "", false
	isDefault := func(e hcl.Expression) bool {
		v, ok := knownValue(e, ctx)
		if !ok {
			return false
		}
		var ids []cty.Value
		switch {
		case v.Type() == cty.String:
			ids = []cty.Value{v}
		case v.CanIterateElements() && v.LengthInt() == 1:
			ids = v.AsValueSlice()
		}
		if len(ids) != 1 || ids[0].Type() != cty.String {
			return false
		}
		id := ids[0].AsString()
		if _, ok := DefaultVPCLookup(id); !ok || vpc != "" && vpc != id {
			return false
		}
		vpc = id
		return true
	}
	for name, e := range d.body.attrs {
		switch name {
		case "vpc_id":
			if d.typ == "aws_subnets" || !isDefault(e) {
				return "", false
			}
		case "default_for_az":
			if v, ok := knownValue(e, ctx); !ok || v.Type() != cty.Bool || v.False() {
				return "", false
			}
			defaults = true
		case "availability_zone", "availability_zone_id", "region", "timeouts", "provider", "depends_on":
		default:
			return "", false // by ID, range, tags or state: which subnet is found is AWS's answer
		}
	}
	for _, b := range d.body.blocks {
		if b.typ != "filter" {
			return "", false
		}
		f, ok := knownString(b.body.attrs["name"], ctx)
		if !ok {
			return "", false
		}
		switch f {
		case "vpc-id":
			if !isDefault(b.body.attrs["values"]) {
				return "", false
			}
		case "default-for-az", "defaultForAz":
			v, ok := knownValue(b.body.attrs["values"], ctx)
			if !ok || !v.CanIterateElements() || v.LengthInt() != 1 {
				return "", false
			}
			if x := v.AsValueSlice()[0]; x.Type() != cty.String || x.AsString() != "true" {
				return "", false
			}
			defaults = true
		case "availability-zone", "availability-zone-id", "availabilityZone":
		default:
			return "", false
		}
	}
	if vpc == "" && defaults {
		vpc = DefaultVPCOf(addr)
	}
	return vpc, vpc != ""
}

// lookedUp is a data source found by its lookup: its ID known, its other
// attributes not known statically.
func lookedUp(attrs []string, id string) cty.Value {
	obj := map[string]cty.Value{}
	for _, a := range attrs {
		obj[a] = cty.DynamicVal
	}
	obj["id"] = cty.StringVal(id)
	return cty.ObjectVal(obj)
}
