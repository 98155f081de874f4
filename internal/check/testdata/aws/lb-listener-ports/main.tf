# Load balancers whose listeners sit on ports other services' numbers
# stand for. web: an application load balancer answering HTTPS on 445
# (SMB's port) and HTTP on 81, 82 and 8080, its group admitting the world
# on 81-82, 444-445 and 8080. shared: a group admitting the world on 445,
# carried by an application load balancer's HTTPS listener there and by an
# instance, where SMB may answer. nlb: a network load balancer passing 445
# to its targets' SMB.
resource "aws_vpc" "main" {
  cidr_block = "10.62.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.62.1.0/24"
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
resource "aws_security_group" "web" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 81
    to_port     = 82
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 444
    to_port     = 445
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 8080
    to_port     = 8080
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "web" {
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.public.id]
  security_groups            = [aws_security_group.web.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "smb" {
  load_balancer_arn = aws_lb.web.arn
  port              = 445
  protocol          = "HTTPS"
  certificate_arn   = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
resource "aws_lb_listener" "h81" {
  load_balancer_arn = aws_lb.web.arn
  port              = 81
  protocol          = "HTTP"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
resource "aws_lb_listener" "h82" {
  load_balancer_arn = aws_lb.web.arn
  port              = 82
  protocol          = "HTTP"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
resource "aws_lb_listener" "app" {
  load_balancer_arn = aws_lb.web.arn
  port              = 8080
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}

resource "aws_security_group" "shared" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 445
    to_port     = 445
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "shared" {
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.public.id]
  security_groups            = [aws_security_group.shared.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "shared" {
  load_balancer_arn = aws_lb.shared.arn
  port              = 445
  protocol          = "HTTPS"
  certificate_arn   = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
resource "aws_instance" "files" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.shared.id]
}

resource "aws_security_group" "nlb" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 445
    to_port     = 445
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "nlb" {
  load_balancer_type = "network"
  subnets            = [aws_subnet.public.id]
  security_groups    = [aws_security_group.nlb.id]
}
resource "aws_lb_target_group" "smb" {
  port     = 445
  protocol = "TCP"
  vpc_id   = aws_vpc.main.id
}
resource "aws_lb_listener" "nlb" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 445
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.smb.arn
  }
}
