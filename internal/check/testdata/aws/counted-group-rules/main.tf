# A security group made only when a flag says so (a count not known
# statically), its rules resources of their own naming it by
# aws_security_group.admin[0].id, and an instance in a public subnet that
# attaches it the same way.
variable "with_admin" {
  type = bool
}

resource "aws_vpc" "ops" {
  cidr_block = "10.80.0.0/16"
}

resource "aws_internet_gateway" "ops" {
  vpc_id = aws_vpc.ops.id
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.ops.id
  cidr_block              = "10.80.1.0/24"
  map_public_ip_on_launch = true
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.ops.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.ops.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "admin" {
  count  = var.with_admin ? 1 : 0
  vpc_id = aws_vpc.ops.id
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.admin[0].id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
}

resource "aws_security_group_rule" "out" {
  type              = "egress"
  security_group_id = aws_security_group.admin[0].id
  from_port         = 0
  to_port           = 0
  protocol          = "-1"
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_instance" "jump" {
  ami                    = "ami-0123456789abcdef0"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.admin[0].id]
  metadata_options {
    http_tokens = "required"
  }
}

# A counted group that a resource the model does not read attaches.
resource "aws_security_group" "batch" {
  count  = var.with_admin ? 1 : 0
  vpc_id = aws_vpc.ops.id
}

resource "aws_batch_compute_environment" "jobs" {
  type = "MANAGED"
  compute_resources {
    type               = "FARGATE"
    max_vcpus          = 4
    subnets            = [aws_subnet.public.id]
    security_group_ids = [aws_security_group.batch[0].id]
  }
}
