# Data stores whose clients may talk to them in the clear: an MSK
# cluster taking plaintext beside TLS, one taking plaintext alone, one
# whose brokers talk among themselves in the clear; a Redis replication
# group that leaves transit encryption unset, one that turns it off, one
# in "preferred" mode; a MemoryDB cluster with TLS off. Their closed
# peers take TLS alone.
variable "client_broker" {
  type = string
}

resource "aws_msk_cluster" "mixed" {
  cluster_name           = "mixed"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
  encryption_info {
    encryption_in_transit {
      client_broker = "TLS_PLAINTEXT"
    }
  }
}

resource "aws_msk_cluster" "plaintext" {
  cluster_name           = "plaintext"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
  encryption_info {
    encryption_in_transit {
      client_broker = "PLAINTEXT"
    }
  }
}

resource "aws_msk_cluster" "in_cluster_plain" {
  cluster_name           = "in-cluster-plain"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
  encryption_info {
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = false
    }
  }
}

resource "aws_msk_cluster" "unknown" {
  cluster_name           = "unknown"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
  encryption_info {
    encryption_in_transit {
      client_broker = var.client_broker
    }
  }
}

resource "aws_msk_cluster" "lower_case" {
  cluster_name           = "lower-case"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
  encryption_info {
    encryption_in_transit {
      client_broker = "tls"
    }
  }
}

resource "aws_msk_cluster" "tls" {
  cluster_name           = "tls"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = 3
  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-1", "subnet-2", "subnet-3"]
    security_groups = ["sg-1"]
  }
}

resource "aws_elasticache_replication_group" "unset" {
  replication_group_id       = "unset"
  description                = "sessions"
  engine                     = "redis"
  node_type                  = "cache.t4g.small"
  at_rest_encryption_enabled = true
}

resource "aws_elasticache_replication_group" "off" {
  replication_group_id       = "off"
  description                = "sessions"
  engine                     = "redis"
  node_type                  = "cache.t4g.small"
  at_rest_encryption_enabled = true
  transit_encryption_enabled = false
}

resource "aws_elasticache_replication_group" "preferred" {
  replication_group_id       = "preferred"
  description                = "sessions"
  engine                     = "redis"
  node_type                  = "cache.t4g.small"
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  transit_encryption_mode    = "preferred"
}

resource "aws_elasticache_replication_group" "tls" {
  replication_group_id       = "tls"
  description                = "sessions"
  engine                     = "redis"
  node_type                  = "cache.t4g.small"
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
}

resource "aws_elasticache_cluster" "single_memcached" {
  cluster_id      = "single-memcached"
  engine          = "memcached"
  node_type       = "cache.t4g.small"
  num_cache_nodes = 1
}

resource "aws_elasticache_cluster" "single_redis" {
  cluster_id      = "single-redis"
  engine          = "redis"
  node_type       = "cache.t4g.small"
  num_cache_nodes = 1
}

resource "aws_elasticache_cluster" "single_tls" {
  cluster_id                 = "single-tls"
  engine                     = "memcached"
  node_type                  = "cache.t4g.small"
  num_cache_nodes            = 1
  transit_encryption_enabled = true
}

# A member of a replication group: the group's setting holds.
resource "aws_elasticache_cluster" "member" {
  cluster_id           = "member"
  replication_group_id = aws_elasticache_replication_group.tls.id
}

# Every serverless cache takes TLS alone.
resource "aws_elasticache_serverless_cache" "serverless" {
  engine = "valkey"
  name   = "serverless"
}

resource "aws_memorydb_cluster" "plain" {
  name        = "plain"
  node_type   = "db.t4g.small"
  acl_name    = "open-access"
  tls_enabled = false
}

resource "aws_memorydb_cluster" "tls" {
  name      = "tls"
  node_type = "db.t4g.small"
  acl_name  = "open-access"
}
