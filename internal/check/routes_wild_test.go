package check

import (
	"path/filepath"
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
			proj, err := loadProject(filepath.Join(dir, tc.example), Config{})
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
