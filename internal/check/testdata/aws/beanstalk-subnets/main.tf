# Elastic Beanstalk environments spread over two subnets: a private one,
# named first, and one routed to the internet. Beanstalk launches
# instances in each, so SSH (a key pair, no SSHSourceRestriction) is open
# to the world on the instances of the second.
variable "more_subnets" {}

resource "aws_vpc" "shop" {
  cidr_block = "10.70.0.0/16"
}
resource "aws_internet_gateway" "shop" {
  vpc_id = aws_vpc.shop.id
}
resource "aws_subnet" "inner" {
  vpc_id     = aws_vpc.shop.id
  cidr_block = "10.70.1.0/24"
}
resource "aws_subnet" "edge" {
  vpc_id     = aws_vpc.shop.id
  cidr_block = "10.70.2.0/24"
}
resource "aws_route_table" "edge" {
  vpc_id = aws_vpc.shop.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.shop.id
  }
}
resource "aws_route_table_association" "edge" {
  subnet_id      = aws_subnet.edge.id
  route_table_id = aws_route_table.edge.id
}
resource "aws_elastic_beanstalk_application" "shop" {
  name = "shop"
}

# One Subnets setting for each subnet.
resource "aws_elastic_beanstalk_environment" "twice" {
  name        = "shop-twice"
  application = aws_elastic_beanstalk_application.shop.name
  tier        = "Worker"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = aws_subnet.inner.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = aws_subnet.edge.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "AssociatePublicIpAddress"
    value     = "true"
  }
  setting {
    namespace = "aws:autoscaling:launchconfiguration"
    name      = "EC2KeyName"
    value     = "ops"
  }
}

# One setting listing both.
resource "aws_elastic_beanstalk_environment" "listed" {
  name        = "shop-listed"
  application = aws_elastic_beanstalk_application.shop.name
  tier        = "Worker"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = join(",", [aws_subnet.inner.id, aws_subnet.edge.id])
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "AssociatePublicIpAddress"
    value     = "true"
  }
  setting {
    namespace = "aws:autoscaling:launchconfiguration"
    name      = "EC2KeyName"
    value     = "ops"
  }
}

# The second setting's subnets are not known statically: they may be any.
resource "aws_elastic_beanstalk_environment" "partly" {
  name        = "shop-partly"
  application = aws_elastic_beanstalk_application.shop.name
  tier        = "Worker"
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = aws_subnet.inner.id
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "Subnets"
    value     = var.more_subnets
  }
  setting {
    namespace = "aws:ec2:vpc"
    name      = "AssociatePublicIpAddress"
    value     = "true"
  }
  setting {
    namespace = "aws:autoscaling:launchconfiguration"
    name      = "EC2KeyName"
    value     = "ops"
  }
}
