package check

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// vpnNetwork is a production database in a private subnet whose group
// admits the office range on MySQL; the office is behind a site-to-site
// VPN. Cases add how the subnet's table routes the office range.
const vpnNetwork = `
resource "aws_vpc" "prod" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "db" {
  vpc_id     = aws_vpc.prod.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_vpn_gateway" "office" {
  vpc_id = aws_vpc.prod.id
}
resource "aws_customer_gateway" "office" {
  bgp_asn    = 65000
  ip_address = "198.51.100.7"
  type       = "ipsec.1"
}
resource "aws_route_table_association" "db" {
  subnet_id      = aws_subnet.db.id
  route_table_id = aws_route_table.db.id
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.prod.id
  ingress {
    from_port   = 3306
    to_port     = 3306
    protocol    = "tcp"
    cidr_blocks = ["192.168.0.0/16"]
  }
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.db.id]
}
resource "aws_db_instance" "orders" {
  engine                 = "mysql"
  storage_encrypted      = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
`

// TestReachVPN checks lateral movement from a network behind a VPN: a
// data-store port admitted from the whole range routed to the VPN gateway
// is reported with its path, whether the route is written in the table or
// propagated from the connection's static routes; and --reach lists the
// VPN as a source. A table without a route to the gateway carries no return
// traffic, and ranges learned over BGP are noted, not guessed.
func TestReachVPN(t *testing.T) {
	const db = "aws_db_instance.orders"
	connection := func(static bool) string {
		s := `
resource "aws_vpn_connection" "office" {
  vpn_gateway_id      = aws_vpn_gateway.office.id
  customer_gateway_id = aws_customer_gateway.office.id
  type                = "ipsec.1"
`
		if static {
			s += `  static_routes_only  = true
}
resource "aws_vpn_connection_route" "office" {
  vpn_connection_id      = aws_vpn_connection.office.id
  destination_cidr_block = "192.168.0.0/16"
}
`
		} else {
			s += "}\n"
		}
		return s
	}
	for _, tc := range []struct {
		name, src, hop, note string
		reach                bool
	}{
		{"route in the table", `
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
  route {
    cidr_block = "192.168.0.0/16"
    gateway_id = aws_vpn_gateway.office.id
  }
}
`, "aws_route_table.db route[0]", "", true},
		{"propagated static route", `
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
}
resource "aws_vpn_gateway_route_propagation" "db" {
  vpn_gateway_id = aws_vpn_gateway.office.id
  route_table_id = aws_route_table.db.id
}
` + connection(true), "aws_vpn_gateway_route_propagation.db (propagated by aws_vpn_gateway.office)", "", true},
		{"propagating_vgws", `
resource "aws_route_table" "db" {
  vpc_id           = aws_vpc.prod.id
  propagating_vgws = [aws_vpn_gateway.office.id]
}
` + connection(true), "aws_route_table.db (propagated by aws_vpn_gateway.office)", "", true},
		{"BGP: ranges not in the configuration", `
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
}
resource "aws_vpn_gateway_route_propagation" "db" {
  vpn_gateway_id = aws_vpn_gateway.office.id
  route_table_id = aws_route_table.db.id
}
` + connection(false), "", "learns over BGP (aws_vpn_connection.office) are not in the configuration", false},
		{"no route to the gateway", `
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
}
`, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeProject(t, vpnNetwork+tc.src)
			rep := run(t, dir)
			got := activeOn(rep, RuleLateral, db)
			if tc.note != "" {
				wantNotes(t, rep, tc.note)
			}
			if !tc.reach {
				if len(got) > 0 {
					t.Errorf("want no %s, got %+v", RuleLateral, got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0].Message, "VPN aws_vpn_gateway.office (192.168.0.0/16) on tcp 3306 (MySQL)") {
				t.Fatalf("want one %s from the VPN on MySQL, got %+v", RuleLateral, got)
			}
			want := "VPN aws_vpn_gateway.office (192.168.0.0/16) → aws_vpn_gateway.office → aws_route_table.db → aws_subnet.db → default network ACL of aws_vpc.prod allows all → aws_security_group.db → " + db
			if p := pathLine(got[0].Path); p != want {
				t.Errorf("path\n got %s\nwant %s", p, want)
			}
			if d := got[0].Path[2].Detail; !strings.Contains(d, tc.hop) {
				t.Errorf("route hop %q does not name %q", d, tc.hop)
			}
			acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, db)
			if err != nil {
				t.Fatal(err)
			}
			if len(acc) != 1 || acc[0].Source != "VPN aws_vpn_gateway.office (192.168.0.0/16)" || acc[0].Port != 3306 {
				t.Errorf("--reach: %+v, want the VPN on 3306", acc)
			}
		})
	}
}

