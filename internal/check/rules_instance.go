package check

import (
	"fmt"
	"strings"

	"moat/internal/check/tf"
)

// instanceTypes are the resources that launch one EC2 instance each and
// share aws_instance's arguments.
var instanceTypes = []string{"aws_instance", "aws_spot_instance_request"}

// launchTemplate resolves the launch template a launch_template block (of
// an instance, an auto scaling group or its mixed instances policy) names.
// known is false when the block names a template the project does not
// hold or whose reference cannot be evaluated.
func (m *Model) launchTemplate(lt map[string]any) (t *tf.Resource, known bool) {
	if lt == nil {
		return nil, true
	}
	for _, k := range []string{"id", "launch_template_id", "name", "launch_template_name"} {
		if unknown(lt, k) {
			return nil, false
		}
		if v := str(lt, k); v != "" {
			if r := m.lookup(v); r != nil && r.Type == "aws_launch_template" {
				return r, true
			}
			return nil, false
		}
	}
	return nil, false
}

// asgTemplate is the launch template or launch configuration an auto
// scaling group launches from.
func (m *Model) asgTemplate(r *tf.Resource) (t *tf.Resource, known bool) {
	if lt := block(r.Values, "launch_template"); lt != nil {
		return m.launchTemplate(lt)
	}
	if lt := block(block(block(r.Values, "mixed_instances_policy"), "launch_template"), "launch_template_specification"); lt != nil {
		return m.launchTemplate(lt)
	}
	if unknown(r.Values, "launch_configuration") {
		return nil, false
	}
	if v := str(r.Values, "launch_configuration"); v != "" {
		if c := m.lookup(v); c != nil && c.Type == "aws_launch_configuration" {
			return c, true
		}
		return nil, false
	}
	return nil, true
}

// templatePublicIP reads what a launch template or launch configuration
// says of public addresses: said is false when it leaves the choice to the
// subnet.
func templatePublicIP(t *tf.Resource) (public, said bool) {
	if t.Type == "aws_launch_configuration" {
		if unknown(t.Values, "associate_public_ip_address") {
			return false, true
		}
		if has(t.Values, "associate_public_ip_address") {
			return boolean(t.Values, "associate_public_ip_address", false), true
		}
		return false, false
	}
	for _, ni := range blocks(t.Values, "network_interfaces") {
		if unknown(ni, "associate_public_ip_address") {
			said = true
			continue
		}
		// The provider takes "true", "false" or "" (the subnet decides).
		if v := str(ni, "associate_public_ip_address"); v != "" {
			said = true
			public = public || boolean(ni, "associate_public_ip_address", false)
		}
	}
	if has(t.Values, "network_interfaces") && str(block(t.Values, "network_interfaces"), "network_interface_id") != "" {
		said = true // an existing interface: no address is assigned at launch
	}
	return public, said
}

// templateInterface returns the network interface of launch template t
// (nil: none) that names a subnet, or nil: where what launches from it
// lands when it names no subnet itself.
func templateInterface(t *tf.Resource) map[string]any {
	if t == nil || t.Type != "aws_launch_template" {
		return nil
	}
	for _, ni := range blocks(t.Values, "network_interfaces") {
		if has(ni, "subnet_id") {
			return ni
		}
	}
	return nil
}

// launchedPublicIP is subnetsPublicIP for the subnets attr of vals names,
// or, when it names none, the subnet the network interface of launch
// template t names.
func (m *Model) launchedPublicIP(t *tf.Resource, vals map[string]any, attr string) (why string, assumed bool) {
	ni := templateInterface(t)
	if ni == nil || has(vals, attr) {
		return m.subnetsPublicIP(vals, attr)
	}
	if why, assumed = m.subnetsPublicIP(ni, "subnet_id"); why != "" {
		why = "the network interface of " + t.Address + " names the subnet: " + why
	}
	return why, assumed
}

