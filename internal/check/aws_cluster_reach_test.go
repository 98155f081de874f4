package check

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// clusterProject is a VPC with an application subnet and a database
// subnet group; the application's group is admitted by the databases'.
const clusterProject = `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "db" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_db_subnet_group" "db" {
  name       = "db"
  subnet_ids = [aws_subnet.db.id]
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
}
resource "aws_instance" "app" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.app.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 0
    to_port         = 65535
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }
}
`

// TestReachCluster checks that --reach on an RDS, DocumentDB or Neptune
// cluster answers for its instances, saying which, and, with none
// declared, for the cluster's endpoint in its subnets behind its groups,
// on the engine's port. A cluster's address was refused as no resource
// traffic can be sent to.
func TestReachCluster(t *testing.T) {
	for _, tc := range []struct {
		name, cluster, instance string
		port                    int
	}{
		{"rds", `resource "aws_rds_cluster" "orders" {
  engine                 = "aurora-postgresql"
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
`, `resource "aws_rds_cluster_instance" "one" {
  cluster_identifier = aws_rds_cluster.orders.id
  instance_class     = "db.r6g.large"
  engine             = "aurora-postgresql"
}
`, 5432},
		{"docdb", `resource "aws_docdb_cluster" "orders" {
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
`, `resource "aws_docdb_cluster_instance" "one" {
  cluster_identifier = aws_docdb_cluster.orders.id
  instance_class     = "db.r6g.large"
}
`, 27017},
		{"neptune", `resource "aws_neptune_subnet_group" "db" {
  name       = "db"
  subnet_ids = [aws_subnet.db.id]
}
resource "aws_neptune_cluster" "orders" {
  neptune_subnet_group_name = aws_neptune_subnet_group.db.name
  vpc_security_group_ids    = [aws_security_group.db.id]
}
`, `resource "aws_neptune_cluster_instance" "one" {
  cluster_identifier = aws_neptune_cluster.orders.id
  instance_class     = "db.r6g.large"
}
`, 8182},
	} {
		typ := "aws_" + tc.name + "_cluster"
		addr := typ + ".orders"
		inst := typ + "_instance.one"
		for _, with := range []bool{true, false} {
			name := tc.name + "/no instance"
			src := clusterProject + tc.cluster
			if with {
				name = tc.name + "/instance"
				src += tc.instance
			}
			t.Run(name, func(t *testing.T) {
				dir := writeProject(t, src)
				acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, addr)
				if err != nil {
					t.Fatal(err)
				}
				want := addr + " (the cluster's endpoint: no instance of it is declared)"
				if with {
					want = inst
				}
				if !slices.ContainsFunc(acc, func(a Access) bool {
					return strings.HasPrefix(a.Source, "aws_instance.app") && a.Port == tc.port && a.Target == want
				}) {
					t.Errorf("--reach %s: the application on %d through %q not listed: %+v", addr, tc.port, want, acc)
				}
				var out bytes.Buffer
				if err := WriteAccess(&out, addr, acc, "text"); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), "answered for "+want) {
					t.Errorf("--reach %s does not say what it answered for (%s):\n%s", addr, want, out.String())
				}
			})
		}
	}
}
