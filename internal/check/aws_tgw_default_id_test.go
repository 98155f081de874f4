package check

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestTransitGatewayDefaultTableByID checks that a route written into a
// transit gateway's default table by the gateway's own attributes
// (association_default_route_table_id, propagation_default_route_table_id,
// as a gateway that does not propagate by default is given its routes) is
// read as a route of that table: with a route to VPC b's range alone, VPC a
// does not reach b's database, for nothing routes the answer back; with a
// route each way it does, through the tables. Such a route was read as of
// a table not in the scanned code, so the gateway's tables were not read
// and every VPC attached was read as reaching every other.
func TestTransitGatewayDefaultTableByID(t *testing.T) {
	base, err := os.ReadFile("testdata/aws/tgw-default-table/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(base), `resource "aws_ec2_transit_gateway" "hub" {}`,
		"resource \"aws_ec2_transit_gateway\" \"hub\" {\n  default_route_table_propagation = \"disable\"\n}", 1)
	if src == string(base) {
		t.Fatal("fixture lacks the gateway")
	}
	route := func(name, attr, dest, att string) string {
		return fmt.Sprintf(`
resource "aws_ec2_transit_gateway_route" %q {
  destination_cidr_block         = %q
  transit_gateway_route_table_id = aws_ec2_transit_gateway.hub.%s
  transit_gateway_attachment_id  = aws_ec2_transit_gateway_vpc_attachment.%s.id
}
`, name, dest, attr, att)
	}
	toB := route("to_b", "association_default_route_table_id", "10.2.0.0/16", "b")
	toA := route("to_a", "propagation_default_route_table_id", "10.1.0.0/16", "a")
	for _, c := range []struct {
		name, routes string
		want         bool
	}{{"one way", toB, false}, {"both ways", toB + toA, true}} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeProject(t, src+c.routes)
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
			if got != c.want || got && !strings.Contains(path, "route tables routing") {
				t.Errorf("VPC a reaches the database: %v (path %q), want %v, through the gateway's tables", got, path, c.want)
			}
			for _, f := range active(run(t, dir), RuleNotEvaluated) {
				if strings.Contains(f.Message, "route tables not read") {
					t.Errorf("tables noted as not read: %s %s", f.Address, f.Message)
				}
			}
		})
	}
}
