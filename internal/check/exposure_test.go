package check

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// awsPublicBase is a VPC with a subnet routed to an internet gateway and an
// instance with a public address in it, behind the security group "app";
// tests add the group.
const awsPublicBase = `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_instance" "app" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  vpc_security_group_ids      = [aws_security_group.app.id]
  associate_public_ip_address = true
}
`

// TestAWSExposedPortsGrouped checks the AWS side of the grouping and grading
// of internet exposures: an instance's admin ports reached from the same
// addresses make one AWS-NET-001 finding, critical from the whole internet,
// medium and naming the range from one office /24, and the ports reached
// from different addresses make a finding each; an EKS endpoint limited to
// an office range is medium, one left open to every address critical.
func TestAWSExposedPortsGrouped(t *testing.T) {
	sg := func(rules ...[3]string) string {
		s := "\nresource \"aws_security_group\" \"app\" {\n  vpc_id = aws_vpc.main.id\n"
		for _, r := range rules {
			s += "  ingress {\n    from_port = " + r[0] + "\n    to_port = " + r[1] + "\n    protocol = \"tcp\"\n    cidr_blocks = [\"" + r[2] + "\"]\n  }\n"
		}
		return s + "}\n"
	}
	type want struct {
		sev  Severity
		text string
	}
	for _, tc := range []struct {
		name, src, addr string
		want            []want
	}{
		{"all ports from the internet", awsPublicBase + sg([3]string{"0", "65535", "0.0.0.0/0"}), "aws_instance.app",
			[]want{{Critical, "tcp 22 (SSH), 23 (Telnet), 135 (MS RPC)"}}},
		{"ssh and rdp from an office", awsPublicBase + sg([3]string{"22", "22", "198.51.100.0/24"}, [3]string{"3389", "3389", "198.51.100.0/24"}), "aws_instance.app",
			[]want{{Medium, "tcp 22 (SSH), 3389 (RDP) are reachable from the internet (198.51.100.0/24)"}}},
		{"ssh from an office, winrm from everywhere", awsPublicBase + sg([3]string{"22", "22", "198.51.100.0/24"}, [3]string{"5985", "5986", "0.0.0.0/0"}), "aws_instance.app",
			[]want{{Medium, "tcp 22 (SSH) is reachable from the internet (198.51.100.0/24)"}, {Critical, "tcp 5985-5986 (WinRM) are reachable from the internet (every IPv4 internet address)"}}},
		{"eks endpoint from an office", `
resource "aws_eks_cluster" "main" {
  name = "main"
  vpc_config {
    subnet_ids          = ["subnet-1"]
    public_access_cidrs = ["198.51.100.0/24"]
  }
}`, "aws_eks_cluster.main", []want{{Medium, "tcp 443 (Kubernetes API) is reachable from the internet (198.51.100.0/24)"}}},
		{"eks endpoint open", `
resource "aws_eks_cluster" "main" {
  name = "main"
  vpc_config {
    subnet_ids = ["subnet-1"]
  }
}`, "aws_eks_cluster.main", []want{{High, "tcp 443 (Kubernetes API) is reachable from the internet (every IPv4 internet address); high, not critical"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, tc.src), RuleExposedPort, tc.addr)
			if len(got) != len(tc.want) {
				t.Fatalf("want %d %s on %s, got %d: %+v", len(tc.want), RuleExposedPort, tc.addr, len(got), got)
			}
			for _, w := range tc.want {
				found := false
				for _, f := range got {
					if f.Severity == w.sev && strings.Contains(f.Message, w.text) {
						found = true
					}
				}
				if !found {
					t.Errorf("no %v finding holding %q in %+v", w.sev, w.text, got)
				}
			}
		})
	}
}