// subnetsPublicIP says whether instances launched in the subnets refs
// name, without saying otherwise themselves, get a public address: a
// subnet of the project with map_public_ip_on_launch = true gives one.
// With no subnet at all (absent, not unknown), EC2 launches into a default
// subnet of the default VPC, and every default subnet maps public
// addresses. A subnet not known statically (a variable without a value, a
// subnet outside the scanned code) may be a default subnet or one that
// maps public addresses: the address is then assumed, and said so.
func (m *Model) subnetsPublicIP(vals map[string]any, attr string) (why string, assumed bool) {
	refs, _ := strs(vals, attr)
	for _, s := range m.subnetsOf(refs) {
		if why := s.mapsPublicIP(); why != "" {
			return "launched in " + s.Addr + ", " + why, false
		}
	}
	const maps = "it may be a default subnet or one with map_public_ip_on_launch = true: assumed to give a public address"
	unk, from := unknownRefs(vals, attr)
	if found, rest := m.defaultSubnetsFrom(from); unk && len(found) > 0 && len(rest) == 0 && !m.defaultSubnetsPrivate(found[0].VPC) {
		return "launched in " + found[0].Addr + ", " + found[0].mapsPublicIP(), false
	}
	if unk {
		maybe := m.subnetsFrom(from)
		if maybe == nil {
			return attr + " has a subnet not known statically: " + maps, true
		}
		for _, s := range maybe {
			if why := s.mapsPublicIP(); why != "" {
				return attr + " has a subnet not known statically: it may be " + s.Addr + ", " + why + ": assumed to give a public address", true
			}
		}
	}
	for _, ref := range refs {
		if ref != "" && m.subnets[m.addr(ref)] == nil {
			return fmt.Sprintf("subnet %q is not in the scanned code: %s", ref, maps), true
		}
	}
	if len(refs) == 0 && !unk {
		switch az := str(vals, "availability_zone"); {
		case m.defaultAZs[az] == "off":
			return "", false // the default subnet of its zone maps none
		case m.defaultAZs[az] == "unknown":
			return "no subnet is named: it is launched in the default subnet of " + az + ", whose map_public_ip_on_launch is not known statically: assumed to give a public address", true
		case az == "" && m.defaultSubnetsPrivate(nil):
			return "no subnet is named: it is launched in a default subnet of the default VPC, in a zone AWS picks, and the project keeps only some default subnets from mapping public addresses: assumed to give one, as AWS makes default subnets", true
		}
		return "no subnet is named: it is launched in a default subnet of the default VPC, and default subnets give every instance a public address", false
	}
	return "", false
}

// eipOn says an Elastic IP is associated with the instance or interface
// ref names, or "".
func (m *Model) eipOn(ref string) string {
	if m.eips[m.addr(ref)] {
		return "an Elastic IP is associated with " + m.addr(ref)
	}
	return ""
}

// instancePublicIP says why an instance (or spot request) gets a public
// address, or "" when it gets none or that cannot be told, in EC2's order:
// an Elastic IP on it or on an interface it attaches; its own
// associate_public_ip_address; an existing interface attached at launch
// (which gets none); its launch template's network interfaces; the subnet's
// map_public_ip_on_launch (its own, else its template's interface's); the
// default VPC when no subnet is named. A template not known statically may
// say anything: the subnet's address is then assumed. byTemplate
// is set when the launch template decides (it is reported itself); assumed
// when the subnet is not known statically and may give the address
// (subnetsPublicIP).
func (m *Model) instancePublicIP(r *tf.Resource) (why string, byTemplate, assumed bool) {
	if why := m.eipOn(r.Address); why != "" {
		return why, false, false
	}
	for _, ni := range blocks(r.Values, "network_interface") {
		if why := m.eipOn(str(ni, "network_interface_id")); why != "" {
			return why, false, false
		}
	}
	switch {
	case unknown(r.Values, "associate_public_ip_address"):
		return "", false, false
	case has(r.Values, "associate_public_ip_address"):
		if boolean(r.Values, "associate_public_ip_address", false) {
			return "associate_public_ip_address = true", false, false
		}
		return "", false, false
	case has(r.Values, "network_interface"):
		return "", false, false // attached interfaces get no address at launch
	}
	t, known := m.launchTemplate(block(r.Values, "launch_template"))
	if !known {
		return m.templateNotKnownPublicIP(r.Values, "subnet_id")
	}
	if why, decided := templateDecides(t); decided {
		return why, why != "", false
	}
	why, assumed = m.launchedPublicIP(t, r.Values, "subnet_id")
	return why, false, assumed
}

// templateNotKnown is said of what launches from a launch template or
// configuration not known statically (a variable without a value, one
// made elsewhere).
const templateNotKnown = "launch template not known statically"

