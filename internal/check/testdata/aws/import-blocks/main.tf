# A group and an instance brought under Terraform by import blocks, as
# terraform plan -generate-config-out writes them: the instance names its
# group by the ID the import gives it, so its rules are the group's own
# (RDP from everywhere), not those of a group outside the scanned code.
import {
  id = "sg-01c3fad8e6f00b78e"
  to = aws_security_group.rdp
}
import {
  id = "i-041c8c2a3822118b8"
  to = aws_instance.windows
}
resource "aws_security_group" "rdp" {
  name   = "openrdp"
  vpc_id = "vpc-03f22673504092d57"
  ingress = [{
    cidr_blocks      = ["0.0.0.0/0"]
    description      = ""
    from_port        = 3389
    ipv6_cidr_blocks = []
    prefix_list_ids  = []
    protocol         = "tcp"
    security_groups  = []
    self             = false
    to_port          = 3389
  }]
}
resource "aws_instance" "windows" {
  ami                         = "ami-03cd80cfebcbb4481"
  instance_type               = "t2.micro"
  associate_public_ip_address = true
  subnet_id                   = "subnet-09433d3bc18c87be9"
  vpc_security_group_ids      = ["sg-01c3fad8e6f00b78e"]
  metadata_options {
    http_tokens = "required"
  }
}
