package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// cellResources is how many resources one generated cell holds.
const cellResources = 20

// generate writes a project of about n resources: cells of one VPC with
// public and private subnets, routing, groups, instances, a database, a
// load balancer and encrypted storage. Every tenth cell plants an SSH group
// open through 0.0.0.0/1 + 128.0.0.0/1 on a public bastion; every tenth
// (offset 5) a database with a public address in a public subnet; every
// cell has the same 0.0.0.0/0:5432 rule on a private database, which is not
// reachable. It returns the resource and cell counts.
func generate(dir string, n int) (int, int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	cells := n / cellResources
	if cells == 0 {
		cells = 1
	}
	total := 0
	for c := 0; c < cells; c++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cell_%05d.tf", c)))
		if err != nil {
			return 0, 0, err
		}
		w := bufio.NewWriter(f)
		total += cell(w, c)
		if err := w.Flush(); err != nil {
			f.Close()
			return 0, 0, err
		}
		if err := f.Close(); err != nil {
			return 0, 0, err
		}
	}
	return total, cells, nil
}

func cell(w *bufio.Writer, c int) int {
	a, b := c/250, c%250
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p(`resource "aws_vpc" "v%[1]d" {
  cidr_block = "10.%[2]d.%[3]d.0/24"
}

resource "aws_flow_log" "v%[1]d" {
  vpc_id       = aws_vpc.v%[1]d.id
  traffic_type = "ALL"
}

resource "aws_internet_gateway" "v%[1]d" {
  vpc_id = aws_vpc.v%[1]d.id
}

resource "aws_subnet" "pub%[1]d" {
  vpc_id     = aws_vpc.v%[1]d.id
  cidr_block = "10.%[2]d.%[3]d.0/26"
}

resource "aws_subnet" "priv%[1]d" {
  vpc_id     = aws_vpc.v%[1]d.id
  cidr_block = "10.%[2]d.%[3]d.128/26"
}

resource "aws_route_table" "pub%[1]d" {
  vpc_id = aws_vpc.v%[1]d.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.v%[1]d.id
  }
}

resource "aws_route_table_association" "pub%[1]d" {
  subnet_id      = aws_subnet.pub%[1]d.id
  route_table_id = aws_route_table.pub%[1]d.id
}

resource "aws_kms_key" "k%[1]d" {
  enable_key_rotation = true
}

resource "aws_security_group" "web%[1]d" {
  vpc_id = aws_vpc.v%[1]d.id
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_lb" "web%[1]d" {
  internal        = false
  subnets         = [aws_subnet.pub%[1]d.id]
  security_groups = [aws_security_group.web%[1]d.id]
}

resource "aws_lb_listener" "web%[1]d" {
  load_balancer_arn = aws_lb.web%[1]d.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = "arn:aws:acm:eu-west-1:111122223333:certificate/c%[1]d"
  default_action {
    type             = "forward"
    target_group_arn = "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/t%[1]d/1"
  }
}

resource "aws_security_group" "app%[1]d" {
  vpc_id = aws_vpc.v%[1]d.id
  ingress {
    from_port       = 8080
    to_port         = 8080
    protocol        = "tcp"
    security_groups = [aws_security_group.web%[1]d.id]
  }
}

resource "aws_instance" "app%[1]d" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.priv%[1]d.id
  vpc_security_group_ids = [aws_security_group.app%[1]d.id]
}

resource "aws_ebs_volume" "app%[1]d" {
  availability_zone = "eu-west-1a"
  size              = 10
  encrypted         = true
  kms_key_id        = aws_kms_key.k%[1]d.arn
}

resource "aws_security_group" "db%[1]d" {
  vpc_id = aws_vpc.v%[1]d.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_db_subnet_group" "db%[1]d" {
  name       = "db%[1]d"
  subnet_ids = [aws_subnet.priv%[1]d.id]
}

resource "aws_db_instance" "private%[1]d" {
  engine                 = "postgres"
  instance_class         = "db.t4g.micro"
  publicly_accessible    = true
  db_subnet_group_name   = aws_db_subnet_group.db%[1]d.name
  vpc_security_group_ids = [aws_security_group.db%[1]d.id]
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.k%[1]d.arn
}

`, c, a, b)
	n := 18
	switch c % 10 {
	case 0:
		p(`resource "aws_security_group" "split_%[1]d" {
  vpc_id = aws_vpc.v%[1]d.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/1", "128.0.0.0/1"]
  }
}

resource "aws_instance" "bastion_%[1]d" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.pub%[1]d.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.split_%[1]d.id]
}
`, c)
		n += 2
	case 5:
		p(`resource "aws_db_subnet_group" "pub%[1]d" {
  name       = "pub%[1]d"
  subnet_ids = [aws_subnet.pub%[1]d.id]
}

resource "aws_db_instance" "db_%[1]d" {
  engine                 = "postgres"
  instance_class         = "db.t4g.micro"
  publicly_accessible    = true
  db_subnet_group_name   = aws_db_subnet_group.pub%[1]d.name
  vpc_security_group_ids = [aws_security_group.db%[1]d.id]
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.k%[1]d.arn
}
`, c)
		n += 2
	default:
		p(`resource "aws_s3_bucket" "b%[1]d" {
  bucket = "bench-%[1]d"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "b%[1]d" {
  bucket = aws_s3_bucket.b%[1]d.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.k%[1]d.arn
    }
  }
}
`, c)
		n += 2
	}
	return n
}
