# Elastic Beanstalk environments whose instances have no public address,
# in a private subnet, behind the load balancer Beanstalk makes in the
# public one: its listeners forward to the instances, whose group (made
# by Beanstalk) admits the balancer on the instance port.
resource "aws_vpc" "main" {
  cidr_block = "10.97.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.97.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.97.2.0/24"
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
resource "aws_elastic_beanstalk_application" "app" {
  name = "shop"
}

# An application load balancer, listener 80 to the default process on 8080.
resource "aws_elastic_beanstalk_environment" "web" {
  name                = "shop-web"
  application         = aws_elastic_beanstalk_application.app.name
  solution_stack_name = "64bit Amazon Linux 2023 v4.0.0 running Python 3.11"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "VPCId"
    value     = aws_vpc.main.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = aws_subnet.private.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "ELBSubnets"
    value     = aws_subnet.public.id
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment"
    name      = "LoadBalancerType"
    value     = "application"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment:process:default"
    name      = "Port"
    value     = "8080"
  }
  # 443 to the api process on 9000.
  setting {
    namespace = "aws:elbv2:listener:443"
    name      = "DefaultProcess"
    value     = "api"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment:process:api"
    name      = "Port"
    value     = "9000"
  }
}

# Port 80 configured by its own namespace, to the api process on 5000.
resource "aws_elastic_beanstalk_environment" "api" {
  name                = "shop-api"
  application         = aws_elastic_beanstalk_application.app.name
  solution_stack_name = "64bit Amazon Linux 2023 v4.0.0 running Python 3.11"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = aws_subnet.private.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "ELBSubnets"
    value     = aws_subnet.public.id
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment"
    name      = "LoadBalancerType"
    value     = "application"
  }
  setting {
    namespace = "aws:elbv2:listener:80"
    name      = "DefaultProcess"
    value     = "api"
  }
  setting {
    namespace = "aws:elasticbeanstalk:environment:process:api"
    name      = "Port"
    value     = "5000"
  }
}

# A classic load balancer that also forwards 22 to the instances' SSH;
# its subnets written in quotes.
resource "aws_elastic_beanstalk_environment" "ssh" {
  name                = "shop-ssh"
  application         = aws_elastic_beanstalk_application.app.name
  solution_stack_name = "64bit Amazon Linux 2023 v4.0.0 running Python 3.11"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "VPCId"
    value     = aws_vpc.main.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = "'${aws_subnet.private.id}'"
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "ELBSubnets"
    value     = "'${aws_subnet.public.id}'"
  }
  setting {
    namespace = "aws:elb:listener:22"
    name      = "InstancePort"
    value     = "22"
  }
  setting {
    namespace = "aws:elb:listener:22"
    name      = "ListenerProtocol"
    value     = "TCP"
  }
}

# The same balancer, internal: nothing reaches the instances from the
# internet.
resource "aws_elastic_beanstalk_environment" "internal" {
  name                = "shop-internal"
  application         = aws_elastic_beanstalk_application.app.name
  solution_stack_name = "64bit Amazon Linux 2023 v4.0.0 running Python 3.11"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "VPCId"
    value     = aws_vpc.main.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = aws_subnet.private.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "ELBSubnets"
    value     = aws_subnet.public.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "ELBScheme"
    value     = "internal"
  }
  setting {
    namespace = "aws:elb:listener:22"
    name      = "InstancePort"
    value     = "22"
  }
}
