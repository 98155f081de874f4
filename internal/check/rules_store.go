package check

import (
	"strings"

	"moat/internal/check/tf"
)

// Rule IDs of the configuration rules scanners are expected to cover.
const (
	RulePublicIP      = "AWS-EC2-001"
	RuleIMDSv1        = "AWS-EC2-002"
	RuleDefaultSGOpen = "AWS-NET-009"
	RuleLateral       = "AWS-NET-010"
	RulePlainListener = "AWS-LB-003"
	// RuleTrailCloudWatch is a trail that does not deliver to CloudWatch
	// Logs, where metric filters and alarms watch it.
	RuleTrailCloudWatch = "AWS-LOG-006"
	// RuleWorldOpenOther is AWS-NET-003's counterpart for the ports no
	// known service uses.
	RuleWorldOpenOther = "AWS-NET-011"
)

func storeRules() []Rule {
	return []Rule{
		{RulePublicIP, Medium, "Instance, launch template or subnet gives a public IP address",
			"An instance, launch template or launch configuration sets associate_public_ip_address = true, or a subnet sets map_public_ip_on_launch = true: every instance gets an address on the internet, and only its security groups stand in the way.",
			"Launch instances in private subnets without public addresses (map_public_ip_on_launch = false) and reach them through a load balancer, the moat gateway or SSM Session Manager; give public addresses to load balancers and NAT gateways only."},
		{RuleIMDSv1, Medium, "Instance metadata service v1 allowed",
			"metadata_options does not set http_tokens = \"required\", so the instance metadata service answers unauthenticated GET requests: a server-side request forgery in the workload reads the instance role's credentials.",
			"Set metadata_options { http_tokens = \"required\" } (and http_put_response_hop_limit = 1 or 2) on instances and launch templates."},
		{RuleDefaultSGOpen, Medium, "Default security group allows traffic",
			"The VPC's default security group has rules: every resource launched without a group lands in it and gets that traffic.",
			"Declare aws_default_security_group for the VPC with no ingress and no egress blocks, and attach explicit groups to every resource."},
		{RuleLateral, High, "Admin or data-store port reachable from a whole other network",
			"An SSH, RDP, database, cache or cluster-store port is reachable from the entire address range of another VPC over peering, a transit gateway or a VPN: one compromised host there can pivot into this network.",
			"Admit the port only from the security groups or the narrow ranges of the hosts that need it (a bastion, an application tier), not the peer's whole CIDR."},
		{RuleWorldOpenOther, Medium, "Port open to the whole internet",
			"A security group rule admits every internet address (IPv4 or IPv6, split ranges included) on ports other than 80, 443 and the admin, data-store and well-known service ports AWS-NET-003 names: whatever listens there (a debug endpoint, an application port, a forgotten service) faces the internet. Severity follows what is proven, as for AWS-NET-003.",
			"Put the service behind a load balancer on 443, or admit the port from known ranges or security groups only."},
		{RuleTrailCloudWatch, Low, "CloudTrail trail not delivered to CloudWatch Logs",
			"A trail writes only to S3: without cloud_watch_logs_group_arn and cloud_watch_logs_role_arn no metric filter or alarm sees root logins, policy changes or disabled logging as they happen.",
			"Set cloud_watch_logs_group_arn (the log group's ARN with :*) and cloud_watch_logs_role_arn to a role CloudTrail can assume to write there, and add metric filters and alarms for the events that matter."},
		{RulePlainListener, Medium, "Load balancer listener without TLS",
			"A classic load balancer listener takes plain HTTP or TCP from clients, so traffic and credentials cross the network in the clear.",
			"Listen with HTTPS or SSL and a certificate, and redirect plain HTTP to HTTPS."},
	}
}

// instanceRules checks public addresses and the metadata service.
func instanceRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, typ := range []string{"aws_instance", "aws_launch_template", "aws_launch_configuration"} {
		for _, r := range byType[typ] {
			vals := r.Values
			if typ == "aws_launch_template" {
				vals = block(r.Values, "network_interfaces")
			}
			if vals != nil && boolean(vals, "associate_public_ip_address", false) {
				fs.add(RulePublicIP, r, nil, "associate_public_ip_address = true")
			}
			md := block(r.Values, "metadata_options")
			if md != nil && unknown(md, "http_tokens") {
				continue
			}
			if md == nil || !strings.EqualFold(str(md, "http_tokens"), "required") {
				if md != nil && strings.EqualFold(str(md, "http_endpoint"), "disabled") {
					continue
				}
				fs.add(RuleIMDSv1, r, nil, "metadata_options.http_tokens is not \"required\": IMDSv1 answers")
			}
		}
	}
	for _, r := range byType["aws_subnet"] {
		if boolean(r.Values, "map_public_ip_on_launch", false) {
			fs.add(RulePublicIP, r, nil, "map_public_ip_on_launch = true: every instance launched in the subnet gets a public address unless it says otherwise")
		}
	}
	for _, r := range byType["aws_default_security_group"] {
		if n := len(blocks(r.Values, "ingress")) + len(blocks(r.Values, "egress")); n > 0 {
			fs.add(RuleDefaultSGOpen, r, nil, "the default security group has %s", plural(n, "rule", "rules"))
		}
	}
	for _, r := range byType["aws_elb"] {
		for _, l := range blocks(r.Values, "listener") {
			if p := strings.ToUpper(str(l, "lb_protocol")); p == "HTTP" || p == "TCP" {
				fs.add(RulePlainListener, r, nil, "listener on port %d takes %s in the clear", num(l, "lb_port", 0), p)
			}
		}
	}
}
