package check

import (
	"strings"
	"testing"
)

// TestLoadBalancerGroupOpenOnAllPorts: a group that admits the world on
// every port, carried by a load balancer alone, was high ("it is
// attached"), though a load balancer answers only on its listeners'
// ports. It is now graded by what those ports reach and says so: nothing
// (web on 80 and 443, an NLB with a group on 443) is medium; an
// application's listener port (app on 8443) is high, not critical; a
// listener whose port is not known statically is read at its worst, and
// the finding says why. A network load balancer's listener port is
// graded by the port of the targets it forwards to; an HTTP or HTTPS
// listener is an application's port whatever its number (445 is not SMB
// there).
func TestLoadBalancerGroupOpenOnAllPorts(t *testing.T) {
	rep := run(t, "testdata/aws/alb-open-all")
	for _, c := range []struct {
		rule, group string
		sev         Severity
		says        string
	}{
		{RuleWorldOpen, "aws_security_group.alb", Medium, "aws_lb.web answers only on its listeners' ports (80, 443)"},
		{RuleWorldOpenOther, "aws_security_group.alb", Medium, "aws_lb.web answers only on its listeners' ports (80, 443)"},
		{RuleWorldOpen, "aws_security_group.nlb", Medium, "aws_lb.nlb answers only on its listeners' ports (443)"},
		{RuleWorldOpenOther, "aws_security_group.nlb", Medium, "aws_lb.nlb answers only on its listeners' ports (443)"},
		{RuleWorldOpen, "aws_security_group.app", Medium, "aws_lb.app answers only on its listeners' ports (8443)"},
		{RuleWorldOpenOther, "aws_security_group.app", High, "reached from the internet on tcp 8443; it answers only on its listeners' ports (8443)"},
		{RuleWorldOpen, "aws_security_group.dyn", Critical, "its listeners' ports are not known statically"},
		// A network load balancer forwards its listener's port to its
		// targets' own: SSH there is no application's port.
		{RuleWorldOpenOther, "aws_security_group.fwd", Critical, "its listener on 2222 forwards to tcp 22 (SSH) of its targets"},
		{RuleWorldOpen, "aws_security_group.dyn2", High, "a path exists only if"},
		{RuleWorldOpen, "aws_security_group.dyn2", High, "its listeners' ports are not known statically"},
		// An HTTPS listener on SMB's port is a web application's.
		{RuleWorldOpen, "aws_security_group.smb", High, "it answers HTTP or HTTPS on 445; high, not critical: a load balancer's HTTP or HTTPS listener is an application's port"},
	} {
		got := activeOn(rep, c.rule, c.group)
		if len(got) != 1 || got[0].Severity != c.sev || !strings.Contains(got[0].Message, c.says) {
			t.Errorf("%s on %s: %+v, want one %s saying %q", c.rule, c.group, got, c.sev, c.says)
		}
	}
}

// TestTCPListenersReadFromThePort: a classic load balancer's TCP listener
// was AWS-LB-003 whatever it carried, TLS on 443 included, and a network
// load balancer's TCP listener on 80 was not. Both are now read from the
// port: HTTP's ports to targets not on 443 are plaintext, said to be read
// from the port; 443, or a target on 443, is TLS passed through; a port
// not known statically is read as HTTP's, and said so.
func TestTCPListenersReadFromThePort(t *testing.T) {
	rep := run(t, "testdata/aws/tcp-listeners")
	for addr, says := range map[string]string{
		"aws_lb_listener.plain":  "port 80, HTTP's: read from the port as plain HTTP",
		"aws_elb.old":            "port 80, HTTP's: read from the port as plain HTTP",
		"aws_lb_listener.dyn":    "port not known statically: read as 80, HTTP's",
		"aws_lb_listener.tls":    "",
		"aws_lb_listener.to_tls": "",
		"aws_elb.passthrough":    "",
	} {
		got := activeOn(rep, RulePlainListener, addr)
		if says == "" && len(got) != 0 || says != "" && (len(got) != 1 || !strings.Contains(got[0].Message, says)) {
			t.Errorf("%s on %s: %+v, want %q", RulePlainListener, addr, got, says)
		}
	}
}

