package check

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"moat/internal/check/tf"
)

func model(t *testing.T, dir string) *Model {
	t.Helper()
	p, err := tf.LoadDir(os.DirFS(dir), ".", tf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Build(p.Resources)
}

func endpoint(t *testing.T, m *Model, addr string) *Endpoint {
	t.Helper()
	for _, e := range m.Endpoints {
		if e.Addr == addr {
			return e
		}
	}
	t.Fatalf("no endpoint %s", addr)
	return nil
}

func kinds(path []Hop) string {
	var k []string
	for _, h := range path {
		k = append(k, h.Kind)
	}
	return strings.Join(k, ",")
}

// The same 0.0.0.0/0:5432 rule: a database in subnets routed to an internet
// gateway with a public address is reachable (critical, path shown); in
// subnets whose default route goes to a NAT gateway it is not.
func TestPathDatabasePublicVersusPrivate(t *testing.T) {
	t.Log("public: the path crosses IGW, route table, subnet, ACL and group")
	pub := model(t, "testdata/paths/db-public")
	db := endpoint(t, pub, "aws_db_instance.main")
	r := pub.Reach(pub.Internet(), db, "tcp", 5432)
	if !r.Reachable {
		t.Fatalf("public database not reachable: %v", r.Path)
	}
	if got, want := kinds(r.Path), "source,igw,route,subnet,nacl,sg,endpoint"; got != want {
		t.Errorf("path kinds %s, want %s", got, want)
	}
	rep := run(t, "testdata/paths/db-public")
	f := active(rep, RuleExposedPort)
	if len(f) != 1 || f[0].Severity != Critical || f[0].Address != "aws_db_instance.main" || len(f[0].Path) != 7 {
		t.Errorf("want one critical AWS-NET-001 on aws_db_instance.main with its path, got %+v", f)
	}

	t.Log("private: blocked at the route table, and no finding")
	priv := model(t, "testdata/paths/db-private")
	db = endpoint(t, priv, "aws_db_instance.main")
	r = priv.Reach(priv.Internet(), db, "tcp", 5432)
	if r.Reachable {
		t.Fatalf("private database reachable: %v", r.Path)
	}
	last := r.Path[len(r.Path)-1]
	if last.Kind != "route" || last.Addr != "aws_route_table.db" {
		t.Errorf("blocking hop %+v, want the route table aws_route_table.db", last)
	}
	rep = run(t, "testdata/paths/db-private")
	for _, rule := range []string{RuleExposedPort, RuleDataTierPublic, RuleInternetFacing} {
		if f := active(rep, rule); len(f) > 0 {
			t.Errorf("private database: unexpected %s: %+v", rule, f)
		}
	}
}

// 0.0.0.0/1 + 128.0.0.0/1 on port 22 is the whole internet.
func TestPathSplitRange(t *testing.T) {
	rep := run(t, "testdata/paths/split-range")
	f := active(rep, RuleExposedPort)
	if len(f) != 1 || f[0].Address != "aws_instance.bastion" || !strings.Contains(f[0].Message, "tcp 22") {
		t.Fatalf("want AWS-NET-001 on tcp 22 of the bastion, got %+v", f)
	}
	if !strings.Contains(f[0].Message, "every IPv4 internet address") {
		t.Errorf("the two halves should read as the whole IPv4 internet: %q", f[0].Message)
	}
	if w := active(rep, RuleWorldOpen); len(w) != 1 || w[0].Address != "aws_security_group.ssh" {
		t.Errorf("want AWS-NET-003 on aws_security_group.ssh, got %+v", w)
	}
}

// A self rule listed before an open rule does not hide the open rule.
func TestPathSelfRuleFirst(t *testing.T) {
	m := model(t, "testdata/paths/self-first")
	if g := m.sgs["aws_security_group.ssh"]; g == nil || !g.Ingress[0].Self {
		t.Fatal("fixture: the first ingress rule should be the self rule")
	}
	rep := run(t, "testdata/paths/self-first")
	if f := active(rep, RuleExposedPort); len(f) != 1 || f[0].Address != "aws_instance.bastion" {
		t.Errorf("want AWS-NET-001 on the bastion, got %+v", f)
	}
}

// A security group passed into a local module is resolved through the
// module variable: the database carries it, app members reach 5432, others
// do not, and the group is not reported unused.
func TestPathModuleSecurityGroup(t *testing.T) {
	m := model(t, "testdata/paths/module-sg")
	db := endpoint(t, m, "module.db.aws_db_instance.this")
	if len(db.SGs) != 1 || db.SGs[0].Addr != "aws_security_group.db" {
		t.Fatalf("database groups %v, want aws_security_group.db", db.SGs)
	}
	if len(db.Subnets) != 2 {
		t.Errorf("database subnets %d, want the 2 counted subnets passed through the module", len(db.Subnets))
	}
	sub := m.subnets["aws_subnet.private[0]"]
	if r := m.Reach(m.SubnetSource(sub, "aws_security_group.app"), db, "tcp", 5432); !r.Reachable {
		t.Errorf("app members should reach 5432: %v", r.Path)
	}
	r := m.Reach(m.SubnetSource(sub), db, "tcp", 5432)
	if r.Reachable || r.Path[len(r.Path)-1].Kind != "sg" {
		t.Errorf("non-members should be blocked by the group: %v", r.Path)
	}
	rep := run(t, "testdata/paths/module-sg")
	if f := active(rep, RuleUnusedSG); len(f) > 0 {
		t.Errorf("false unused-group alarm: %+v", f)
	}
	if f := active(rep, RuleNotEvaluated); len(f) > 0 {
		t.Errorf("everything in the module should evaluate: %+v", f)
	}
}

// A↔B and B↔C peering with a route from A to C's range through A↔B.
func TestPathTransitivePeering(t *testing.T) {
	rep := run(t, "testdata/paths/transitive-peering")
	f := active(rep, RuleTransitivePeer)
	if len(f) != 1 || f[0].Address != "aws_route.a_to_c" || !strings.Contains(f[0].Message, "aws_vpc.c") {
		t.Fatalf("want AWS-NET-006 on aws_route.a_to_c naming aws_vpc.c, got %+v", f)
	}
	if len(active(rep, RuleNoFlowLogs)) != 0 {
		t.Errorf("for_each flow logs should cover all three VPCs: %+v", active(rep, RuleNoFlowLogs))
	}
}

// The flow log names its VPC by reference in a plan whose IDs are unknown:
// no false "no flow logs"; and the plan gives the HCL's findings.
func TestPathPlanFlowLogAndEquivalence(t *testing.T) {
	planRep := run(t, "testdata/paths/plan/plan.json")
	if f := active(planRep, RuleNoFlowLogs); len(f) > 0 {
		t.Errorf("false no-flow-logs alarm from the plan: %+v", f)
	}
	hclRep := run(t, "testdata/paths/plan")
	strip := func(fs []Finding) []Finding {
		out := make([]Finding, len(fs))
		for i, f := range fs {
			f.File, f.Line, f.end = "", 0, 0
			out[i] = f
		}
		return out
	}
	if len(hclRep.Findings) == 0 {
		t.Fatal("fixture should have findings")
	}
	if got, want := strip(planRep.Findings), strip(hclRep.Findings); !reflect.DeepEqual(got, want) {
		t.Errorf("plan and HCL findings differ:\nplan %+v\nhcl  %+v", got, want)
	}
}

// TestPathBlockedSaysWhereItStopped checks that a path which does not
// arrive reads as stopped where it stops: an NSG admitting the internet
// to a machine without a public address is reported with the path that
// proves nothing, and its line must not read as the machine reached.
func TestPathBlockedSaysWhereItStopped(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.b"
	src := azurePeers("10.1.0.0/16", "10.2.0.0/16") + `
resource "azurerm_network_security_rule" "ssh" {
  name                        = "ssh"
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "22"
  source_address_prefix       = "*"
  destination_address_prefix  = "*"
  network_security_group_name = azurerm_network_security_group.b.name
}
`
	rep := checkSource(t, src)
	got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.b")
	if len(got) != 1 || len(got[0].Path) == 0 {
		t.Fatalf("want one %s with a path, got %+v", RuleNSGWorldOpen, got)
	}
	last := got[0].Path[len(got[0].Path)-1]
	if !last.Blocked || last.Addr != vm {
		t.Errorf("last hop %+v, want %s marked blocked", last, vm)
	}
	want := "internet, stopped at " + vm + " (has no public address)"
	if p := pathLine(got[0].Path); p != want {
		t.Errorf("path line %q, want %q", p, want)
	}
	var sarif strings.Builder
	if err := Write(&sarif, &Report{Findings: got}, "sarif"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sarif.String(), `"stopped at endpoint: has no public address"`) {
		t.Errorf("the SARIF code flow does not say where the path stopped:\n%s", sarif.String())
	}
}
