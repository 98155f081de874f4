# A public domain that takes plain HTTP, and one that may.
variable "https_only" {}

resource "aws_opensearch_domain" "logs" {
  domain_name    = "logs"
  engine_version = "OpenSearch_2.11"
  encrypt_at_rest {
    enabled = true
  }
  domain_endpoint_options {
    enforce_https = false
  }
}

resource "aws_elasticsearch_domain" "legacy" {
  domain_name           = "legacy"
  elasticsearch_version = "7.10"
  encrypt_at_rest {
    enabled = true
  }
  domain_endpoint_options {
    enforce_https = var.https_only
  }
}
