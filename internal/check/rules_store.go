package check

import (
	"fmt"
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
			"An instance, auto scaling group, launch template or launch configuration gets an address on the internet, and only its security groups stand in the way. EC2's order is followed: an Elastic IP (aws_eip, aws_eip_association) on the instance or its interface; associate_public_ip_address on the instance or its launch template's network interface; an existing network interface attached at launch gets none; otherwise the subnet's map_public_ip_on_launch, and with no subnet named, a default subnet of the default VPC, which gives one (unless the project manages a default subnet that maps none). A subnet with map_public_ip_on_launch = true, and a default subnet that does not set it false, is reported too. A subnet or template outside the scanned code is not guessed at.",
			"Launch instances in private subnets without public addresses (map_public_ip_on_launch = false, associate_public_ip_address = false) and reach them through a load balancer, the moat gateway or SSM Session Manager; give public addresses to load balancers and NAT gateways only."},
		{RuleIMDSv1, Medium, "Instance metadata service v1 allowed",
			"The instance metadata service answers unauthenticated GET requests (IMDSv1): a server-side request forgery in the workload reads the instance role's credentials. Tokens are required when the instance (or spot request, launch template, launch configuration) sets metadata_options.http_tokens = \"required\" or turns the endpoint off; an option it leaves unset takes its launch template's, then the account default (aws_ec2_instance_metadata_defaults), then its AMI's (imds_support = \"v2.0\"). An AMI the scanned code does not build is not known to require tokens.",
			"Set metadata_options { http_tokens = \"required\" } (and http_put_response_hop_limit = 1, or 2 for containers) on instances and launch templates, or aws_ec2_instance_metadata_defaults { http_tokens = \"required\" } for the account and region."},
		{RuleDefaultSGOpen, Medium, "Default security group allows traffic",
			"The VPC's default security group has rules: every resource launched without a group lands in it and gets that traffic.",
			"Declare aws_default_security_group for the VPC with no ingress and no egress blocks, and attach explicit groups to every resource."},
		{RuleLateral, High, "Admin or data-store port reachable from a whole other network",
			"An SSH, RDP, database, cache or cluster-store port is reachable from the entire address range of another VPC over peering or a transit gateway, or from the range routed to a site-to-site VPN (on a VPN gateway, or on a transit gateway, where every range the subnet's table sends to it but an attached VPC's and the internet at large is read as the VPN's): one compromised host there can pivot into this network.",
			"Admit the port only from the security groups or the narrow ranges of the hosts that need it (a bastion, an application tier), not the peer's whole CIDR."},
		{RuleWorldOpenOther, Medium, "Port open to the whole internet",
			"A security group rule admits the internet at large (every internet address, or public ranges wider than a /8 of IPv4 or a /13 of IPv6, as for AWS-NET-003; split ranges included) on ports other than 80, 443 and the admin, data-store and well-known service ports AWS-NET-003 names: whatever listens there (a debug endpoint, an application port, a forgotten service) faces the internet. Severity follows what is proven, one step below AWS-NET-003: what listens there is an application's, an exposure rather than a known-dangerous service, so a path proven from the internet at large is high and anything less medium; critical is kept for the ports AWS-NET-003 names, and for a network load balancer's listener port that forwards to one of them on its targets (the finding names it).",
			"Put the service behind a load balancer on 443, or admit the port from known ranges or security groups only."},
		{RuleTrailCloudWatch, Low, "CloudTrail trail not delivered to CloudWatch Logs",
			"A trail writes only to S3: without cloud_watch_logs_group_arn and cloud_watch_logs_role_arn no metric filter or alarm sees root logins, policy changes or disabled logging as they happen.",
			"Set cloud_watch_logs_group_arn (the log group's ARN with :*) and cloud_watch_logs_role_arn to a role CloudTrail can assume to write there, and add metric filters and alarms for the events that matter."},
		{RulePlainListener, Medium, "Load balancer listener without TLS",
			"A classic load balancer listener takes plain HTTP from clients, or a TCP listener of a classic or network load balancer, which passes bytes through unread, is on the well-known port of a plaintext protocol (80 or 8080, HTTP's; 21, FTP's; 23, Telnet's; a port not known statically is read as 80) and forwards to targets not on a TLS port (443, 8443; a classic listener's instance_protocol SSL counts too): what it carries is read from the port, so traffic and credentials cross the network in the clear. TCP on 443, or to a target on 443, is TLS passed through.",
			"Listen with HTTPS or SSL and a certificate, and redirect plain HTTP to HTTPS."},
	}
}

// instanceRules checks default security groups and classic load balancer
// listeners.
func instanceRules(byType map[string][]*tf.Resource, fs *findings) {
	for _, r := range byType["aws_default_security_group"] {
		if n := len(blocks(r.Values, "ingress")) + len(blocks(r.Values, "egress")); n > 0 {
			fs.add(RuleDefaultSGOpen, r, nil, "the default security group has %s", plural(n, "rule", "rules"))
		} else if blocksUnknown(r.Values, "ingress") || blocksUnknown(r.Values, "egress") {
			fs.add(RuleDefaultSGOpen, r, nil, "the default security group may have rules: they are not known statically")
		}
	}
	for _, r := range byType["aws_elb"] {
		for _, l := range blocks(r.Values, "listener") {
			switch p := strings.ToUpper(str(l, "lb_protocol")); p {
			case "HTTP":
				port := fmt.Sprint(num(l, "lb_port", 0))
				if unknown(l, "lb_port") {
					port = "(not known statically)"
				}
				fs.add(RulePlainListener, r, nil, "listener on port %s takes %s in the clear", port, p)
			case "TCP":
				tls := strings.EqualFold(str(l, "instance_protocol"), "SSL") || tlsPorts[num(l, "instance_port", 0)]
				if why := plainTCP(l, "lb_port", tls); why != "" {
					fs.add(RulePlainListener, r, nil, "%s", why)
				}
			}
		}
	}
}

// plaintextPorts are the well-known ports of protocols that speak in the
// clear: a TCP listener, which passes bytes through unread, on one of
// them is read from the port as carrying that protocol.
var plaintextPorts = map[int]string{21: "FTP", 23: "Telnet", 80: "HTTP", 8080: "HTTP"}

// tlsPorts are the ports a target speaks TLS on: a TCP listener that
// forwards to one carries TLS, whatever its own port.
var tlsPorts = map[int]bool{443: true, 8443: true}

// plainTCP says why a TCP listener (its port in l's attribute k) carries
// a plaintext protocol, as read from its port, unless it forwards to a
// target that speaks TLS (tls); "" when its port is no plaintext
// protocol's. A port not known statically is read as HTTP's.
func plainTCP(l map[string]any, k string, tls bool) string {
	if tls {
		return ""
	}
	if unknown(l, k) {
		return "TCP listener's port not known statically: read as 80, HTTP's, passing plain HTTP through in the clear"
	}
	port := num(l, k, 0)
	if name, ok := plaintextPorts[port]; ok {
		return fmt.Sprintf("TCP listener on port %d, %s's: read from the port as plain %s, passed through in the clear (TLS would be on 443 or to a target on 443)", port, name, name)
	}
	return ""
}
