package check

import "testing"

// A DMS replication instance opens connections to its source and target
// endpoints and answers none: a public one in a public subnet has a public
// path (AWS-NET-002), but no port of it is reached, whatever its group
// admits, and that group's world-open rule is judged as one attached only
// to what takes no connection.
func TestDMSReplicationInstanceTakesNoConnection(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_internet_gateway" "g" {
  vpc_id = aws_vpc.v.id
}

resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_subnet" "b" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.2.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.v.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.g.id
  }
}

resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table_association" "b" {
  subnet_id      = aws_subnet.b.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "dms" {
  vpc_id = aws_vpc.v.id
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_dms_replication_subnet_group" "g" {
  replication_subnet_group_id          = "migration"
  replication_subnet_group_description = "migration"
  subnet_ids                           = [aws_subnet.a.id, aws_subnet.b.id]
}

resource "aws_dms_replication_instance" "r" {
  replication_instance_id     = "migration"
  replication_instance_class  = "dms.t3.micro"
  replication_subnet_group_id = aws_dms_replication_subnet_group.g.id
  vpc_security_group_ids      = [aws_security_group.dms.id]
  publicly_accessible         = true
}
`)
	if f := findingOn(rep, RuleDataTierPublic, "aws_dms_replication_instance.r"); f == nil {
		t.Errorf("no %s on the public replication instance", RuleDataTierPublic)
	}
	if f := findingOn(rep, RuleExposedPort, "aws_dms_replication_instance.r"); f != nil {
		t.Errorf("a port of the replication instance is reached: %s", f.Message)
	}
	for _, f := range rep.Findings {
		if f.Address == "aws_security_group.dms" && f.Severity >= High {
			t.Errorf("%s %s on its group: %s", f.RuleID, f.Severity, f.Message)
		}
	}
}
