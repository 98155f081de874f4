# Private services reached from the internet only through API Gateway
# and CloudFront: no internet gateway, no public address.
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 8080
    to_port     = 8080
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "app" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.app.id]
}

resource "aws_instance" "hidden" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.app.id]
}

# A regional REST API's VPC link to an internal network load balancer.
resource "aws_lb" "nlb" {
  name               = "nlb"
  internal           = true
  load_balancer_type = "network"
  subnets            = [aws_subnet.private.id]
}

resource "aws_lb_target_group" "app" {
  name        = "app"
  port        = 8080
  protocol    = "TCP"
  vpc_id      = aws_vpc.main.id
  target_type = "instance"
}

resource "aws_lb_target_group_attachment" "app" {
  target_group_arn = aws_lb_target_group.app.arn
  target_id        = aws_instance.app.id
}

resource "aws_lb_listener" "nlb" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 80
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }
}

resource "aws_api_gateway_rest_api" "api" {
  name = "api"
  endpoint_configuration {
    types = ["REGIONAL"]
  }
}

resource "aws_api_gateway_vpc_link" "link" {
  name        = "link"
  target_arns = [aws_lb.nlb.arn]
}

resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_rest_api.api.root_resource_id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "any" {
  rest_api_id   = aws_api_gateway_rest_api.api.id
  resource_id   = aws_api_gateway_resource.proxy.id
  http_method   = "ANY"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "app" {
  rest_api_id             = aws_api_gateway_rest_api.api.id
  resource_id             = aws_api_gateway_resource.proxy.id
  http_method             = aws_api_gateway_method.any.http_method
  type                    = "HTTP_PROXY"
  integration_http_method = "ANY"
  connection_type         = "VPC_LINK"
  connection_id           = aws_api_gateway_vpc_link.link.id
  uri                     = "http://${aws_lb.nlb.dns_name}/{proxy}"
}

# A PRIVATE REST API publishes nothing to the internet.
resource "aws_lb" "nlb_private" {
  name               = "nlb-private"
  internal           = true
  load_balancer_type = "network"
  subnets            = [aws_subnet.private.id]
}

resource "aws_lb_target_group" "hidden" {
  name     = "hidden"
  port     = 8080
  protocol = "TCP"
  vpc_id   = aws_vpc.main.id
}

resource "aws_lb_target_group_attachment" "hidden" {
  target_group_arn = aws_lb_target_group.hidden.arn
  target_id        = aws_instance.hidden.id
}

resource "aws_lb_listener" "nlb_private" {
  load_balancer_arn = aws_lb.nlb_private.arn
  port              = 80
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.hidden.arn
  }
}

resource "aws_api_gateway_rest_api" "private" {
  name = "private"
  endpoint_configuration {
    types = ["PRIVATE"]
  }
}

resource "aws_api_gateway_vpc_link" "private" {
  name        = "private"
  target_arns = [aws_lb.nlb_private.arn]
}

resource "aws_api_gateway_integration" "hidden" {
  rest_api_id     = aws_api_gateway_rest_api.private.id
  resource_id     = aws_api_gateway_rest_api.private.root_resource_id
  http_method     = "GET"
  type            = "HTTP_PROXY"
  connection_type = "VPC_LINK"
  connection_id   = aws_api_gateway_vpc_link.private.id
  uri             = "http://${aws_lb.nlb_private.dns_name}/"
}

# An HTTP API's VPC link, in its own group, to an internal ALB that
# admits that group only; the ALB forwards to an auto scaling group.
resource "aws_security_group" "link" {
  vpc_id = aws_vpc.main.id
}

resource "aws_security_group" "alb" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 80
    to_port         = 80
    protocol        = "tcp"
    security_groups = [aws_security_group.link.id]
  }
}

resource "aws_security_group" "web" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 8000
    to_port         = 8000
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }
}

resource "aws_lb" "alb" {
  name               = "alb"
  internal           = true
  load_balancer_type = "application"
  subnets            = [aws_subnet.private.id]
  security_groups    = [aws_security_group.alb.id]
}

resource "aws_lb_target_group" "web" {
  name     = "web"
  port     = 8000
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
}

resource "aws_lb_listener" "alb" {
  load_balancer_arn = aws_lb.alb.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_launch_template" "web" {
  image_id               = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.web.id]
}

resource "aws_autoscaling_group" "web" {
  min_size            = 1
  max_size            = 2
  vpc_zone_identifier = [aws_subnet.private.id]
  target_group_arns   = [aws_lb_target_group.web.arn]
  launch_template {
    id = aws_launch_template.web.id
  }
}

resource "aws_apigatewayv2_api" "http" {
  name          = "http"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_vpc_link" "link" {
  name               = "link"
  subnet_ids         = [aws_subnet.private.id]
  security_group_ids = [aws_security_group.link.id]
}

resource "aws_apigatewayv2_integration" "web" {
  api_id             = aws_apigatewayv2_api.http.id
  integration_type   = "HTTP_PROXY"
  integration_method = "ANY"
  connection_type    = "VPC_LINK"
  connection_id      = aws_apigatewayv2_vpc_link.link.id
  integration_uri    = aws_lb_listener.alb.arn
}

# CloudFront's VPC origin to a private instance, over HTTPS only.
resource "aws_security_group" "origin" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 80
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}

resource "aws_instance" "origin" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.origin.id]
}

resource "aws_cloudfront_vpc_origin" "origin" {
  vpc_origin_endpoint_config {
    name                   = "origin"
    arn                    = aws_instance.origin.arn
    http_port              = 80
    https_port             = 443
    origin_protocol_policy = "https-only"
    origin_ssl_protocols {
      items    = ["TLSv1.2"]
      quantity = 1
    }
  }
}

resource "aws_cloudfront_distribution" "cdn" {
  enabled = true
  origin {
    domain_name = aws_instance.origin.private_dns
    origin_id   = "origin"
    vpc_origin_config {
      vpc_origin_id = aws_cloudfront_vpc_origin.origin.id
    }
  }
  default_cache_behavior {
    target_origin_id       = "origin"
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
  }
  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }
  viewer_certificate {
    cloudfront_default_certificate = true
  }
}

# An HTTP API's VPC link to the tasks an ECS service registers in Cloud
# Map, on the registered port; their group admits the link's group.
resource "aws_security_group" "tasks" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 9000
    to_port         = 9000
    protocol        = "tcp"
    security_groups = [aws_security_group.link.id]
  }
}

resource "aws_service_discovery_private_dns_namespace" "internal" {
  name = "internal.example"
  vpc  = aws_vpc.main.id
}

resource "aws_service_discovery_service" "tasks" {
  name = "tasks"
  dns_config {
    namespace_id = aws_service_discovery_private_dns_namespace.internal.id
    dns_records {
      ttl  = 10
      type = "SRV"
    }
  }
}

resource "aws_ecs_service" "tasks" {
  name            = "tasks"
  task_definition = "tasks"
  network_configuration {
    subnets         = [aws_subnet.private.id]
    security_groups = [aws_security_group.tasks.id]
  }
  service_registries {
    registry_arn = aws_service_discovery_service.tasks.arn
    port         = 9000
  }
}

resource "aws_apigatewayv2_integration" "tasks" {
  api_id             = aws_apigatewayv2_api.http.id
  integration_type   = "HTTP_PROXY"
  integration_method = "ANY"
  connection_type    = "VPC_LINK"
  connection_id      = aws_apigatewayv2_vpc_link.link.id
  integration_uri    = aws_service_discovery_service.tasks.arn
}
