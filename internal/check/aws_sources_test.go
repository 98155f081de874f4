package check

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestClientVPNClientsReach checks that the clients of a Client VPN
// endpoint are a source where it is associated, as members of its groups,
// and that its authorization rules, not read, are said so.
func TestClientVPNClientsReach(t *testing.T) {
	const dir = "testdata/aws/client-vpn"
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_instance.db")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acc {
		if strings.HasPrefix(a.Source, "aws_ec2_client_vpn_network_association.vpn") && a.Port == 5432 {
			found = true
		}
	}
	if !found {
		t.Errorf("the VPN's clients do not reach the database: %+v", acc)
	}
	rep := run(t, dir)
	wantNotes(t, rep, "authorization rules are not read")
	if got := activeOn(rep, RuleNotEvaluated, "aws_ec2_client_vpn_network_association.vpn"); len(got) != 1 || strings.Contains(got[0].Message, "not in the network model") {
		t.Errorf("notes on the association: %+v, want the one on its authorization rules alone", got)
	}
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
