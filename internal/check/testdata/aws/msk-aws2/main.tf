# An event pipeline written for the AWS provider 2.x: its MSK cluster
# leaves client_broker to the provider.

terraform {
  required_providers {
    aws = "~> 2.70"
  }
}

provider "aws" {
  region = "eu-west-1"
}

resource "aws_vpc" "events" {
  cidr_block = "10.30.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.events.id
  cidr_block        = "10.30.1.0/24"
  availability_zone = "eu-west-1a"
}

resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.events.id
  cidr_block        = "10.30.2.0/24"
  availability_zone = "eu-west-1b"
}

resource "aws_security_group" "kafka" {
  name   = "kafka"
  vpc_id = aws_vpc.events.id

  ingress {
    from_port   = 9094
    to_port     = 9094
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.events.cidr_block]
  }
}

resource "aws_kms_key" "kafka" {
  description         = "kafka"
  enable_key_rotation = true
}

resource "aws_msk_cluster" "events" {
  cluster_name           = "events"
  kafka_version          = "2.4.1"
  number_of_broker_nodes = 2

  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    ebs_volume_size = 100
    client_subnets  = [aws_subnet.a.id, aws_subnet.b.id]
    security_groups = [aws_security_group.kafka.id]
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.kafka.arn
  }
}
