package check

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestECSBridgeAndHostServices: an ECS service on bridge or host
// networking is the container instances of its capacity providers,
// placed and guarded as they are, answering on its task definition's
// host ports alone. It was no endpoint, so --reach knew no such address.
func TestECSBridgeAndHostServices(t *testing.T) {
	m := model(t, "testdata/aws/ecs-bridge")
	pub := m.subnets["aws_subnet.public"]
	for _, tc := range []struct {
		svc   string
		src   Source
		port  int
		want  bool
		block string // the last hop's detail when blocked
	}{
		{"aws_ecs_service.web", m.Internet(), 8080, true, ""},
		// The group admits SSH, but no task listens there.
		{"aws_ecs_service.web", m.Internet(), 22, false, "no listener on tcp 22"},
		{"aws_ecs_service.web", m.Internet(), 40000, false, "no ingress rule admits tcp 40000"},
		{"aws_ecs_service.web", m.SubnetSource(pub, "aws_security_group.lb"), 40000, true, ""},
		{"aws_ecs_service.web", m.SubnetSource(pub, "aws_security_group.lb"), 9000, false, "no listener on tcp 9000"},
		{"aws_ecs_service.admin", m.Internet(), 8080, true, ""},
		{"aws_ecs_service.admin", m.SubnetSource(pub, "aws_security_group.lb"), 40000, false, "no listener on tcp 40000"},
		{"aws_ecs_service.other", m.SubnetSource(pub, "aws_security_group.lb"), 8080, false, "its subnets are not known"},
		{"aws_ecs_service.other", m.Internet(), 8080, false, "has no public address"},
	} {
		r := m.Reach(tc.src, endpoint(t, m, tc.svc), "tcp", tc.port)
		last := ""
		if len(r.Path) > 0 {
			last = r.Path[len(r.Path)-1].Detail
		}
		if r.Reachable != tc.want || len(r.Assumed) > 0 || !tc.want && !strings.Contains(last, tc.block) {
			t.Errorf("%s from %s on %d: reachable %v (assumed %v), want %v %s: %s (%s)", tc.svc, tc.src.Name, tc.port, r.Reachable, r.Assumed, tc.want, tc.block, pathLine(r.Path), last)
		}
	}
	r := m.Reach(m.Internet(), endpoint(t, m, "aws_ecs_service.web"), "tcp", 8080)
	if !strings.Contains(pathLine(r.Path), "aws_security_group.hosts → aws_ecs_service.web") {
		t.Errorf("path %s, want through the instances' group", pathLine(r.Path))
	}
	r = m.Reach(m.Internet(), endpoint(t, m, "aws_ecs_service.web"), "tcp", 22)
	if want := "it listens on tcp 8080, tcp 32768-65535 (dynamic host ports of bridge networking)"; !strings.Contains(r.Path[len(r.Path)-1].Detail, want) {
		t.Errorf("SSH refused by %q, want it to say %q", r.Path[len(r.Path)-1].Detail, want)
	}
	// A task's own port reached from the internet makes the service
	// internet-facing; it is no exposed admin or data-store port.
	rep := run(t, "testdata/aws/ecs-bridge")
	if got := activeOn(rep, RuleInternetFacing, "aws_ecs_service.web"); len(got) != 1 {
		t.Errorf("%s on the service: %+v, want one", RuleInternetFacing, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_ecs_service.web"); len(got) > 0 {
		t.Errorf("%s on the service: %+v, want none", RuleExposedPort, got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/aws/ecs-bridge"}}, "aws_ecs_service.web")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acc {
		got = append(got, fmt.Sprintf("%s %s %d", a.Source, a.Proto, a.Port))
	}
	if want := "internet tcp 8080"; !slices.Contains(got, want) || slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, " 22") }) {
		t.Errorf("--reach: %q, want %q and no SSH", got, want)
	}
}

// TestFargateTasksAnswerOnTheirPorts: a task on awsvpc networking was read
// as answering on every port, so a group opening 8000-8100 to the internet
// was said to reach it on 8000, which nothing serves. It answers on its
// containers' ports alone, and is internet-facing through one of them
// (AWS-NET-004) even when no rule's range begins there.
func TestFargateTasksAnswerOnTheirPorts(t *testing.T) {
	const dir = "testdata/aws/fargate-ports"
	m := model(t, dir)
	e := endpoint(t, m, "aws_ecs_service.web")
	if res := m.Reach(m.Internet(), e, "tcp", 8000); res.Reachable {
		t.Errorf("tasks reached on tcp 8000, which no container maps: %s", pathLine(res.Path))
	}
	if res := m.Reach(m.Internet(), e, "tcp", 8080); !res.Reachable {
		t.Errorf("tasks not reached on tcp 8080, their web container's port: %s", pathLine(res.Path))
	}
	rep := run(t, dir)
	open := activeOn(rep, RuleWorldOpenOther, "aws_security_group.tasks")
	if len(open) != 1 || !strings.Contains(open[0].Message, "reached from the internet on tcp 8080") {
		t.Errorf("%s on the group: %+v, want one saying the tasks are reached on tcp 8080", RuleWorldOpenOther, open)
	}
	if got := activeOn(rep, RuleInternetFacing, "aws_ecs_service.web"); len(got) != 1 {
		t.Errorf("%s on the service: %+v, want one", RuleInternetFacing, got)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_ecs_service.web"); len(got) != 1 || !strings.Contains(got[0].Message, "tcp 5432 (PostgreSQL) is reachable") {
		t.Errorf("%s on the service: %+v, want one for tcp 5432 alone", RuleExposedPort, got)
	}
	// Without PostgreSQL open, the web port alone makes it internet-facing.
	src := edit(t, readFixture(t, dir+"/main.tf"), "from_port   = 5430", "from_port   = 5433")
	got := activeOn(checkSource(t, src), RuleInternetFacing, "aws_ecs_service.web")
	if len(got) != 1 || len(got[0].Path) == 0 {
		t.Errorf("%s on the service reached on tcp 8080 alone: %+v, want one with its path", RuleInternetFacing, got)
	}
}

// TestECSPublicIPOnEC2Refused checks that assign_public_ip on the EC2
// launch type, which ECS refuses (public addresses go to Fargate tasks
// alone), is CHECK-003, and gives the tasks no public address.
func TestECSPublicIPOnEC2Refused(t *testing.T) {
	rep := run(t, "testdata/aws/ecs-ec2-public-ip")
	if got := activeOn(rep, RuleRejected, "aws_ecs_service.api"); len(got) != 1 || !strings.Contains(got[0].Message, "assign_public_ip") {
		t.Errorf("%s on the service: %+v, want one naming assign_public_ip", RuleRejected, got)
	}
	if got := activeOn(rep, RuleInternetFacing, "aws_ecs_service.api"); len(got) != 0 {
		t.Errorf("%s on tasks ECS gives no public address: %+v", RuleInternetFacing, got)
	}
}
