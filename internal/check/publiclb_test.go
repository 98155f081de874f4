package check

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// An internet-facing load balancer (application, network or classic)
// publishes what it forwards to: --reach
// on a target in a private subnet names the internet as its source, with
// the balancer and its listener on the path, as an Application Gateway's
// backends do on Azure. An internal balancer's target is not reached from
// the internet, and a network load balancer's target, which sees the
// client's address, is reached when its own group admits the internet.
func TestPublicBalancerPublishesTargets(t *testing.T) {
	dir := "testdata/paths/public-lb"
	for _, c := range []struct {
		addr string
		port int
		via  []string // nil: the internet does not reach it
	}{
		{"aws_instance.app", 8080, []string{"aws_security_group.alb", "aws_lb.web", "aws_lb_listener.https", "aws_subnet.private", "aws_security_group.app"}},
		{"aws_instance.inner", 8080, nil},
		{"aws_instance.tcp", 9000, []string{"aws_lb.nlb", "aws_lb_listener.tcp", "aws_security_group.tcp"}},
		{"aws_instance.legacy", 8443, []string{"aws_security_group.alb", "aws_elb.classic", "aws_subnet.private", "aws_security_group.legacy"}},
		{"aws_autoscaling_group.pool", 8443, []string{"aws_security_group.alb", "aws_elb.classic", "aws_subnet.private", "aws_security_group.legacy"}},
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, c.addr)
		if err != nil {
			t.Fatal(err)
		}
		var inet []Access
		for _, a := range acc {
			if a.Source == "internet" {
				inet = append(inet, a)
			}
		}
		if c.via == nil {
			if len(inet) > 0 {
				t.Errorf("%s: reached from the internet: %+v", c.addr, inet)
			}
			continue
		}
		if len(inet) != 1 || inet[0].Port != c.port || len(inet[0].Assumed) > 0 {
			t.Errorf("%s: want one proven internet access on tcp %d, got %+v", c.addr, c.port, inet)
			continue
		}
		var addrs []string
		for _, h := range inet[0].Path {
			addrs = append(addrs, h.Addr)
		}
		at := 0
		for _, want := range c.via {
			i := indexFrom(addrs, at, want)
			if i < 0 {
				t.Errorf("%s: path %v does not cross %s after hop %d", c.addr, addrs, want, at)
				break
			}
			at = i
		}
	}

	t.Log("the world-open group of the network balancer's target is high (9000 is an application's port), with the balancer on its path")
	rep := run(t, dir)
	var got []Finding
	for _, f := range active(rep, RuleWorldOpenOther) {
		if f.Address == "aws_security_group.tcp" {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Severity != High || !slices.ContainsFunc(got[0].Path, func(h Hop) bool { return h.Addr == "aws_lb_listener.tcp" }) {
		t.Errorf("want AWS-NET-011 high on aws_security_group.tcp through the balancer, got %+v", got)
	}
	// The balancer has no security group: the path says so, and names the
	// balancer once.
	if len(got) == 0 {
		return
	}
	if p := pathLine(got[0].Path); strings.Count(p, "aws_lb.nlb ") != 1 || !strings.Contains(p, "no security group (network load balancer) → aws_lb.nlb → aws_lb_listener.tcp") {
		t.Errorf("path %q: want the balancer named once, after the hop that says it has no security group", p)
	}
}

// TestNLBClientAddress: what a network load balancer's target sees as the
// source depends on its target group (AWS's defaults): an instance target
// sees the client's address unless preserve_client_ip is "false"; an IP
// target over TCP or TLS sees the balancer's own address unless it is
// "true"; over UDP the client's, always. A target whose group admits only
// the VPC is reached from the internet exactly when it sees the balancer's
// address; one that admits the internet is reached either way. Not known
// statically, the target is read as seeing either.
func TestNLBClientAddress(t *testing.T) {
	src, err := os.ReadFile("testdata/paths/public-lb/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	const tg = "  protocol = \"TCP\"\n  vpc_id   = aws_vpc.main.id\n"
	for _, c := range []struct {
		name, group, source string
		reached             bool
	}{
		{"instance, default", "", "10.0.0.0/16", false},
		{"instance, preserved", `preserve_client_ip = "true"`, "10.0.0.0/16", false},
		{"instance, not preserved", `preserve_client_ip = "false"`, "10.0.0.0/16", true},
		{"ip, default", `target_type = "ip"`, "10.0.0.0/16", true},
		{"ip, preserved", "target_type = \"ip\"\n  preserve_client_ip = true", "10.0.0.0/16", false},
		{"not known", "preserve_client_ip = var.unknown", "10.0.0.0/16", true},
		{"instance, world-open", "", "0.0.0.0/0", true},
		{"not preserved, world-open", `preserve_client_ip = "false"`, "0.0.0.0/0", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			code := string(src)
			if !strings.Contains(code, tg) {
				t.Fatal("fixture changed: no target group to amend")
			}
			code = strings.Replace(code, tg, tg+"  "+c.group+"\n", 1)
			code = strings.Replace(code, "    from_port   = 9000\n    to_port     = 9000\n    protocol    = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]",
				"    from_port   = 9000\n    to_port     = 9000\n    protocol    = \"tcp\"\n    cidr_blocks = [\""+c.source+"\"]", 1)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("variable \"unknown\" {}\n"+code), 0o644); err != nil {
				t.Fatal(err)
			}
			acc, err := Reachability(context.Background(), Config{Paths: []string{dir}, Root: dir}, "aws_instance.tcp")
			if err != nil {
				t.Fatal(err)
			}
			var inet []Access
			for _, a := range acc {
				if a.Source == "internet" && a.Port == 9000 {
					inet = append(inet, a)
				}
			}
			if c.reached != (len(inet) > 0) {
				t.Errorf("reached from the internet: %v, want %v (%+v)", len(inet) > 0, c.reached, inet)
			}
		})
	}
}