// TestVPNNotKnownStatically: a VPN gateway whose count is known only
// after apply makes every reference to it unknown: the connection's
// gateway, a route's gateway_id, a propagation's gateway; a route table
// with such a count makes a propagation's table unknown. Each was
// dropped (the VPN's network was then no source at all, a path missed)
// or, for a route's gateway_id, read as the VPC's internet gateway. Each
// is now read as every gateway or table its expression can name, and
// --reach lists the VPN as a source with what was assumed.
func TestVPNNotKnownStatically(t *testing.T) {
	const db = "aws_db_instance.orders"
	counted := strings.Replace(vpnNetwork, "resource \"aws_vpn_gateway\" \"office\" {\n",
		"variable \"gateways\" {\n  type = number\n}\nvariable \"tables\" {\n  type = number\n}\nresource \"aws_vpn_gateway\" \"office\" {\n  count = var.gateways\n", 1)
	connection := `
resource "aws_vpn_connection" "office" {
  vpn_gateway_id      = aws_vpn_gateway.office[0].id
  customer_gateway_id = aws_customer_gateway.office.id
  type                = "ipsec.1"
  static_routes_only  = true
}
resource "aws_vpn_connection_route" "office" {
  vpn_connection_id      = aws_vpn_connection.office.id
  destination_cidr_block = "192.168.0.0/16"
}
`
	for _, tc := range []struct {
		name, src string
		assumed   []string
	}{
		{"a route to the gateway", `
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
}
resource "aws_route" "office" {
  route_table_id         = aws_route_table.db.id
  destination_cidr_block = "192.168.0.0/16"
  gateway_id             = element(aws_vpn_gateway.office[*].id, 0)
}
`, []string{"target not known statically (gateway_id): assumed to be any of aws_vpn_gateway.office"}},
		{"a propagation into a table of a counted resource", `
resource "aws_route_table" "db" {
  count  = var.tables
  vpc_id = aws_vpc.prod.id
}
resource "aws_vpn_gateway_route_propagation" "db" {
  vpn_gateway_id = aws_vpn_gateway.office[0].id
  route_table_id = aws_route_table.db[0].id
}
`, []string{"route table not known statically: the propagation is assumed to reach every table of aws_route_table.db",
			"the propagating VPN gateway not known statically (vpn_gateway_id): assumed to be any of aws_vpn_gateway.office"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := counted + connection + tc.src
			if strings.Contains(tc.src, "count  = var.tables") {
				// The subnet's association names the counted table too.
				src = strings.Replace(src, "route_table_id = aws_route_table.db.id", "route_table_id = aws_route_table.db[0].id", 1)
			}
			dir := writeProject(t, src)
			rep := run(t, dir)
			wantNotes(t, rep, "the connection's VPN gateway not known statically (vpn_gateway_id): assumed to be any of aws_vpn_gateway.office")
			acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, db)
			if err != nil {
				t.Fatal(err)
			}
			var vpn []Access
			for _, a := range acc {
				if strings.HasPrefix(a.Source, "VPN ") {
					vpn = append(vpn, a)
				}
			}
			if len(vpn) != 1 || vpn[0].Source != "VPN aws_vpn_gateway.office (192.168.0.0/16)" || vpn[0].Port != 3306 {
				t.Fatalf("--reach: VPN sources %+v, want the VPN on 3306", vpn)
			}
			for _, want := range tc.assumed {
				if !strings.Contains(strings.Join(vpn[0].Assumed, "\n"), want) {
					t.Errorf("--reach: assumed %q, want it to say %q", vpn[0].Assumed, want)
				}
			}
		})
	}
}