// TestListenerPortsNamedByWhatAnswers: a port reached as a load
// balancer's HTTP or HTTPS listener was named by the service its number
// stands for ("tcp 445 (SMB)"), in the world-open findings and on the
// load balancer itself, where it was critical as SMB. It is now named by
// the listener that answers there, SMB's name kept where another carrier
// of the group may answer on it, and the load balancer's own finding is
// graded one step lower, as an application's port is; a network load
// balancer passing SMB to its targets, and an instance, are SMB still.
func TestListenerPortsNamedByWhatAnswers(t *testing.T) {
	rep := run(t, "testdata/aws/lb-listener-ports")
	for _, c := range []struct {
		rule, addr string
		sev        Severity
		says       []string
	}{
		{RuleWorldOpen, "aws_security_group.web", High, []string{"on tcp 445 (HTTPS listener of aws_lb.web);"}},
		{RuleWorldOpenOther, "aws_security_group.web", High, []string{"tcp 81-82 (HTTP listeners of aws_lb.web on 81, 82), tcp 444, tcp 8080 (HTTP listener of aws_lb.web);"}},
		{RuleWorldOpen, "aws_security_group.shared", Critical, []string{"on tcp 445 (SMB; HTTPS listener of aws_lb.shared);"}},
		{RuleWorldOpen, "aws_security_group.nlb", Critical, []string{"on tcp 445 (SMB);"}},
		{RuleExposedPort, "aws_lb.web", High, []string{"tcp 445 (HTTPS listener) is reachable", "high, not critical: a load balancer's HTTP or HTTPS listener is an application's port"}},
		{RuleExposedPort, "aws_lb.shared", High, []string{"tcp 445 (HTTPS listener) is reachable"}},
		{RuleExposedPort, "aws_instance.files", Critical, []string{"tcp 445 (SMB) is reachable"}},
		{RuleExposedPort, "aws_lb.nlb", Critical, []string{"tcp 445 (SMB) is reachable"}},
	} {
		got := activeOn(rep, c.rule, c.addr)
		ok := len(got) == 1 && got[0].Severity == c.sev
		for _, s := range c.says {
			ok = ok && strings.Contains(got[0].Message, s)
		}
		if !ok {
			t.Errorf("%s on %s: %+v, want one %s saying %q", c.rule, c.addr, got, c.sev, c.says)
		}
	}
}

// TestListenerGroupGradedByItsWorstCarrier: a group open to the world on
// 5432, carried by a load balancer's HTTPS listener there and by a public
// PostgreSQL database, was graded by the carrier found first, the load
// balancer: high, as a web application's port (medium where the rule's
// source is not known statically). It is graded by the worst exposure
// among its carriers, the database's, and the port keeps PostgreSQL's
// name.
func TestListenerGroupGradedByItsWorstCarrier(t *testing.T) {
	rep := run(t, "testdata/aws/lb-listener-worst")
	for _, c := range []struct {
		group string
		sev   Severity
		says  string
	}{
		{"aws_security_group.shared", Critical, "db aws_db_instance.pg is reached from the internet on tcp 5432"},
		{"aws_security_group.maybe", High, "it is attached (aws_db_instance.maybe), and a path from the internet to it exists"},
	} {
		got := activeOn(rep, RuleWorldOpen, c.group)
		if len(got) != 1 || got[0].Severity != c.sev ||
			!strings.Contains(got[0].Message, "on tcp 5432 (PostgreSQL; HTTPS listener of ") ||
			!strings.Contains(got[0].Message, c.says) ||
			strings.Contains(got[0].Message, "HTTP or HTTPS on 5432") {
			t.Errorf("%s on %s: %+v, want one %s naming PostgreSQL and saying %q", RuleWorldOpen, c.group, got, c.sev, c.says)
		}
	}
}
