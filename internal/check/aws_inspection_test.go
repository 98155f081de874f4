package check

import (
	"strings"
	"testing"
)

// inspected is a VPC whose public subnet routes the internet to the
// endpoint of an inspecting appliance (ENDPOINT below: a Network
// Firewall's or a Gateway Load Balancer endpoint, both in the firewall
// subnet), whose subnet may route it on to the internet gateway
// (FIREWALL_ROUTE): an instance with a public address in the public
// subnet, its group admitting SSH from everywhere.
const inspected = `
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "g" {
  vpc_id = aws_vpc.v.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "firewall" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.3.0/24"
}
resource "aws_networkfirewall_firewall_policy" "p" {
  name = "p"
  firewall_policy {
    stateless_default_actions          = ["aws:forward_to_sfe"]
    stateless_fragment_default_actions = ["aws:forward_to_sfe"]
  }
}
resource "aws_networkfirewall_firewall" "fw" {
  name                = "fw"
  firewall_policy_arn = aws_networkfirewall_firewall_policy.p.arn
  vpc_id              = aws_vpc.v.id
  subnet_mapping {
    subnet_id = aws_subnet.firewall.id
  }
}
resource "aws_vpc_endpoint" "gwlb" {
  vpc_id            = aws_vpc.v.id
  service_name      = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
  vpc_endpoint_type = "GatewayLoadBalancer"
  subnet_ids        = [aws_subnet.firewall.id]
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.v.id
  route {
    cidr_block      = "0.0.0.0/0"
    vpc_endpoint_id = ENDPOINT
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table" "firewall" {
  vpc_id = aws_vpc.v.id
  FIREWALL_ROUTE
}
resource "aws_route_table_association" "firewall" {
  subnet_id      = aws_subnet.firewall.id
  route_table_id = aws_route_table.firewall.id
}
resource "aws_security_group" "web" {
  vpc_id = aws_vpc.v.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "web" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  vpc_security_group_ids      = [aws_security_group.web.id]
  associate_public_ip_address = true
}
`

// A subnet whose route to the internet goes through a Network Firewall
// endpoint (named through the firewall's status, by index or by zone) or
// a Gateway Load Balancer endpoint is public when the appliance's subnet
// routes on to the internet gateway: the instance is reached through the
// appliance, whose rules are not evaluated, so the finding is high and
// says so; the route's target is that endpoint, not any, and is not noted
// as such. When the appliance's subnet has no route to the gateway,
// nothing is reached.
func TestRouteThroughInspection(t *testing.T) {
	route := `route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.g.id
  }`
	for endpoint, appliance := range map[string]string{
		"tolist(aws_networkfirewall_firewall.fw.firewall_status[0].sync_states)[0].attachment[0].endpoint_id":                                            "aws_networkfirewall_firewall.fw",
		`{ for s in aws_networkfirewall_firewall.fw.firewall_status[0].sync_states : s.availability_zone => s.attachment[0].endpoint_id }["us-east-1a"]`: "aws_networkfirewall_firewall.fw",
		"aws_vpc_endpoint.gwlb.id": "aws_vpc_endpoint.gwlb",
	} {
		src := strings.Replace(inspected, "ENDPOINT", endpoint, 1)
		rep := checkSource(t, strings.Replace(src, "FIREWALL_ROUTE", route, 1))
		f := findingOn(rep, RuleExposedPort, "aws_instance.web")
		if f == nil {
			t.Errorf("%s: the instance behind %s is not reached", endpoint, appliance)
			continue
		}
		if f.Severity != High || !strings.Contains(f.Message, appliance) {
			t.Errorf("%s: %s %s: %s, want high, through %s", endpoint, f.RuleID, f.Severity, f.Message, appliance)
		}
		var hops []string
		for _, h := range f.Path {
			hops = append(hops, h.Addr)
		}
		if want := "aws_internet_gateway.g " + appliance + " aws_route_table.public aws_subnet.public"; !strings.Contains(strings.Join(hops, " "), want) {
			t.Errorf("%s: path %v, want it through %s", endpoint, hops, want)
		}
		for _, n := range activeOn(rep, RuleNotEvaluated, "aws_route_table.public") {
			if strings.Contains(n.Message, "any VPC endpoint") {
				t.Errorf("%s: the endpoint read as any: %s", endpoint, n.Message)
			}
		}
		rep = checkSource(t, strings.Replace(src, "FIREWALL_ROUTE", "", 1))
		if f := findingOn(rep, RuleExposedPort, "aws_instance.web"); f != nil {
			t.Errorf("%s: reached though the appliance's subnet has no route out: %s", endpoint, f.Message)
		}
	}
}

// TestRouteThroughSecondFirewallEndpoint checks that a Network Firewall
// mapping two subnets has two sync states, one endpoint each, so a route
// to the second (sync_states[*].attachment[0].endpoint_id)[1], as a
// distributed deployment writes one route table per zone, names the
// firewall and evaluates, where it was noted as an invalid index.
func TestRouteThroughSecondFirewallEndpoint(t *testing.T) {
	src := strings.Replace(inspected, "ENDPOINT", "(aws_networkfirewall_firewall.fw.firewall_status[0].sync_states[*].attachment[0].endpoint_id)[1]", 1)
	src = strings.Replace(src, "FIREWALL_ROUTE", `route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.g.id
  }`, 1)
	src = strings.Replace(src, `  subnet_mapping {
    subnet_id = aws_subnet.firewall.id
  }`, `  subnet_mapping {
    subnet_id = aws_subnet.firewall.id
  }
  subnet_mapping {
    subnet_id = aws_subnet.firewall_b.id
  }`, 1) + `
resource "aws_subnet" "firewall_b" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.4.0/24"
}
`
	rep := checkSource(t, src)
	for _, n := range activeOn(rep, RuleNotEvaluated, "aws_route_table.public") {
		t.Errorf("note on the route table: %s", n.Message)
	}
	f := findingOn(rep, RuleExposedPort, "aws_instance.web")
	if f == nil || f.Severity != High || !strings.Contains(f.Message, "aws_networkfirewall_firewall.fw") {
		t.Errorf("the instance behind the firewall's second endpoint: %+v", f)
	}
}