// An application load balancer that names no security group is in its
// VPC's default group, as AWS makes it when none is given: one that admits
// only its own members keeps the internet from the balancer and from the
// targets it forwards to, which were reported reached through it as
// through a network load balancer, which has no group; one the project
// opens to the world lets it in.
func TestApplicationLBWithoutGroups(t *testing.T) {
	src := func(defaultSG string) string {
		return `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_lb" "web" {
  internal           = false
  load_balancer_type = "application"
  subnets            = [aws_subnet.public.id]
}
resource "aws_lb_target_group" "web" {
  port     = 8080
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
}
resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}
resource "aws_security_group" "app" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 8080
    to_port     = 8080
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}
resource "aws_instance" "app" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_lb_target_group_attachment" "app" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = aws_instance.app.id
}
` + defaultSG
	}
	fromInternet := func(dir, addr string) bool {
		t.Helper()
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acc {
			if a.Source == "internet" {
				return true
			}
		}
		return false
	}
	closed := writeProject(t, src(""))
	for _, addr := range []string{"aws_lb.web", "aws_instance.app"} {
		if fromInternet(closed, addr) {
			t.Errorf("%s is reached from the internet through a balancer in the VPC's default group as AWS makes it", addr)
		}
	}
	open := writeProject(t, src(`
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`))
	for _, addr := range []string{"aws_lb.web", "aws_instance.app"} {
		if !fromInternet(open, addr) {
			t.Errorf("%s is not reached from the internet through a balancer whose default group admits it", addr)
		}
	}
}

// A classic load balancer that names no security group in a VPC other
// than the default one is in that VPC's default group, as AWS makes it
// for a balancer made through its API: as AWS makes it, that group admits
// only its own members, so the internet reaches no listener. It was read
// as having no group, open on its listeners as one in the default VPC is.
func TestClassicLoadBalancerInVPCTakesDefaultGroup(t *testing.T) {
	dir := writeProject(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.30.0.0/16"
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.30.1.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_elb" "web" {
  subnets = [aws_subnet.public.id]
  listener {
    lb_port           = 80
    lb_protocol       = "http"
    instance_port     = 8080
    instance_protocol = "http"
  }
}
`)
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_elb.web")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if a.Source == "internet" {
			t.Errorf("the internet reaches the balancer in the VPC's default group: %s", pathText(a.Path))
		}
	}
}