// TestGroupedFindingPaths checks that a finding grouping several ports
// shows each port's path: two groups that admit SSH and RDP make one
// AWS-NET-001 finding whose text, explanation and JSON give the path of
// each port through its own group; ports admitted by one group share a line.
func TestGroupedFindingPaths(t *testing.T) {
	rule := func(name, port string) string {
		return "\nresource \"aws_security_group\" \"" + name + "\" {\n  vpc_id = aws_vpc.main.id\n  ingress {\n    from_port = " + port +
			"\n    to_port = " + port + "\n    protocol = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n}\n"
	}
	src := strings.Replace(awsPublicBase, "[aws_security_group.app.id]", "[aws_security_group.app.id, aws_security_group.rdp.id]", 1) +
		rule("app", "22") + rule("rdp", "3389")
	rep := checkSource(t, src)
	got := activeOn(rep, RuleExposedPort, "aws_instance.app")
	if len(got) != 1 || len(got[0].Paths) != 2 {
		t.Fatalf("want one %s with two port paths, got %+v", RuleExposedPort, got)
	}
	f := got[0]
	for i, want := range []struct{ ports, sg string }{{"tcp 22 (SSH)", "aws_security_group.app"}, {"tcp 3389 (RDP)", "aws_security_group.rdp"}} {
		pp := f.Paths[i]
		if pp.Ports != want.ports || !strings.Contains(pathLine(pp.Path), want.sg) {
			t.Errorf("path %d = %s: %s, want %s through %s", i, pp.Ports, pathLine(pp.Path), want.ports, want.sg)
		}
	}
	var text, explain, js bytes.Buffer
	if err := Write(&text, rep, "text"); err != nil {
		t.Fatal(err)
	}
	if err := Explain(&explain, rep, f.ID()); err != nil {
		t.Fatal(err)
	}
	if err := Write(&js, rep, "json"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path for tcp 22 (SSH): internet → aws_internet_gateway.main → aws_route_table.public → aws_subnet.public → default network ACL of aws_vpc.main allows all → aws_security_group.app → aws_instance.app",
		"path for tcp 3389 (RDP): internet → aws_internet_gateway.main → aws_route_table.public → aws_subnet.public → default network ACL of aws_vpc.main allows all → aws_security_group.rdp → aws_instance.app"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(explain.String(), "path for tcp 3389 (RDP):") || !strings.Contains(explain.String(), "aws_security_group.rdp ingress[0] allows tcp 3389") {
		t.Errorf("explanation lacks the RDP path:\n%s", explain.String())
	}
	if !strings.Contains(js.String(), `"ports": "tcp 3389 (RDP)"`) {
		t.Errorf("JSON lacks the RDP path:\n%s", js.String())
	}

	// One group admitting both: the ports' paths cross the same resources
	// and share one line.
	text.Reset()
	src = awsPublicBase + "\nresource \"aws_security_group\" \"app\" {\n  vpc_id = aws_vpc.main.id\n" +
		"  ingress {\n    from_port = 22\n    to_port = 22\n    protocol = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n" +
		"  ingress {\n    from_port = 3389\n    to_port = 3389\n    protocol = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n}\n"
	if err := Write(&text, checkSource(t, src), "text"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "path for") || !strings.Contains(text.String(), "path: internet → aws_internet_gateway.main") {
		t.Errorf("want one path line for both ports:\n%s", text.String())
	}
}

// TestLateralFindingPaths checks that a lateral-movement finding grouping
// several ports gives each port's path, through the group that admits it.
func TestLateralFindingPaths(t *testing.T) {
	b, err := os.ReadFile("testdata/projects/peered/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(b), "vpc_security_group_ids = [aws_security_group.ssh_from_dev.id]",
		"vpc_security_group_ids = [aws_security_group.ssh_from_dev.id, aws_security_group.rdp_from_dev.id]", 1) + `
resource "aws_security_group" "rdp_from_dev" {
  vpc_id = aws_vpc.prod.id
  ingress {
    from_port   = 3389
    to_port     = 3389
    protocol    = "tcp"
    cidr_blocks = ["10.1.0.0/16"]
  }
}
`
	got := activeOn(checkSource(t, src), RuleLateral, "aws_instance.prod_app")
	if len(got) != 1 || len(got[0].Paths) != 2 {
		t.Fatalf("want one %s with two port paths, got %+v", RuleLateral, got)
	}
	for i, want := range []struct{ ports, sg string }{{"tcp 22 (SSH)", "aws_security_group.ssh_from_dev"}, {"tcp 3389 (RDP)", "aws_security_group.rdp_from_dev"}} {
		if pp := got[0].Paths[i]; pp.Ports != want.ports || !strings.Contains(pathLine(pp.Path), want.sg) || !strings.HasPrefix(pathLine(pp.Path), "aws_vpc.dev → aws_vpc_peering_connection.dev_prod") {
			t.Errorf("path %d = %s: %s, want %s from aws_vpc.dev through %s", i, pp.Ports, pathLine(pp.Path), want.ports, want.sg)
		}
	}
}

// TestKnownRuleDecidesBesideAssumedOne checks that a path a known rule
// opens to every address does not rest on another rule of the group whose
// source is not known statically: the exposure is proven, critical, and
// says nothing of the assumption.
func TestKnownRuleDecidesBesideAssumedOne(t *testing.T) {
	rep := run(t, "testdata/aws/source-unknown-beside-world")
	for _, c := range []struct{ rule, addr string }{{RuleExposedPort, "aws_db_instance.orders"}, {RuleWorldOpen, "aws_security_group.db"}} {
		got := activeOn(rep, c.rule, c.addr)
		if len(got) != 1 || got[0].Severity != Critical || strings.Contains(got[0].Message, "not known statically") {
			t.Errorf("%s on %s: %+v, want one critical resting on no assumption", c.rule, c.addr, got)
		}
	}
}

// TestLateralNamesListener: a load balancer's HTTPS listener on SSH's
// port, reached from a peered network's whole range, was named SSH in
// the lateral-movement finding; it is named by the listener that answers
// there.
func TestLateralNamesListener(t *testing.T) {
	b, err := os.ReadFile("testdata/projects/peered/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b) + `
resource "aws_lb" "inner" {
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.prod_app.id]
  security_groups            = [aws_security_group.ssh_from_dev.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "inner" {
  load_balancer_arn = aws_lb.inner.arn
  port              = 22
  protocol          = "HTTPS"
  certificate_arn   = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
`
	got := activeOn(checkSource(t, src), RuleLateral, "aws_lb.inner")
	if len(got) != 1 || !strings.Contains(got[0].Message, "on tcp 22 (HTTPS listener)") {
		t.Errorf("want one %s naming tcp 22 as the HTTPS listener, got %+v", RuleLateral, got)
	}
}
