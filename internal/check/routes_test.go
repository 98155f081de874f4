package check

import (
	"context"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
)

// routesAWS is a VPC with a public subnet (its own table, routed to the
// internet gateway), a private subnet and a database subnet, each with its
// own table; the tests fill in the private table's default route
// (PRIVATE_ROUTE), a separate route (EXTRA_ROUTE) and the database
// subnet's association (DB_ASSOC). The database table's count is not known
// statically, as when it follows the length of a data source's list.
const routesAWS = `
variable "unknown" {}
variable "db_tables" {}
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
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_subnet" "db" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.3.0/24"
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
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  PRIVATE_ROUTE
}
resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}
resource "aws_route_table" "db" {
  count  = var.db_tables
  vpc_id = aws_vpc.main.id
}
DB_ASSOC
EXTRA_ROUTE
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_instance" "private" {
  subnet_id                   = aws_subnet.private.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}
resource "aws_instance" "db" {
  subnet_id                   = aws_subnet.db.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}
`

// publicSubnets returns the subnets that the model reads as routed to an
// internet gateway of their VPC, under any table that may govern them.
func publicSubnets(m *Model) []string {
	var out []string
	for _, s := range m.Subnets {
		for _, t := range m.tablesOf(s) {
			if got, _ := m.internetRoutes(t, s.VPC); !empty(got) {
				out = append(out, s.Addr)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestUnknownRoutes checks how a route or association that cannot be
// evaluated is read: at its most permissive within what the configuration
// still says. The attribute a target is given in names its kind (an
// unknown nat_gateway_id is some NAT gateway, which admits nothing from the
// internet, and the subnet keeps its way out); only an unknown gateway_id
// may be an internet gateway. A route table or subnet that is not known
// statically is one of the resources its expression references (the
// instances of aws_route_table.db), or any at all when it references none.
func TestUnknownRoutes(t *testing.T) {
	const (
		natRoute = `route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = var.unknown
  }`
		dbAssoc = `resource "aws_route_table_association" "db" {
  subnet_id      = aws_subnet.db.id
  route_table_id = aws_route_table.db[0].id
}`
		dbIGW = `resource "aws_route" "db" {
  route_table_id         = TABLE
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}`
	)
	all := []string{"aws_subnet.db", "aws_subnet.private", "aws_subnet.public"}
	for _, tc := range []struct {
		name                  string
		private, assoc, extra string
		public                []string // subnets routed to the internet gateway
		reachable             []string // instances with an AWS-NET-001 finding
		kind                  string   // the kind of the private table's default route
		notes                 []string // CHECK-001 notes
	}{
		{name: "unknown NAT gateway", private: natRoute, assoc: dbAssoc,
			public: []string{"aws_subnet.public"}, kind: "nat",
			notes: []string{"aws_route_table.private route[0]: route target not known statically (nat_gateway_id): assumed to be any NAT gateway"}},
		{name: "unknown egress-only gateway", assoc: dbAssoc,
			private: `route {
    ipv6_cidr_block        = "::/0"
    egress_only_gateway_id = var.unknown
  }`,
			public: []string{"aws_subnet.public"}, kind: "eigw"},
		{name: "unknown peering", assoc: dbAssoc,
			private: `route {
    cidr_block                = "0.0.0.0/0"
    vpc_peering_connection_id = var.unknown
  }`,
			public: []string{"aws_subnet.public"}, kind: "pcx"},
		{name: "unknown gateway", assoc: dbAssoc,
			private: `route {
    cidr_block = "0.0.0.0/0"
    gateway_id = var.unknown
  }`,
			public: []string{"aws_subnet.private", "aws_subnet.public"}, reachable: []string{"aws_instance.private"}, kind: "unknown",
			notes: []string{"aws_route_table.private route[0]: route target not known statically (gateway_id): assumed to be the VPC's internet gateway"}},
		{name: "route table referenced", assoc: dbAssoc,
			extra:  strings.Replace(dbIGW, "TABLE", "aws_route_table.db[0].id", 1),
			public: []string{"aws_subnet.db", "aws_subnet.public"}, reachable: []string{"aws_instance.db"},
			notes: []string{"route table not known statically: the route is assumed to be in every table of aws_route_table.db"}},
		{name: "route table from a list", assoc: dbAssoc,
			extra:  strings.Replace(dbIGW, "TABLE", "element(aws_route_table.db[*].id, 0)", 1),
			public: []string{"aws_subnet.db", "aws_subnet.public"}, reachable: []string{"aws_instance.db"}},
		{name: "route table from a variable", assoc: dbAssoc,
			extra:  strings.Replace(dbIGW, "TABLE", "var.unknown", 1),
			public: all, reachable: []string{"aws_instance.db", "aws_instance.private"},
			notes: []string{"route table not known statically: the route is assumed to be in every route table"}},
		{name: "route table from a variable or a reference", assoc: dbAssoc,
			extra:  strings.Replace(dbIGW, "TABLE", `var.unknown != "" ? var.unknown : aws_route_table.db[0].id`, 1),
			public: all, reachable: []string{"aws_instance.db", "aws_instance.private"}},
		{name: "association table referenced",
			assoc: `resource "aws_route_table_association" "db" {
  subnet_id      = aws_subnet.db.id
  route_table_id = element(aws_route_table.db[*].id, 0)
}`,
			public: []string{"aws_subnet.public"}},
		{name: "association table and subnet not known",
			assoc: `resource "aws_route_table_association" "db" {
  count          = var.db_tables
  subnet_id      = element(aws_subnet.db[*].id, count.index)
  route_table_id = element(aws_route_table.db[*].id, count.index)
}`,
			extra:  strings.Replace(dbIGW, "TABLE", "aws_route_table.db[0].id", 1),
			public: []string{"aws_subnet.db", "aws_subnet.public"}, reachable: []string{"aws_instance.db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.NewReplacer("PRIVATE_ROUTE", tc.private, "DB_ASSOC", tc.assoc, "EXTRA_ROUTE", tc.extra).Replace(routesAWS)
			m := buildHCL(t, src)
			if got := publicSubnets(m); strings.Join(got, " ") != strings.Join(tc.public, " ") {
				t.Errorf("public subnets %v, want %v", got, tc.public)
			}
			if tc.kind != "" {
				var kinds []string
				for _, r := range m.tables["aws_route_table.private"].Routes {
					kinds = append(kinds, r.Kind)
					if r.Target != "" {
						t.Errorf("route %+v has a target", r)
					}
					if r.Kind == "nat" && r.Dest != netip.MustParsePrefix("0.0.0.0/0") {
						t.Errorf("NAT route to %s", r.Dest)
					}
				}
				if strings.Join(kinds, " ") != tc.kind {
					t.Errorf("private table's routes are of kind %v, want %s", kinds, tc.kind)
				}
			}
			rep := checkSource(t, src)
			var reached []string
			for _, f := range active(rep, RuleExposedPort) {
				reached = append(reached, f.Address)
			}
			sort.Strings(reached)
			if strings.Join(reached, " ") != strings.Join(tc.reachable, " ") {
				t.Errorf("%s on %v, want %v", RuleExposedPort, reached, tc.reachable)
			}
			wantNotes(t, rep, tc.notes...)
		})
	}
}

// TestUnknownPeeringRoute checks that a route whose
// vpc_peering_connection_id is not known statically is read as through
// any peering that joins the two networks, in either direction: the
// auditor's --reach lists the peer network as a source and says what was
// assumed, while AWS-NET-010, which reports only proven paths, stays
// silent.
func TestUnknownPeeringRoute(t *testing.T) {
	src, err := os.ReadFile("testdata/rules/AWS-NET-010/fail/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	const pcx = "vpc_peering_connection_id = aws_vpc_peering_connection.dev_prod.id"
	for _, tc := range []struct {
		name    string
		table   string // the table whose peering route is not known
		lateral bool
	}{
		{"known", "", true},
		{"forward route", `resource "aws_route_table" "dev"`, false},
		{"return route", `resource "aws_route_table" "prod"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := "variable \"unknown\" {}\n" + string(src)
			if tc.table != "" {
				i := strings.Index(s, tc.table)
				j := i + strings.Index(s[i:], pcx)
				s = s[:j] + "vpc_peering_connection_id = var.unknown" + s[j+len(pcx):]
			}
			dir := writeProject(t, s)
			if got := activeOn(run(t, dir), RuleLateral, "aws_db_instance.orders"); len(got) != map[bool]int{true: 1}[tc.lateral] {
				t.Errorf("%s: %+v, lateral %v", RuleLateral, got, tc.lateral)
			}
			acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.orders")
			if err != nil {
				t.Fatal(err)
			}
			var from *Access
			for i, a := range acc {
				if strings.HasPrefix(a.Source, "aws_vpc.dev") && a.Port == 3306 {
					from = &acc[i]
				}
			}
			if from == nil {
				t.Fatalf("aws_vpc.dev does not reach tcp 3306: %+v", acc)
			}
			if p := pathLine(from.Path); !strings.Contains(p, "aws_vpc_peering_connection.dev_prod") {
				t.Errorf("path %q does not name the peering", p)
			}
			said := strings.Contains(strings.Join(from.Assumed, "\n"), "target not known statically (vpc_peering_connection_id): assumed to be any peering connection of the VPC")
			if said != (tc.table != "") {
				t.Errorf("assumed %q", from.Assumed)
			}
		})
	}
}

// TestMainTableNotKnownStatically: an aws_main_route_table_association
// whose table (or VPC) is known only after apply was dropped, so the
// subnets without an association of their own kept the implicit main
// table, local routes only, even when every table it could name routes
// to the internet gateway. The VPC's main table is now any table the
// expression can name, or any of the VPC's when it names none.
func TestMainTableNotKnownStatically(t *testing.T) {
	const base = `
variable "tables" {
  type = number
}
variable "unknown" {}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_route_table" "edge" {
  count  = var.tables
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table" "quiet" {
  vpc_id = aws_vpc.main.id
}
`
	for _, tc := range []struct {
		name, table string
		public      []string
		note        string
	}{
		{"known", "aws_route_table.quiet.id", nil, ""},
		{"a counted table", "element(aws_route_table.edge[*].id, 0)", []string{"aws_subnet.app"},
			"main route table not known statically: assumed to be any of aws_route_table.edge"},
		{"a variable", "var.unknown", []string{"aws_subnet.app"},
			"main route table not known statically: assumed to be any route table of the VPC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := base + `
resource "aws_main_route_table_association" "main" {
  vpc_id         = aws_vpc.main.id
  route_table_id = ` + tc.table + `
}
`
			m := buildHCL(t, src)
			if got := publicSubnets(m); strings.Join(got, " ") != strings.Join(tc.public, " ") {
				t.Errorf("public subnets %v, want %v", got, tc.public)
			}
			if tc.note != "" {
				wantNotes(t, checkSource(t, src), tc.note)
			}
		})
	}
}
