variable "vpc_id" {}
variable "name" {}
variable "cidr" {}
variable "igw_id" {
  default = null
}

resource "aws_subnet" "this" {
  vpc_id                  = var.vpc_id
  cidr_block              = var.cidr
  map_public_ip_on_launch = var.igw_id != null
  tags                    = { Name = var.name }
}

resource "aws_route_table" "this" {
  vpc_id = var.vpc_id
  dynamic "route" {
    for_each = var.igw_id == null ? [] : [var.igw_id]
    content {
      cidr_block = "0.0.0.0/0"
      gateway_id = route.value
    }
  }
}

resource "aws_route_table_association" "this" {
  subnet_id      = aws_subnet.this.id
  route_table_id = aws_route_table.this.id
}

output "subnet_id" {
  value = aws_subnet.this.id
}
