# Two public subnets, and a module given their IDs that looks each up, by
# count and by for_each, as modules often do.

resource "aws_vpc" "main" {
  cidr_block = "10.30.0.0/16"
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  count      = 2
  vpc_id     = aws_vpc.main.id
  cidr_block = cidrsubnet("10.30.0.0/16", 8, count.index)
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}

resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

module "app" {
  source     = "./modules/app"
  vpc_id     = aws_vpc.main.id
  subnet_ids = aws_subnet.public[*].id
}

# Subnets made elsewhere, whose IDs are not given: their lookups stay
# not known statically, and an instance in one is read at its worst.
variable "legacy_subnet_ids" {
  type = list(string)
}

data "aws_subnet" "legacy" {
  count = length(var.legacy_subnet_ids)
  id    = var.legacy_subnet_ids[count.index]
}

resource "aws_security_group" "legacy" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 3389
    to_port     = 3389
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "legacy" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = data.aws_subnet.legacy[0].id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.legacy.id]
}
