package check

import (
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
}`, "aws_eks_cluster.main", []want{{Critical, "tcp 443 (Kubernetes API) is reachable from the internet (every IPv4 internet address)"}}},
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
