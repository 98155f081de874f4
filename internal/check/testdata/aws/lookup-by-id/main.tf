# A VPC with a public subnet, and a module that looks up the VPC and the
# subnet it is given by their IDs, as modules often do.

resource "aws_vpc" "main" {
  cidr_block = "10.20.0.0/16"
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.20.1.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "ops" {
  name   = "ops"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 3389
    to_port     = 3389
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "app" {
  source    = "./modules/app"
  vpc_id    = aws_vpc.main.id
  subnet_id = aws_subnet.public.id
  ops_sg_id = aws_security_group.ops.id
}

# A group made elsewhere, looked up by the ID written here: every
# reference to it is that ID.
data "aws_security_group" "legacy" {
  id = "sg-0a1b2c3d4e5f60718"
}

resource "aws_instance" "legacy" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [data.aws_security_group.legacy.id]
}
