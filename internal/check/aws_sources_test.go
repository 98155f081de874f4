package check

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestClientVPNClientsReach checks that the clients of a Client VPN
// endpoint are a source where it is associated, as members of its groups,
// where its authorization rules admit them.
func TestClientVPNClientsReach(t *testing.T) {
	const dir = "testdata/aws/client-vpn"
	if !vpnReaches(t, dir, "aws_instance.db", 5432) {
		t.Errorf("the VPN's clients do not reach the database")
	}
	if got := activeOn(run(t, dir), RuleNotEvaluated, "aws_ec2_client_vpn_network_association.vpn"); len(got) != 0 {
		t.Errorf("notes on an association whose endpoint's authorization rules are read: %+v", got)
	}
}

// TestClientVPNAuthorizationRules checks that a Client VPN endpoint's
// authorization rules narrow what its clients reach: a machine outside
// every target range is not reached, though its group admits the
// endpoint's; with no rule in the scanned code, made elsewhere, clients
// are read as reaching what the subnet and groups reach, and a note says
// so.
func TestClientVPNAuthorizationRules(t *testing.T) {
	const dir = "testdata/aws/client-vpn-authorized"
	if !vpnReaches(t, dir, "aws_instance.db", 5432) {
		t.Errorf("the VPN's clients do not reach the database its rule admits them to")
	}
	if vpnReaches(t, dir, "aws_instance.build", 22) {
		t.Errorf("the VPN's clients reach the build server outside every authorized range")
	}
	const open = "testdata/aws/client-vpn-no-rules"
	if !vpnReaches(t, open, "aws_instance.build", 22) {
		t.Errorf("the VPN's clients, with no authorization rule in the scanned code, do not reach the build server")
	}
	wantNotes(t, run(t, open), "no authorization rule")
}

// vpnReaches reports whether the Client VPN association aws_ec2_client_vpn_network_association.vpn
// of dir reaches addr on TCP port.
func vpnReaches(t *testing.T, dir, addr string, port int) bool {
	t.Helper()
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if strings.HasPrefix(a.Source, "aws_ec2_client_vpn_network_association.vpn") && a.Port == port {
			return true
		}
	}
	return false
}

// TestInstanceConnectEndpointReaches checks that an EC2 Instance Connect
// endpoint is a source in its subnet, as a member of its groups: the
// instance whose group admits SSH from the endpoint's is reached through
// it, the path naming it.
func TestInstanceConnectEndpointReaches(t *testing.T) {
	const dir = "testdata/aws/instance-connect"
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_instance.app")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if strings.HasPrefix(a.Source, "aws_ec2_instance_connect_endpoint.eic") && a.Port == 22 {
			return
		}
	}
	t.Errorf("the Instance Connect endpoint does not reach the instance on SSH: %+v", acc)
}

// TestGlobalAcceleratorPublishes checks that a Global Accelerator's
// listener publishes the instance its endpoint group names: the internet
// reaches its SSH port, though its subnet has no route to an internet
// gateway.
func TestGlobalAcceleratorPublishes(t *testing.T) {
	rep := run(t, "testdata/aws/global-accelerator")
	got := activeOn(rep, RuleExposedPort, "aws_instance.admin")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
		t.Fatalf("%s on the instance behind the accelerator: %+v, want one critical for SSH", RuleExposedPort, got)
	}
	if !strings.Contains(pathLine(got[0].Path), "aws_globalaccelerator_accelerator.edge") {
		t.Errorf("path does not name the accelerator: %s", pathLine(got[0].Path))
	}
}

