package check

import (
	"context"
	"strings"
	"testing"
)

// serverlessCache is an ElastiCache serverless cache in a private subnet
// whose group admits the application tier's group on every TCP port, and
// the whole of a peered VPC on every TCP port.
const serverlessCache = peeredStores + `
resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.data.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.data.id
}
resource "aws_security_group" "cache" {
  vpc_id = aws_vpc.data.id
  ingress {
    from_port       = 0
    to_port         = 65535
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = ["10.9.0.0/16"]
  }
}
resource "aws_instance" "app" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.app.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_elasticache_serverless_cache" "sessions" {
  engine             = "valkey"
  name               = "sessions"
  subnet_ids         = [aws_subnet.data.id]
  security_group_ids = [aws_security_group.cache.id]
}
`

// TestServerlessCacheReached checks that an ElastiCache serverless cache
// is read as a cache in its subnets behind its groups, answering its
// engine's port and the next (reads from replicas) alone: the application
// that its group admits reaches it there (--reach), and a peer admitted
// whole is AWS-NET-010 on those ports. It was only noted as not in the
// network model.
func TestServerlessCacheReached(t *testing.T) {
	dir := writeProject(t, serverlessCache)
	rep := run(t, dir)
	got := activeOn(rep, RuleLateral, "aws_elasticache_serverless_cache.sessions")
	if len(got) != 1 || !strings.HasSuffix(got[0].Message, " on tcp 6379 (Redis), tcp 6380 (cache service port)") {
		t.Errorf("%s findings on the cache: %+v", RuleLateral, got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "aws_elasticache_serverless_cache.sessions"); len(got) != 0 {
		t.Errorf("the cache is noted as not evaluated: %+v", got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_elasticache_serverless_cache.sessions")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[int]bool{}
	for _, a := range acc {
		if strings.HasPrefix(a.Source, "aws_instance.app") {
			ports[a.Port] = true
		}
	}
	if len(ports) != 2 || !ports[6379] || !ports[6380] {
		t.Errorf("ports the application reaches: %v (accesses %+v)", ports, acc)
	}
}
