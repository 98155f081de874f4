variable "network" {
  type = string
}

resource "aws_vpc" "this" {
  count      = 1
  cidr_block = var.network
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this[0].id
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.this[0].id
  cidr_block = cidrsubnet(var.network, 8, 0)
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this[0].id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

output "vpc_id" {
  value = aws_vpc.this[0].id
}

output "vpc_cidr" {
  value = aws_vpc.this[0].cidr_block
}

# As the public VPC module writes it.
output "vpc_cidr_try" {
  value = try(aws_vpc.this[0].cidr_block, null)
}

output "public_subnet" {
  value = aws_subnet.public.id
}
