# Launch templates and configurations that answer IMDSv1, and an instance
# that overrides its template's required tokens.
resource "aws_launch_template" "unset" {
  name_prefix   = "app-"
  image_id      = "ami-0123456789abcdef0"
  instance_type = "t3.micro"
}

resource "aws_launch_template" "optional" {
  name_prefix   = "web-"
  image_id      = "ami-0123456789abcdef0"
  instance_type = "t3.micro"
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "optional"
  }
}

resource "aws_launch_configuration" "unset" {
  name_prefix   = "legacy-"
  image_id      = "ami-0123456789abcdef0"
  instance_type = "t3.micro"
}

resource "aws_launch_template" "required" {
  name_prefix   = "strict-"
  image_id      = "ami-0123456789abcdef0"
  instance_type = "t3.micro"
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_instance" "overrides" {
  associate_public_ip_address = false
  launch_template {
    id      = aws_launch_template.required.id
    version = "$Latest"
  }
  metadata_options {
    http_tokens = "optional"
  }
}