// templateNotKnownPublicIP is instancePublicIP for what launches from a
// launch template not known statically, which may say anything of public
// addresses: it may leave the choice to the subnet, whose public address
// (subnetsPublicIP) is then assumed.
func (m *Model) templateNotKnownPublicIP(vals map[string]any, attr string) (why string, byTemplate, assumed bool) {
	if why, _ := m.subnetsPublicIP(vals, attr); why != "" {
		return templateNotKnown + ", which may leave the public address to the subnet: " + why, false, true
	}
	return "", false, false
}

// templateDecides says whether a launch template or configuration (nil:
// none) decides the public address of what it launches: it says so in its
// network interfaces. A subnet it names leaves the choice to that subnet
// (launchedPublicIP).
func templateDecides(t *tf.Resource) (why string, decided bool) {
	if t == nil {
		return "", false
	}
	public, said := templatePublicIP(t)
	switch {
	case said && public:
		return "associate_public_ip_address = true (launch template " + t.Address + ")", true
	case said:
		return "", true
	}
	return "", false
}

// asgPublicIP is instancePublicIP for the instances of an auto scaling
// group: its launch template or configuration, then its subnets.
func (m *Model) asgPublicIP(r *tf.Resource) (why string, byTemplate, assumed bool) {
	t, known := m.asgTemplate(r)
	if !known {
		return m.templateNotKnownPublicIP(r.Values, "vpc_zone_identifier")
	}
	if t == nil {
		return "", false, false
	}
	if why, decided := templateDecides(t); decided {
		return why, why != "", false
	}
	why, assumed = m.launchedPublicIP(t, r.Values, "vpc_zone_identifier")
	return why, false, assumed
}

// publicIPRules reports instances, launch templates, launch configurations,
// auto scaling groups, Elastic Beanstalk environments and subnets that give
// instances public addresses
// (AWS-EC2-001). An instance or group whose template decides is not
// reported beside the template, nor one whose subnet is not known
// statically: that it gets a public address is assumed, not written.
func (m *Model) publicIPRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, typ := range instanceTypes {
		for _, r := range byType[typ] {
			if why, byTemplate, assumed := m.instancePublicIP(r); why != "" && !byTemplate && !assumed {
				fs.add(RulePublicIP, r, nil, "%s", why)
			}
		}
	}
	for _, r := range byType["aws_autoscaling_group"] {
		if why, byTemplate, assumed := m.asgPublicIP(r); why != "" && !byTemplate && !assumed {
			fs.add(RulePublicIP, r, nil, "its instances get public addresses: %s", why)
		}
	}
	for _, typ := range []string{"aws_launch_template", "aws_launch_configuration"} {
		for _, r := range byType[typ] {
			if public, _ := templatePublicIP(r); public {
				fs.add(RulePublicIP, r, nil, "associate_public_ip_address = true: every instance launched from it gets a public address")
			}
		}
	}
	for _, r := range byType["aws_elastic_beanstalk_environment"] {
		// Its launch configuration is the setting, written here.
		if pub := readEBSettings(r).list("aws:ec2:vpc", "AssociatePublicIpAddress"); len(pub) > 0 && strings.EqualFold(pub[0], "true") {
			fs.add(RulePublicIP, r, nil, "setting AssociatePublicIpAddress = true: every instance of the environment gets a public address")
		}
	}
	attached := map[string]bool{}
	for _, typ := range instanceTypes {
		for _, r := range byType[typ] {
			for _, ni := range blocks(r.Values, "network_interface") {
				attached[m.addr(str(ni, "network_interface_id"))] = true
			}
		}
	}
	for _, r := range byType["aws_network_interface_attachment"] {
		attached[m.addr(str(r.Values, "network_interface_id"))] = true
	}
	for _, r := range byType["aws_network_interface"] {
		if why := m.eipOn(r.Address); why != "" && !attached[r.Address] {
			fs.add(RulePublicIP, r, nil, "%s", why)
		}
	}
	for _, r := range append(byType["aws_subnet"], byType["aws_default_subnet"]...) {
		switch {
		case boolean(r.Values, "map_public_ip_on_launch", false):
			fs.add(RulePublicIP, r, nil, "map_public_ip_on_launch = true: every instance launched in the subnet gets a public address unless it says otherwise")
		case r.Type == "aws_default_subnet" && !has(r.Values, "map_public_ip_on_launch"):
			fs.add(RulePublicIP, r, nil, "a default subnet, which maps a public address to every instance unless map_public_ip_on_launch = false, as AWS made it")
		}
	}
}

