# Public load balancers whose only security group admits the whole internet
# on every TCP port. A load balancer answers only on its listeners' ports:
# web on 443 and 80, nothing else its group opens is reached; app on 8443,
# an application's port; nlb, a network load balancer with a group, on 443;
# dyn on a port given at apply time, which may be any.
resource "aws_vpc" "main" {
  cidr_block = "10.61.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.61.1.0/24"
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
resource "aws_security_group" "alb" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "web" {
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.public.id]
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.web.arn
  port              = 443
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
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

variable "port" {
  type = number
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "app" {
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.public.id]
  security_groups            = [aws_security_group.app.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "app" {
  load_balancer_arn = aws_lb.app.arn
  port              = 8443
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
resource "aws_security_group" "nlb" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 1024
    to_port     = 65535
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "nlb" {
  load_balancer_type = "network"
  subnets            = [aws_subnet.public.id]
  security_groups    = [aws_security_group.nlb.id]
}
resource "aws_lb_listener" "nlb" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 443
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/abc"
  }
}
resource "aws_security_group" "dyn" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "dyn" {
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.public.id]
  security_groups            = [aws_security_group.dyn.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "dyn" {
  load_balancer_arn = aws_lb.dyn.arn
  port              = var.port
  protocol          = "HTTP"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
# A network load balancer whose group admits the world on 2222, which it
# forwards to SSH on its targets.
resource "aws_security_group" "fwd" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 2222
    to_port     = 2222
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "fwd" {
  load_balancer_type = "network"
  subnets            = [aws_subnet.public.id]
  security_groups    = [aws_security_group.fwd.id]
}
resource "aws_lb_target_group" "ssh" {
  port     = 22
  protocol = "TCP"
  vpc_id   = aws_vpc.main.id
}
resource "aws_lb_listener" "fwd" {
  load_balancer_arn = aws_lb.fwd.arn
  port              = 2222
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ssh.arn
  }
}
# An application load balancer with an HTTPS listener on 445, SMB's port,
# behind a group that admits the world on 443 to 445: what answers there
# is a web application.
resource "aws_security_group" "smb" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 443
    to_port     = 445
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "smb" {
  load_balancer_type         = "application"
  subnets                    = [aws_subnet.public.id]
  security_groups            = [aws_security_group.smb.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "smb" {
  load_balancer_arn = aws_lb.smb.arn
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
# One on a listener port given at apply time, in subnets given so too.
variable "subnets" {
  type = list(string)
}
resource "aws_security_group" "dyn2" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 0
    to_port     = 65535
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_lb" "dyn2" {
  load_balancer_type         = "application"
  subnets                    = var.subnets
  security_groups            = [aws_security_group.dyn2.id]
  drop_invalid_header_fields = true
}
resource "aws_lb_listener" "dyn2" {
  load_balancer_arn = aws_lb.dyn2.arn
  port              = var.port
  protocol          = "HTTP"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "200"
    }
  }
}
