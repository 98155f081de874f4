package check

import (
	"strings"
	"testing"
)

// mskPublicUnknown is three MSK clusters in a subnet routed to an internet
// gateway, behind a group open to the internet on the public ports: one
// whose connectivity_info is a dynamic block over a variable with no value
// (as the public MSK module writes it), one whose public_access type is a
// variable with no value, one public.
const mskPublicUnknown = `variable "broker_node_connectivity_info" {
  type    = any
}
variable "public_type" {
  type = string
}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.public.id
}
resource "aws_security_group" "msk" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 9194
    to_port     = 9198
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_msk_cluster" "dyn" {
  cluster_name           = "dyn"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 2
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = [aws_subnet.a.id]
    security_groups = [aws_security_group.msk.id]
    dynamic "connectivity_info" {
      for_each = length(var.broker_node_connectivity_info) > 0 ? [var.broker_node_connectivity_info] : []
      content {
        dynamic "public_access" {
          for_each = try([connectivity_info.value.public_access], [])
          content {
            type = try(public_access.value.type, null)
          }
        }
      }
    }
  }
}
resource "aws_msk_cluster" "var" {
  cluster_name           = "var"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 2
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = [aws_subnet.a.id]
    security_groups = [aws_security_group.msk.id]
    connectivity_info {
      public_access {
        type = var.public_type
      }
    }
  }
}
resource "aws_msk_cluster" "pub" {
  cluster_name           = "pub"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 2
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = [aws_subnet.a.id]
    security_groups = [aws_security_group.msk.id]
    connectivity_info {
      public_access {
        type = "SERVICE_PROVIDED_EIPS"
      }
    }
  }
}
`

// TestMSKPublicAccessUnknown checks that an MSK cluster whose public
// access is not known statically is read as public, said so, graded below
// one proven public; both were read as private and passed over.
func TestMSKPublicAccessUnknown(t *testing.T) {
	rep := checkSource(t, mskPublicUnknown)
	for _, addr := range []string{"aws_msk_cluster.dyn", "aws_msk_cluster.var"} {
		fs := activeOn(rep, "AWS-NET-001", addr)
		if len(fs) != 1 {
			t.Errorf("AWS-NET-001 on %s: %+v", addr, fs)
			continue
		}
		if fs[0].Severity != High || !strings.Contains(fs[0].Message, "tcp 9194 (kafka service port), 9196 (kafka service port), 9198 (kafka service port) may be reachable from the internet") ||
			!strings.Contains(fs[0].Message, "connectivity_info.public_access.type not known statically: assumed SERVICE_PROVIDED_EIPS") {
			t.Errorf("%s: %s %s", addr, fs[0].Severity, fs[0].Message)
		}
	}
	if fs := activeOn(rep, "AWS-NET-001", "aws_msk_cluster.pub"); len(fs) != 1 || fs[0].Severity != Critical {
		t.Errorf("the public cluster: %+v", fs)
	}
	// Public access disabled, or left out, is private.
	for _, s := range []string{
		strings.ReplaceAll(mskPublicUnknown, "type = var.public_type", `type = "DISABLED"`),
		strings.ReplaceAll(mskPublicUnknown, `variable "public_type" {
  type = string
}`, `variable "public_type" {
  type    = string
  default = "DISABLED"
}`),
	} {
		if fs := activeOn(checkSource(t, s), "AWS-NET-001", "aws_msk_cluster.var"); len(fs) != 0 {
			t.Errorf("public access disabled: %+v", fs)
		}
	}
	s := strings.ReplaceAll(mskPublicUnknown, `variable "broker_node_connectivity_info" {
  type    = any
}`, `variable "broker_node_connectivity_info" {
  type    = any
  default = {}
}`)
	if fs := activeOn(checkSource(t, s), "AWS-NET-001", "aws_msk_cluster.dyn"); len(fs) != 0 {
		t.Errorf("no connectivity_info: %+v", fs)
	}
}
