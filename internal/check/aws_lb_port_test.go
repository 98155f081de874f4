package check

import (
	"strings"
	"testing"
)

// TestListenerPortUnknownIsFollowed: a listener whose port is not known
// statically was not followed, so the database a network load balancer
// forwards to from the internet was read as reached by no one (its
// group's world-open MySQL rule said "no path from the internet"), and
// --reach on it named no internet source. What the balancer forwards does
// not depend on the listener's port: the listener is followed, reached on
// a port the balancer admits, and the path says the port was assumed; a
// classic balancer's listener likewise, its instance_port not known
// statically being every port of the instance.
func TestListenerPortUnknownIsFollowed(t *testing.T) {
	rep := run(t, "testdata/aws/lb-listener-port-unknown")
	db := activeOn(rep, RuleExposedPort, "aws_instance.db")
	if len(db) != 1 || !strings.Contains(db[0].Message, "tcp 3306 (MySQL)") || !strings.Contains(db[0].Message, "port not known statically") {
		t.Errorf("%s on the database behind the balancer: %+v, want one that says MySQL may be reachable through a listener whose port is assumed", RuleExposedPort, db)
	}
	m := model(t, "testdata/aws/lb-listener-port-unknown")
	r := m.Reach(m.Internet(), endpoint(t, m, "aws_instance.web"), "tcp", 8080)
	if !r.Reachable || !strings.Contains(strings.Join(r.Assumed, "; "), "port not known statically") {
		t.Errorf("the app host behind the application balancer on 8080: reachable %v, assumed %q; want reachable through a listener whose port is assumed", r.Reachable, r.Assumed)
	}
	reports := activeOn(rep, RuleExposedPort, "aws_instance.reports")
	if len(reports) != 1 || !strings.Contains(reports[0].Message, "tcp 5432 (PostgreSQL)") || !strings.Contains(reports[0].Message, "port not known statically") {
		t.Errorf("%s on the host behind the classic balancer: %+v, want one that says PostgreSQL may be reachable through a listener whose ports are assumed", RuleExposedPort, reports)
	}
	if r := m.Reach(m.Internet(), endpoint(t, m, "aws_instance.web"), "tcp", 22); r.Reachable {
		t.Errorf("the app host on 22, which no group admits: reachable %v, want not", r.Reachable)
	}
}
