# A search domain whose name is an input without a default, and a domain
# policy that names it by reference: the policy is the domain's, and it
# lets every principal in.
variable "domain" {
  type = string
}

resource "aws_elasticsearch_domain" "search" {
  domain_name           = var.domain
  elasticsearch_version = "7.10"

  cluster_config {
    instance_type = "t3.small.elasticsearch"
  }

  ebs_options {
    ebs_enabled = true
    volume_size = 10
  }
}

resource "aws_elasticsearch_domain_policy" "search" {
  domain_name = aws_elasticsearch_domain.search.domain_name
  access_policies = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = "*"
      Action    = "es:*"
      Resource  = "${aws_elasticsearch_domain.search.arn}/*"
    }]
  })
}