// TestReachVPNOnTransitGateway: a site-to-site VPN attached to a transit
// gateway, to which the database subnet's table routes the office range,
// is a network that reaches the database as one on a VPN gateway does;
// it was no source at all. A range the table sends to the transit gateway
// that is another attached VPC's is that VPC's, not the VPN's, and the
// internet at large sent there is the way out, not the VPN's network.
func TestReachVPNOnTransitGateway(t *testing.T) {
	const db = "aws_db_instance.orders"
	dir := writeProject(t, vpnNetwork+`
resource "aws_ec2_transit_gateway" "hub" {}
resource "aws_ec2_transit_gateway_vpc_attachment" "prod" {
  transit_gateway_id = aws_ec2_transit_gateway.hub.id
  vpc_id             = aws_vpc.prod.id
  subnet_ids         = [aws_subnet.db.id]
}
resource "aws_vpc" "shared" {
  cidr_block = "192.168.128.0/17"
}
resource "aws_ec2_transit_gateway_vpc_attachment" "shared" {
  transit_gateway_id = aws_ec2_transit_gateway.hub.id
  vpc_id             = aws_vpc.shared.id
  subnet_ids         = ["subnet-0123456789abcdef0"]
}
resource "aws_vpn_connection" "branch" {
  transit_gateway_id  = aws_ec2_transit_gateway.hub.id
  customer_gateway_id = aws_customer_gateway.office.id
  type                = "ipsec.1"
  static_routes_only  = true
}
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
  route {
    cidr_block         = "192.168.0.0/16"
    transit_gateway_id = aws_ec2_transit_gateway.hub.id
  }
  route {
    cidr_block         = "192.168.128.0/17"
    transit_gateway_id = aws_ec2_transit_gateway.hub.id
  }
  route {
    cidr_block         = "0.0.0.0/0"
    transit_gateway_id = aws_ec2_transit_gateway.hub.id
  }
}
`)
	rep := run(t, dir)
	got := activeOn(rep, RuleLateral, db)
	var vpn *Finding
	for i := range got {
		if strings.Contains(got[i].Message, "VPN aws_vpn_connection.branch (192.168.0.0/16) on tcp 3306 (MySQL)") {
			vpn = &got[i]
		}
		if strings.Contains(got[i].Message, "VPN aws_vpn_connection.branch (192.168.128.0/17)") {
			t.Errorf("the shared VPC's range is read as the VPN's: %s", got[i].Message)
		}
	}
	if vpn == nil {
		t.Fatalf("want a %s from the VPN on the transit gateway, got %+v", RuleLateral, got)
	}
	want := "VPN aws_vpn_connection.branch (192.168.0.0/16) → aws_ec2_transit_gateway.hub → aws_route_table.db → aws_subnet.db → default network ACL of aws_vpc.prod allows all → aws_security_group.db → " + db
	if p := pathLine(vpn.Path); p != want {
		t.Errorf("path\n got %s\nwant %s", p, want)
	}
	// The default route to the gateway is the way to the internet (an
	// egress VPC), not the VPN's customer network.
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if strings.Contains(a.Source, "(0.0.0.0/0)") {
			t.Errorf("--reach lists %s", a.Source)
		}
	}
}

// TestVPNTransitGatewayNotKnownStatically: a site-to-site VPN whose
// transit gateway is not known statically (a variable without a value)
// was no source at all. It is read at its worst, as on any transit gateway
// its expression can name, else any, and the path and a note say so; one
// whose expression names only another transit gateway stays off this
// one, and a connection on a VPN gateway is never one a route to a
// transit gateway not known statically reaches.
func TestVPNTransitGatewayNotKnownStatically(t *testing.T) {
	const db = "aws_db_instance.orders"
	const hub = `
variable "tgw_id" {
  type = string
}
variable "edges" {
  type = number
}
resource "aws_ec2_transit_gateway" "hub" {}
resource "aws_ec2_transit_gateway" "edge" {
  count = var.edges
}
resource "aws_ec2_transit_gateway_vpc_attachment" "prod" {
  transit_gateway_id = aws_ec2_transit_gateway.hub.id
  vpc_id             = aws_vpc.prod.id
  subnet_ids         = [aws_subnet.db.id]
}
`
	const route = `
resource "aws_route_table" "db" {
  vpc_id = aws_vpc.prod.id
  route {
    cidr_block         = "192.168.0.0/16"
    transit_gateway_id = %s
  }
}
`
	conn := func(gw string) string {
		return fmt.Sprintf(`
resource "aws_vpn_connection" "branch" {
  %s
  customer_gateway_id = aws_customer_gateway.office.id
  type                = "ipsec.1"
  static_routes_only  = true
}
`, gw)
	}
	for _, tc := range []struct {
		name, src, assumed string
	}{
		{"a variable without a value", conn("transit_gateway_id = var.tgw_id") + fmt.Sprintf(route, "aws_ec2_transit_gateway.hub.id"),
			"aws_vpn_connection.branch: its transit gateway not known statically (transit_gateway_id): assumed to be any transit gateway"},
		{"another gateway's instance", conn("transit_gateway_id = aws_ec2_transit_gateway.edge[0].id") + fmt.Sprintf(route, "aws_ec2_transit_gateway.hub.id"), ""},
		{"a VPN gateway's connection", conn("vpn_gateway_id = aws_vpn_gateway.office.id") + fmt.Sprintf(route, "var.tgw_id"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeProject(t, vpnNetwork+hub+tc.src)
			rep := run(t, dir)
			var vpn []Finding
			for _, f := range activeOn(rep, RuleLateral, db) {
				if strings.Contains(f.Message, "VPN aws_vpn_connection.branch") {
					vpn = append(vpn, f)
				}
			}
			if tc.assumed == "" {
				if len(vpn) > 0 {
					t.Fatalf("want no %s from the VPN, got %+v", RuleLateral, vpn)
				}
				return
			}
			if len(vpn) != 1 || !strings.Contains(vpn[0].Message, "VPN aws_vpn_connection.branch (192.168.0.0/16) on tcp 3306 (MySQL)") {
				t.Fatalf("want one %s from the VPN on MySQL, got %+v", RuleLateral, vpn)
			}
			if d := vpn[0].Path[1].Detail; !strings.Contains(d, tc.assumed) {
				t.Errorf("transit gateway hop %q does not say %q", d, tc.assumed)
			}
			wantNotes(t, rep, tc.assumed)
		})
	}
}
