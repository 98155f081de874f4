# Lists with an element not known statically: a variable without a value
# among known values. Each element may be anything, so each list is read
# at its most permissive.
variable "extra_cidr" {
  type = string
}
variable "extra_sg" {
  type = string
}

# The API endpoint admits an office's range and one given by a variable:
# that one may be any range.
resource "aws_eks_cluster" "api" {
  name     = "api"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids          = ["subnet-1"]
    public_access_cidrs = ["198.51.100.0/24", var.extra_cidr]
  }
}

# Every range is already admitted: the unknown one widens nothing.
resource "aws_eks_cluster" "open" {
  name     = "open"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids          = ["subnet-1"]
    public_access_cidrs = ["0.0.0.0/0", var.extra_cidr]
  }
}

# A public database in a public subnet behind a group that admits only the
# VPC, and one more group given by a variable: that one may admit anyone.
resource "aws_vpc" "main" {
  cidr_block = "10.93.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.93.1.0/24"
  map_public_ip_on_launch = true
}
resource "aws_subnet" "public_b" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.93.2.0/24"
  map_public_ip_on_launch = true
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
resource "aws_route_table_association" "public_b" {
  subnet_id      = aws_subnet.public_b.id
  route_table_id = aws_route_table.public.id
}
resource "aws_security_group" "internal" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    cidr_blocks = ["10.93.0.0/16"]
  }
}
resource "aws_db_subnet_group" "public" {
  name       = "public"
  subnet_ids = [aws_subnet.public.id, aws_subnet.public_b.id]
}
resource "aws_db_instance" "orders" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.public.name
  publicly_accessible    = true
  vpc_security_group_ids = [aws_security_group.internal.id, var.extra_sg]
}

# An interface behind the internal group, to which another group, given by
# a variable, is attached.
resource "aws_network_interface" "app" {
  subnet_id       = aws_subnet.public.id
  security_groups = [aws_security_group.internal.id]
}
resource "aws_eip" "app" {
  network_interface = aws_network_interface.app.id
}
resource "aws_network_interface_sg_attachment" "extra" {
  network_interface_id = aws_network_interface.app.id
  security_group_id    = var.extra_sg
}

# Ports not known statically: a database's port and a classic load
# balancer's listener port, each from a variable without a value, behind
# a group that admits MySQL's port and SSH from everywhere. Either may
# listen there.
variable "db_port" {
  type = number
}
variable "lb_port" {
  type = number
}
resource "aws_security_group" "world" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 3306
    to_port     = 3306
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_db_instance" "reports" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  port                   = var.db_port
  db_subnet_group_name   = aws_db_subnet_group.public.name
  publicly_accessible    = true
  storage_encrypted      = true
  vpc_security_group_ids = [aws_security_group.world.id]
}
resource "aws_elb" "web" {
  subnets         = [aws_subnet.public.id]
  security_groups = [aws_security_group.world.id]
  listener {
    lb_port           = 443
    lb_protocol       = "tcp"
    instance_port     = 8443
    instance_protocol = "tcp"
  }
  listener {
    lb_port           = var.lb_port
    lb_protocol       = "tcp"
    instance_port     = 8080
    instance_protocol = "tcp"
  }
}

# Subnets not known statically. A database's subnet group holds a private
# subnet and one from a variable: that one may be any subnet, one routed
# to the internet too. Another's holds some of the inner subnets, how many
# not known statically: only those, none routed to the internet.
variable "extra_subnet" {
  type = string
}
variable "inner_count" {
  type = number
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.93.10.0/24"
}
resource "aws_subnet" "inner" {
  count      = 2
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.93.2${count.index}.0/24"
}
resource "aws_db_subnet_group" "mixed" {
  name       = "mixed"
  subnet_ids = [aws_subnet.private.id, var.extra_subnet]
}
resource "aws_db_subnet_group" "inner" {
  name       = "inner"
  subnet_ids = slice(aws_subnet.inner[*].id, 0, var.inner_count)
}
resource "aws_db_instance" "ledger" {
  engine                 = "mysql"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.mixed.name
  publicly_accessible    = true
  storage_encrypted      = true
  vpc_security_group_ids = [aws_security_group.world.id]
}
resource "aws_db_instance" "audit" {
  engine                 = "mysql"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.inner.name
  publicly_accessible    = true
  storage_encrypted      = true
  vpc_security_group_ids = [aws_security_group.world.id]
}
# The first subnets of a list of a public and a private one, how many not
# known statically: the public one may be among them.
resource "aws_db_subnet_group" "either" {
  name       = "either"
  subnet_ids = slice([aws_subnet.public.id, aws_subnet.private.id], 0, var.inner_count)
}
resource "aws_db_instance" "archive" {
  engine                 = "mysql"
  instance_class         = "db.t3.micro"
  db_subnet_group_name   = aws_db_subnet_group.either.name
  publicly_accessible    = true
  storage_encrypted      = true
  vpc_security_group_ids = [aws_security_group.world.id]
}

# Security group rules set as an attribute: from a variable without a
# value, or a list of a known rule and one from such a variable. Either
# may admit anything.
variable "rules" {
  type = any
}
variable "rule" {
  type = any
}
resource "aws_security_group" "rules" {
  vpc_id  = aws_vpc.main.id
  ingress = var.rules
}
resource "aws_security_group" "mixed" {
  vpc_id = aws_vpc.main.id
  ingress = [{
    protocol         = "tcp"
    from_port        = 443
    to_port          = 443
    cidr_blocks      = ["10.93.0.0/16"]
    ipv6_cidr_blocks = []
    prefix_list_ids  = []
    security_groups  = []
    self             = false
    description      = "https from the VPC"
  }, var.rule]
}
resource "aws_instance" "rules" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.rules.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_instance" "mixed" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.mixed.id]
  metadata_options {
    http_tokens = "required"
  }
}

# A route table whose routes come from a variable without a value: one may
# be a default route to the internet gateway.
variable "routes" {
  type = any
}
resource "aws_subnet" "routed" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.93.30.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route_table" "routed" {
  vpc_id = aws_vpc.main.id
  route  = var.routes
}
resource "aws_route_table_association" "routed" {
  subnet_id      = aws_subnet.routed.id
  route_table_id = aws_route_table.routed.id
}
resource "aws_instance" "routed" {
  ami                    = "ami-0abcdef1234567890"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.routed.id
  vpc_security_group_ids = [aws_security_group.world.id]
  metadata_options {
    http_tokens = "required"
  }
}

# Whether the API endpoint is public is not known statically: it may be.
variable "public_api" {
  type = bool
}
resource "aws_eks_cluster" "flag" {
  name     = "flag"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids             = ["subnet-1"]
    endpoint_public_access = var.public_api
  }
}