// TestOpenGroupOfEndpointTakingNoConnection checks that a group admitting
// SSH from the internet, attached only to an EC2 Instance Connect endpoint
// (which takes no connection), is reported at the severity of a group
// nothing attaches, and says why, not as high.
func TestOpenGroupOfEndpointTakingNoConnection(t *testing.T) {
	src, err := os.ReadFile("testdata/aws/instance-connect/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	open := strings.Replace(string(src), "  egress {\n    from_port   = 22", "  ingress {\n    from_port   = 22\n    to_port     = 22\n    protocol    = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n  egress {\n    from_port   = 22", 1)
	if open == string(src) {
		t.Fatal("the endpoint's group was not opened")
	}
	rep := run(t, writeProject(t, open))
	got := activeOn(rep, RuleWorldOpen, "aws_security_group.eice")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "takes no connection") {
		t.Errorf("%s on the endpoint's group: %+v, want one medium saying the endpoint takes no connection", RuleWorldOpen, got)
	}
}

// TestOpenGroupReachedFromNarrowRange checks that a group admitting SSH
// from every address, on an instance whose subnet routes only one /24 to
// the internet gateway (so only that range can hold a connection), is not
// critical: the path exists from that range alone, as AWS-NET-001 says.
func TestOpenGroupReachedFromNarrowRange(t *testing.T) {
	rep := run(t, writeProject(t, `resource "aws_vpc" "main" {
  cidr_block = "10.10.0.0/16"
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.10.2.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "198.51.100.0/24"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_security_group" "web" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "web" {
  ami                    = "ami-1"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.web.id]
}
`))
	got := activeOn(rep, RuleWorldOpen, "aws_security_group.web")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "198.51.100.0/24") {
		t.Errorf("%s on the group: %+v, want one high naming the range the path admits", RuleWorldOpen, got)
	}
}

// TestOpenGroupOnlyNamedByRules checks that a group open to the world on
// SSH that no resource attaches, only another group's rule names as its
// source, is read as attached to nothing (medium), not as attached, and is
// not reported as unused either.
func TestOpenGroupOnlyNamedByRules(t *testing.T) {
	rep := run(t, writeProject(t, `resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "bastion" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 22
    to_port         = 22
    protocol        = "tcp"
    security_groups = [aws_security_group.bastion.id]
  }
}
resource "aws_instance" "app" {
  ami                    = "ami-1"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
`))
	got := activeOn(rep, RuleWorldOpen, "aws_security_group.bastion")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "nothing in the scanned code attaches it") {
		t.Errorf("%s on the group only a rule names: %+v, want one medium saying nothing attaches it", RuleWorldOpen, got)
	}
	if got := activeOn(rep, RuleUnusedSG, "aws_security_group.bastion"); len(got) > 0 {
		t.Errorf("%s on a group a rule names: %+v, want none", RuleUnusedSG, got)
	}
}

// TestAppRunnerConnectorReaches checks that an App Runner VPC connector is
// a source in its subnets, as a member of its groups, and takes no
// connection: the database admitting its group is reached from it, and its
// own group open to the world is medium, attached only to what takes none.
func TestAppRunnerConnectorReaches(t *testing.T) {
	const dir = "testdata/aws/apprunner-connector"
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.orders")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(acc, func(a Access) bool {
		return strings.HasPrefix(a.Source, "aws_apprunner_vpc_connector.app") && a.Port == 5432
	}) {
		t.Errorf("the connector does not reach the database: %+v", acc)
	}
	rep := run(t, dir)
	if got := activeOn(rep, RuleWorldOpen, "aws_security_group.connector"); len(got) != 1 || got[0].Severity != Medium {
		t.Errorf("%s on the connector's group: %+v, want one medium", RuleWorldOpen, got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "aws_apprunner_vpc_connector.app"); len(got) != 0 {
		t.Errorf("notes on the connector: %+v", got)
	}
}

// TestTransferServers checks that AWS Transfer Family servers are in the
// network: a PUBLIC server is reached on SFTP from every address (critical);
// a VPC server with an Elastic IP is reached through its groups (from the
// partners' range alone: medium, naming it); one without is reached from no
// internet address, its world-open group attached but no path proven; an
// endpoint type the provider refuses is CHECK-003. None is a note of what is
// not modelled.
func TestTransferServers(t *testing.T) {
	rep := run(t, "testdata/aws/transfer")
	if got := activeOn(rep, RuleExposedPort, "aws_transfer_server.public"); len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22") {
		t.Errorf("%s on the public server: %+v, want one critical on tcp 22", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_transfer_server.partners"); len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "198.51.100.0/24") {
		t.Errorf("%s on the partners' server: %+v, want one medium naming their range", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_transfer_server.internal"); len(got) != 0 {
		t.Errorf("%s on the server without an Elastic IP: %+v, want none", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleWorldOpen, "aws_security_group.open"); len(got) != 1 || got[0].Severity != High {
		t.Errorf("%s on the internal server's group: %+v, want one high", RuleWorldOpen, got)
	}
	if got := activeOn(rep, RuleRejected, "aws_transfer_server.typo"); len(got) != 1 || !strings.Contains(got[0].Message, "PUBlIC") {
		t.Errorf("%s on the server of a misspelt endpoint type: %+v, want one naming it", RuleRejected, got)
	}
	for _, f := range rep.Findings {
		if f.RuleID == RuleNotEvaluated && strings.HasPrefix(f.Address, "aws_transfer_server.") && strings.Contains(f.Message, "not in the network model") {
			t.Errorf("note of what is not modelled: %+v", f)
		}
	}
}
