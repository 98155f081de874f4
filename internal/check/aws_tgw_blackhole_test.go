package check

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestTransitGatewayBlackholeOverridesPropagated checks that a static
// route of a transit gateway table wins over a propagated route for the
// same prefix, as AWS ranks them: a blackhole for VPC b's range drops what
// b's propagated route would carry, so VPC a reaches nothing of b through
// the gateway. A blackhole of a wider prefix loses to the propagated
// route, more specific; one for a narrower prefix leaves the rest of b's
// range routed. The blackhole was passed over, and a said to reach b.
func TestTransitGatewayBlackholeOverridesPropagated(t *testing.T) {
	raw, err := os.ReadFile("testdata/aws/tgw-route-tables/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	// Both attachments associated with table a, both propagating to it.
	base := string(raw) + `
resource "aws_ec2_transit_gateway_route_table_association" "b" {
  transit_gateway_attachment_id  = aws_ec2_transit_gateway_vpc_attachment.b.id
  transit_gateway_route_table_id = aws_ec2_transit_gateway_route_table.a.id
}
resource "aws_ec2_transit_gateway_route_table_propagation" "b" {
  transit_gateway_attachment_id  = aws_ec2_transit_gateway_vpc_attachment.b.id
  transit_gateway_route_table_id = aws_ec2_transit_gateway_route_table.a.id
}
`
	blackhole := func(cidr string) string {
		return `resource "aws_ec2_transit_gateway_route" "drop" {
  destination_cidr_block         = "` + cidr + `"
  blackhole                      = true
  transit_gateway_route_table_id = aws_ec2_transit_gateway_route_table.a.id
}
`
	}
	for _, tc := range []struct {
		name, extra string
		reached     bool
	}{
		{"propagated alone", "", true},
		{"blackhole of the same prefix", blackhole("10.2.0.0/16"), false},
		{"blackhole of a wider prefix", blackhole("10.0.0.0/8"), true},
		{"blackhole of a narrower prefix", blackhole("10.2.9.0/24"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeProject(t, base+tc.extra)
			acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.orders")
			if err != nil {
				t.Fatal(err)
			}
			reached := false
			for _, a := range acc {
				reached = reached || (strings.HasPrefix(a.Source, "aws_subnet.a") || strings.HasPrefix(a.Source, "aws_vpc.a")) && a.Port == 5432
			}
			if reached != tc.reached {
				t.Errorf("VPC a reaches the database in b through the gateway: %v, want %v", reached, tc.reached)
			}
		})
	}
}
