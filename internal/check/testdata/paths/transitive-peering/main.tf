# A↔B and B↔C are peered; A routes C's range through its peering with B.
# Peering is not transitive: that route goes nowhere.
resource "aws_vpc" "a" {
  cidr_block = "10.1.0.0/16"
}

resource "aws_vpc" "b" {
  cidr_block = "10.2.0.0/16"
}

resource "aws_vpc" "c" {
  cidr_block = "10.3.0.0/16"
}

resource "aws_flow_log" "all" {
  for_each = { a = aws_vpc.a.id, b = aws_vpc.b.id, c = aws_vpc.c.id }
  vpc_id   = each.value
}

resource "aws_vpc_peering_connection" "ab" {
  vpc_id      = aws_vpc.a.id
  peer_vpc_id = aws_vpc.b.id
}

resource "aws_vpc_peering_connection" "bc" {
  vpc_id      = aws_vpc.b.id
  peer_vpc_id = aws_vpc.c.id
}

resource "aws_route_table" "a" {
  vpc_id = aws_vpc.a.id
  route {
    cidr_block                = aws_vpc.b.cidr_block
    vpc_peering_connection_id = aws_vpc_peering_connection.ab.id
  }
}

resource "aws_route" "a_to_c" {
  route_table_id            = aws_route_table.a.id
  destination_cidr_block    = aws_vpc.c.cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection.ab.id
}
