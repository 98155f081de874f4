# A Fargate service whose tasks take public addresses in a public subnet,
# behind a group that opens ranges to the internet, none beginning at a
# port a container maps. The tasks answer on
# their containers' ports alone: 8080, and PostgreSQL in a second
# container; nothing answers on the rest of the range.
resource "aws_vpc" "app" {
  cidr_block = "10.90.0.0/16"
}

resource "aws_internet_gateway" "app" {
  vpc_id = aws_vpc.app.id
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.app.id
  cidr_block = "10.90.1.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.app.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.app.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "tasks" {
  vpc_id = aws_vpc.app.id
  ingress {
    from_port   = 8000
    to_port     = 8100
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port   = 5430
    to_port     = 5435
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_ecs_cluster" "app" {
  name = "app"
}

resource "aws_ecs_task_definition" "web" {
  family                   = "web"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "512"
  memory                   = "1024"
  container_definitions = jsonencode([
    {
      name         = "web"
      image        = "public.ecr.aws/example/web:1"
      essential    = true
      portMappings = [{ containerPort = 8080, protocol = "tcp" }]
    },
    {
      name         = "db"
      image        = "public.ecr.aws/docker/library/postgres:16"
      essential    = true
      portMappings = [{ containerPort = 5432, hostPort = 5432 }]
    }
  ])
}

resource "aws_ecs_service" "web" {
  name            = "web"
  cluster         = aws_ecs_cluster.app.id
  task_definition = aws_ecs_task_definition.web.arn
  launch_type     = "FARGATE"
  desired_count   = 1
  network_configuration {
    subnets          = [aws_subnet.public.id]
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = true
  }
}
