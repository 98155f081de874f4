package check

import (
	"context"
	"strings"
	"testing"
)

// TestSGSelfUnknown: a security group rule whose self is not known
// statically (a variable without a value) was read as false, so the
// group's own members were read as not admitted and a machine reached
// from its peers in the group was reported reached by none of them; it
// is read as true, the path saying so.
func TestSGSelfUnknown(t *testing.T) {
	const src = `
variable "allow_peers" {
  type = bool
}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol  = "tcp"
    from_port = 5432
    to_port   = 5432
    self      = var.allow_peers
  }
}
resource "aws_instance" "a" {
  ami                    = "ami-12345678"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_instance" "b" {
  ami                    = "ami-12345678"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
`
	reach := func(t *testing.T, src string) *Access {
		t.Helper()
		acc, err := Reachability(context.Background(), Config{Paths: []string{writeProject(t, src)}}, "aws_instance.b")
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range acc {
			if strings.HasPrefix(a.Source, "aws_instance.a") && a.Port == 5432 {
				return &acc[i]
			}
		}
		return nil
	}
	a := reach(t, src)
	if a == nil {
		t.Fatalf("--reach does not list aws_instance.a on 5432 to its peer in the group")
	}
	if len(a.Assumed) == 0 || !strings.Contains(strings.Join(a.Assumed, " "), "self") {
		t.Errorf("the path rests on self read as true, yet says nothing of it: %q", a.Assumed)
	}
	t.Run("self false", func(t *testing.T) {
		if a := reach(t, strings.Replace(src, "self      = var.allow_peers", "self      = false", 1)); a != nil {
			t.Errorf("self is false, yet aws_instance.a reaches its peer: %+v", a)
		}
	})
	t.Run("self true", func(t *testing.T) {
		a := reach(t, strings.Replace(src, "self      = var.allow_peers", "self      = true", 1))
		if a == nil || len(a.Assumed) > 0 {
			t.Errorf("self is true: want aws_instance.a to reach its peer, proven; got %+v", a)
		}
	})
}