// imdsDefaults is what the project sets as the account's and region's
// metadata defaults (aws_ec2_instance_metadata_defaults), which apply to
// every instance launched without its own metadata options.
type imdsDefaults struct{ tokens, endpoint string }

// imdsRules reports instances, launch templates and launch configurations
// whose metadata service answers IMDSv1 (AWS-EC2-002). An option left
// unset takes, in EC2's order, the launch template's value, the account's
// default (aws_ec2_instance_metadata_defaults), then the AMI's
// (imds_support = "v2.0" makes tokens required); without any of them
// IMDSv1 answers. An AMI the project does not build is not known to
// require v2, so an instance of it that sets nothing is reported, with
// the reason; but a lookup that can only find Amazon's Amazon Linux 2023
// images is (see tf.AL2023AMI).
func (m *Model) imdsRules(byType map[string][]*tf.Resource, fs *findings) {
	var def imdsDefaults
	for _, r := range byType["aws_ec2_instance_metadata_defaults"] {
		def.tokens, def.endpoint = str(r.Values, "http_tokens"), str(r.Values, "http_endpoint")
		if unknown(r.Values, "http_tokens") {
			def.tokens = "unknown"
		}
	}
	amiV2 := func(ref string) bool {
		if ref == tf.AL2023AMI {
			return true
		}
		a := m.lookup(ref)
		return a != nil && strings.HasPrefix(a.Type, "aws_ami") && str(a.Values, "imds_support") == "v2.0"
	}
	// judge reports r unless its metadata options, or what fills the
	// unset ones, require tokens or turn the service off.
	judge := func(r *tf.Resource, md map[string]any, ami string, from *tf.Resource) {
		if unknown(md, "http_tokens") || unknown(md, "http_endpoint") {
			return
		}
		tokens, endpoint := str(md, "http_tokens"), str(md, "http_endpoint")
		if from != nil {
			fmd := block(from.Values, "metadata_options")
			if unknown(fmd, "http_tokens") || unknown(fmd, "http_endpoint") {
				return
			}
			if tokens == "" {
				tokens = str(fmd, "http_tokens")
			}
			if endpoint == "" {
				endpoint = str(fmd, "http_endpoint")
			}
		}
		if endpoint == "" && def.endpoint != "no-preference" {
			endpoint = def.endpoint
		}
		if strings.EqualFold(endpoint, "disabled") || strings.EqualFold(tokens, "required") {
			return
		}
		if tokens != "" {
			fs.add(RuleIMDSv1, r, nil, "metadata_options.http_tokens = %q: IMDSv1 answers unauthenticated requests", tokens)
			return
		}
		switch {
		case def.tokens == "required" || def.tokens == "unknown":
			return
		case amiV2(ami):
			return
		}
		fs.add(RuleIMDSv1, r, nil, "metadata_options.http_tokens is not set, and neither the account default (aws_ec2_instance_metadata_defaults) nor the AMI (imds_support = \"v2.0\") is known to require tokens: IMDSv1 answers")
	}
	for _, typ := range instanceTypes {
		for _, r := range byType[typ] {
			t, known := m.launchTemplate(block(r.Values, "launch_template"))
			md := block(r.Values, "metadata_options")
			if !known && (md == nil || str(md, "http_tokens") == "") {
				continue // the template outside the project may set them
			}
			ami := str(r.Values, "ami")
			if t != nil {
				if md == nil || str(md, "http_tokens") == "" && str(md, "http_endpoint") == "" {
					continue // the template's options apply, and it is checked itself
				}
				if ami == "" {
					ami = str(t.Values, "image_id")
				}
			}
			judge(r, md, ami, t)
		}
	}
	for _, r := range byType["aws_launch_template"] {
		judge(r, block(r.Values, "metadata_options"), str(r.Values, "image_id"), nil)
	}
	for _, r := range byType["aws_launch_configuration"] {
		judge(r, block(r.Values, "metadata_options"), str(r.Values, "image_id"), nil)
	}
}
