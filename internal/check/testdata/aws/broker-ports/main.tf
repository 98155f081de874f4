# Groups open to the world on a message broker's TLS port and on WinRM.
resource "aws_security_group" "amqps" {
  vpc_id = "vpc-12345678"
  ingress {
    from_port   = 5671
    to_port     = 5671
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group" "openwire" {
  vpc_id = "vpc-12345678"
  ingress {
    from_port   = 61617
    to_port     = 61617
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group" "winrm" {
  vpc_id = "vpc-12345678"
  ingress {
    from_port   = 5986
    to_port     = 5986
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
