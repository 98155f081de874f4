# Lightsail instances: outside any VPC, always with a public address, their
# firewall their public ports. Without aws_lightsail_instance_public_ports
# Lightsail opens SSH and HTTP to everyone; with it, only what it lists.
resource "aws_lightsail_instance" "blog" {
  name              = "blog"
  availability_zone = "eu-west-1a"
  blueprint_id      = "wordpress"
  bundle_id         = "nano_3_0"
}
resource "aws_lightsail_instance" "shop" {
  name              = "shop"
  availability_zone = "eu-west-1a"
  blueprint_id      = "ubuntu_22_04"
  bundle_id         = "nano_3_0"
}
resource "aws_lightsail_instance_public_ports" "shop" {
  instance_name = aws_lightsail_instance.shop.name
  port_info {
    protocol  = "tcp"
    from_port = 443
    to_port   = 443
  }
  port_info {
    protocol  = "tcp"
    from_port = 22
    to_port   = 22
    cidrs     = ["198.51.100.0/24"]
  }
}
