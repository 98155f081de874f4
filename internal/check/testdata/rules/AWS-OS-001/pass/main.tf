# An open policy is safe where something else authenticates or bounds it:
# fine-grained access control, a source-address condition, a VPC domain.
resource "aws_opensearch_domain" "fgac" {
  domain_name = "fgac"

  advanced_security_options {
    enabled                        = true
    internal_user_database_enabled = true
  }

  access_policies = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { AWS = "*" }, Action = "es:*", Resource = "*" }]
  })
}

resource "aws_opensearch_domain" "office" {
  domain_name = "office"

  access_policies = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = "es:ESHttp*"
      Resource  = "*"
      Condition = { IpAddress = { "aws:SourceIp" = ["203.0.113.0/24"] } }
    }]
  })
}

resource "aws_opensearch_domain" "private" {
  domain_name = "private"

  vpc_options {
    subnet_ids         = ["subnet-0123456789abcdef0"]
    security_group_ids = ["sg-0123456789abcdef0"]
  }

  access_policies = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { AWS = "*" }, Action = "es:*", Resource = "*" }]
  })
}
