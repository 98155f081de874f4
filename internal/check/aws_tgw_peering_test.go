package check

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestTransitGatewayPeering checks that VPCs attached to two transit
// gateways joined by a peering attachment reach each other where their
// subnets route to their gateways: the routes across the peering, which
// the gateways' tables hold as static routes to the peering attachment,
// are not read, so each gateway's VPCs are read as reaching the other's,
// the path and a note saying so. The peering was passed over in silence,
// and VPC a, attached to the other gateway, was read as never reaching
// b's database, which its group admits from 10.0.0.0/8.
func TestTransitGatewayPeering(t *testing.T) {
	base, err := os.ReadFile("testdata/aws/tgw-default-table/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	src := string(base)
	for old, repl := range map[string]string{
		`resource "aws_ec2_transit_gateway" "hub" {}`: "resource \"aws_ec2_transit_gateway\" \"hub\" {}\nresource \"aws_ec2_transit_gateway\" \"east\" {}\n" +
			"resource \"aws_ec2_transit_gateway_peering_attachment\" \"hub_east\" {\n  transit_gateway_id      = aws_ec2_transit_gateway.hub.id\n  peer_transit_gateway_id = aws_ec2_transit_gateway.east.id\n  peer_region             = \"us-east-2\"\n}",
		"resource \"aws_ec2_transit_gateway_vpc_attachment\" \"a\" {\n  transit_gateway_id = aws_ec2_transit_gateway.hub.id": "resource \"aws_ec2_transit_gateway_vpc_attachment\" \"a\" {\n  transit_gateway_id = aws_ec2_transit_gateway.east.id",
		"    cidr_block         = \"10.2.0.0/16\"\n    transit_gateway_id = aws_ec2_transit_gateway.hub.id":                  "    cidr_block         = \"10.2.0.0/16\"\n    transit_gateway_id = aws_ec2_transit_gateway.east.id",
	} {
		if !strings.Contains(src, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		src = strings.Replace(src, old, repl, 1)
	}
	dir := writeProject(t, src)
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.orders")
	if err != nil {
		t.Fatal(err)
	}
	got, path := false, ""
	for _, a := range acc {
		if (a.Source == "aws_subnet.a" || a.Source == "aws_vpc.a") && a.Port == 5432 {
			got, path = true, fmt.Sprint(a.Path)
		}
	}
	if !got || !strings.Contains(path, "aws_ec2_transit_gateway_peering_attachment.hub_east") {
		t.Errorf("VPC a through the peered gateways: reached %v, path %q, want reached through the peering", got, path)
	}
	wantNotes(t, run(t, dir), "peered with aws_ec2_transit_gateway.east by aws_ec2_transit_gateway_peering_attachment.hub_east")
}
