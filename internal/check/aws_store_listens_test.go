package check

import (
	"strings"
	"testing"
)

// peeredStores is a data VPC peered with an application VPC, routes both
// ways, whose data group admits the whole peer on every protocol and port.
const peeredStores = `
resource "aws_vpc" "data" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_vpc" "apps" {
  cidr_block = "10.9.0.0/16"
}
resource "aws_subnet" "data" {
  vpc_id     = aws_vpc.data.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_vpc_peering_connection" "apps" {
  vpc_id      = aws_vpc.data.id
  peer_vpc_id = aws_vpc.apps.id
  auto_accept = true
}
resource "aws_route" "to_apps" {
  route_table_id            = aws_vpc.data.main_route_table_id
  destination_cidr_block    = "10.9.0.0/16"
  vpc_peering_connection_id = aws_vpc_peering_connection.apps.id
}
resource "aws_route" "to_data" {
  route_table_id            = aws_vpc.apps.main_route_table_id
  destination_cidr_block    = "10.0.0.0/16"
  vpc_peering_connection_id = aws_vpc_peering_connection.apps.id
}
resource "aws_security_group" "data" {
  vpc_id = aws_vpc.data.id
  ingress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["10.9.0.0/16"]
  }
}
resource "aws_memorydb_subnet_group" "cache" {
  name       = "cache"
  subnet_ids = [aws_subnet.data.id]
}
resource "aws_memorydb_cluster" "cache" {
  name               = "cache"
  node_type          = "db.t4g.small"
  acl_name           = "app"
  subnet_group_name  = aws_memorydb_subnet_group.cache.id
  security_group_ids = [aws_security_group.data.id]
}
resource "aws_docdb_subnet_group" "docs" {
  subnet_ids = [aws_subnet.data.id]
}
resource "aws_docdb_cluster" "docs" {
  db_subnet_group_name   = aws_docdb_subnet_group.docs.name
  vpc_security_group_ids = [aws_security_group.data.id]
  storage_encrypted      = true
}
resource "aws_docdb_cluster_instance" "docs" {
  cluster_identifier = aws_docdb_cluster.docs.id
  instance_class     = "db.r6g.large"
}
resource "aws_neptune_subnet_group" "graph" {
  subnet_ids = [aws_subnet.data.id]
}
resource "aws_neptune_cluster" "graph" {
  neptune_subnet_group_name = aws_neptune_subnet_group.graph.name
  vpc_security_group_ids    = [aws_security_group.data.id]
  storage_encrypted         = true
}
resource "aws_neptune_cluster_instance" "graph" {
  cluster_identifier = aws_neptune_cluster.graph.id
  instance_class     = "db.r6g.large"
}
`

// TestStoresAnswerOnTheirPortAlone checks that a MemoryDB cluster, a
// DocumentDB instance and a Neptune instance answer on their own port
// alone (6379 unless port says otherwise, whatever the engine; 27017 or
// the cluster's port; 8182 or the instance's port): a peer admitted on
// every port reaches that port, not SSH or RDP, which they were said to
// answer on.
func TestStoresAnswerOnTheirPortAlone(t *testing.T) {
	for _, tc := range []struct {
		name, src, addr, want string
	}{
		{"memorydb", peeredStores, "aws_memorydb_cluster.cache", "tcp 6379 (Redis)"},
		{"memorydb port", strings.Replace(peeredStores, `acl_name           = "app"`, `acl_name = "app"
  port     = 6400`, 1), "aws_memorydb_cluster.cache", "tcp 6400 (cache service port)"},
		{"docdb", peeredStores, "aws_docdb_cluster_instance.docs", "tcp 27017 (MongoDB)"},
		{"docdb port", strings.Replace(peeredStores, `storage_encrypted      = true`, `storage_encrypted = true
  port              = 27020`, 1), "aws_docdb_cluster_instance.docs", "tcp 27020 (docdb service port)"},
		{"neptune", peeredStores, "aws_neptune_cluster_instance.graph", "tcp 8182 (neptune service port)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, tc.src), RuleLateral, tc.addr)
			if len(got) != 1 {
				t.Fatalf("%s findings on %s: %+v", RuleLateral, tc.addr, got)
			}
			on := got[0].Message[strings.LastIndex(got[0].Message, " on ")+4:]
			if on != tc.want {
				t.Errorf("%s is reached on %q, want %q", tc.addr, on, tc.want)
			}
		})
	}
}
