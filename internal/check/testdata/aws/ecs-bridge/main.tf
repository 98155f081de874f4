# ECS services on EC2 container instances (bridge and host networking):
# their tasks answer on the instances' addresses, behind the instances'
# groups. The instances are an auto scaling group in a public subnet that
# a capacity provider names; its group admits SSH and 8080 from anywhere
# and the dynamic port range from the load balancer's group.
resource "aws_vpc" "main" {
  cidr_block = "10.60.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.60.1.0/24"
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
resource "aws_security_group" "lb" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group" "hosts" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol    = "tcp"
    from_port   = 8080
    to_port     = 8080
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol        = "tcp"
    from_port       = 32768
    to_port         = 65535
    security_groups = [aws_security_group.lb.id]
  }
}
resource "aws_launch_template" "hosts" {
  name_prefix            = "ecs"
  vpc_security_group_ids = [aws_security_group.hosts.id]
  metadata_options {
    http_tokens = "required"
  }
}
resource "aws_autoscaling_group" "hosts" {
  min_size            = 1
  max_size            = 2
  vpc_zone_identifier = [aws_subnet.public.id]
  launch_template {
    id      = aws_launch_template.hosts.id
    version = "$Latest"
  }
}
resource "aws_ecs_cluster" "main" {
  name = "main"
}
resource "aws_ecs_capacity_provider" "hosts" {
  name = "hosts"
  auto_scaling_group_provider {
    auto_scaling_group_arn = aws_autoscaling_group.hosts.arn
  }
}
resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = [aws_ecs_capacity_provider.hosts.name]
  default_capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.hosts.name
  }
}
# Bridge networking: the web container's port 80 on the host's 8080, the
# metrics container's 9000 on a dynamic host port.
resource "aws_ecs_task_definition" "web" {
  family       = "web"
  network_mode = "bridge"
  container_definitions = jsonencode([
    { name = "web", image = "web", portMappings = [{ containerPort = 80, hostPort = 8080 }] },
    { name = "metrics", image = "metrics", portMappings = [{ containerPort = 9000 }] },
  ])
}
resource "aws_ecs_service" "web" {
  name            = "web"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.web.arn
  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.hosts.name
    weight            = 1
  }
}
# Host networking on the cluster's default strategy: the container's port
# is the host's.
resource "aws_ecs_task_definition" "admin" {
  family       = "admin"
  network_mode = "host"
  container_definitions = jsonencode([
    { name = "admin", image = "admin", portMappings = [{ containerPort = 8080 }] },
  ])
}
resource "aws_ecs_service" "admin" {
  name            = "admin"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.admin.arn
}
# A cluster whose instances register by their user data: not followed.
resource "aws_ecs_cluster" "other" {
  name = "other"
}
resource "aws_ecs_service" "other" {
  name            = "other"
  cluster         = aws_ecs_cluster.other.id
  launch_type     = "EC2"
  task_definition = aws_ecs_task_definition.web.arn
}
