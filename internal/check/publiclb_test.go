package check

import (
	"context"
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

	t.Log("the world-open group of the network balancer's target is critical, with the balancer on its path")
	rep := run(t, dir)
	var got []Finding
	for _, f := range active(rep, RuleWorldOpenOther) {
		if f.Address == "aws_security_group.tcp" {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Severity != Critical || !slices.ContainsFunc(got[0].Path, func(h Hop) bool { return h.Addr == "aws_lb_listener.tcp" }) {
		t.Errorf("want AWS-NET-011 critical on aws_security_group.tcp through the balancer, got %+v", got)
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
