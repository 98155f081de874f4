package check

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWildVPCPublicSubnets reads the terraform-aws-vpc examples, whose
// route tables, subnets and routes all have a count that is not known
// statically (the availability zones come from a data source), and checks
// which subnets the model reads as routed to the internet gateway: the
// public ones, and the database ones where the example asks for
// create_database_internet_gateway_route; never the private, intra,
// ElastiCache or Redshift ones, whose default route goes to a NAT gateway
// or nowhere.
func TestWildVPCPublicSubnets(t *testing.T) {
	dir := filepath.Join(wildDir(t), "terraform-aws-vpc", "examples")
	for _, tc := range []struct {
		example string
		public  []string
	}{
		{"simple", nil},
		{"complete", []string{"module.vpc.aws_subnet.public"}},
		{"ipv6-dualstack", []string{"module.vpc.aws_subnet.database", "module.vpc.aws_subnet.public"}},
		{"separate-route-tables", []string{"module.vpc.aws_subnet.public"}},
		{"network-acls", []string{"module.vpc.aws_subnet.public"}},
	} {
		t.Run(tc.example, func(t *testing.T) {
			proj, err := loadProject(filepath.Join(dir, tc.example), Config{Root: wildDir(t)})
			if err != nil {
				t.Fatal(err)
			}
			m := Build(proj.Resources)
			if len(m.Subnets) == 0 {
				t.Fatal("no subnets read")
			}
			if got := publicSubnets(m); strings.Join(got, " ") != strings.Join(tc.public, " ") {
				t.Errorf("public subnets %v, want %v", got, tc.public)
			}
		})
	}
}

// TestWildVPCModuleRoutes calls terraform-aws-vpc twice, as
// terraform-aws-eks's hybrid-nodes example does, and peers the two
// networks with routes added to each module's private tables
// (one(module.vpc.private_route_table_ids)), which are not known
// statically: each route is in its own network's private tables only, so
// no route reads as leaving its peer's range (AWS-NET-006), and only the
// public subnets are routed to an internet gateway.
func TestWildVPCModuleRoutes(t *testing.T) {
	dir := t.TempDir()
	mod, err := filepath.Rel(dir, filepath.Join(wildDir(t), "terraform-aws-vpc"))
	if err != nil {
		t.Fatal(err)
	}
	vpc := func(name, cidr string) string {
		return `
module "` + name + `" {
  source             = "` + filepath.ToSlash(mod) + `"
  name               = "` + name + `"
  cidr               = "` + cidr + `"
  azs                = local.azs
  private_subnets    = [for k, v in local.azs : cidrsubnet("` + cidr + `", 8, k)]
  public_subnets     = [for k, v in local.azs : cidrsubnet("` + cidr + `", 8, k + 4)]
  enable_nat_gateway = true
  single_nat_gateway = true
}
`
	}
	src := `
data "aws_availability_zones" "available" {}
locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
}
` + vpc("vpc", "10.0.0.0/16") + vpc("remote", "172.16.0.0/16") + `
resource "aws_vpc_peering_connection" "remote" {
  vpc_id      = module.vpc.vpc_id
  peer_vpc_id = module.remote.vpc_id
  auto_accept = true
}
resource "aws_route" "peer" {
  route_table_id            = one(module.vpc.private_route_table_ids)
  destination_cidr_block    = "172.16.0.0/16"
  vpc_peering_connection_id = aws_vpc_peering_connection.remote.id
}
resource "aws_route" "back" {
  route_table_id            = one(module.remote.private_route_table_ids)
  destination_cidr_block    = "10.0.0.0/16"
  vpc_peering_connection_id = aws_vpc_peering_connection.remote.id
}
`
	write(t, dir, "main.tf", src)
	// The module is read where it lies, outside the temporary directory.
	cfg := Config{Paths: []string{dir}, Root: string(filepath.Separator)}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := active(rep, RuleTransitivePeer); len(got) > 0 {
		t.Errorf("%s: %+v", RuleTransitivePeer, got)
	}
	proj, err := loadProject(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := Build(proj.Resources)
	want := map[string]string{"172.16.0.0/16": "module.vpc.aws_route_table.private", "10.0.0.0/16": "module.remote.aws_route_table.private"}
	for _, tb := range m.Tables {
		for _, r := range tb.Routes {
			if r.Kind == "pcx" && (tb.Res == nil || resourceOf(tb.Res) != want[r.Dest.String()]) {
				t.Errorf("%s routes %s to the peering (%s)", tb.Addr, r.Dest, r.Where)
			}
		}
	}
	pub := publicSubnets(m)
	var public []string
	for _, s := range m.Subnets {
		if slices.Contains(pub, s.Addr) && !slices.Contains(public, resourceOf(s.Res)) {
			public = append(public, resourceOf(s.Res))
		}
	}
	slices.Sort(public)
	if got, want := strings.Join(public, " "), "module.remote.aws_subnet.public module.vpc.aws_subnet.public"; got != want {
		t.Errorf("public subnets %s, want %s", got, want)
	}
}
