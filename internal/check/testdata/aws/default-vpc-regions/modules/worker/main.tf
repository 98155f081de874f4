data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

resource "aws_instance" "this" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  subnet_id     = data.aws_subnets.default.ids[0]
}
