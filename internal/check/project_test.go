package check

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// TestProjects checks realistic multi-file projects end to end and compares
// every finding, with its path, to the golden report beside the project
// (run with -update after checking a change). Each test below also states
// the findings that the project exists to prove.
func TestProjects(t *testing.T) {
	for _, name := range []string{"three-tier", "eks", "peered", "azure-hub-spoke"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "projects", name)
			rep := run(t, dir)
			var buf bytes.Buffer
			if err := Write(&buf, rep, "text"); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "projects", name+".txt"), buf.Bytes())
		})
	}
}

func hasFinding(rep *Report, rule, addr string, sev Severity) bool {
	for _, f := range rep.Findings {
		if f.RuleID == rule && f.Address == addr && f.Severity == sev {
			return true
		}
	}
	return false
}

func TestProjectAzureHubSpoke(t *testing.T) {
	dir := filepath.Join("testdata", "projects", "azure-hub-spoke")
	rep := run(t, dir)
	for _, want := range []struct {
		rule, addr string
		sev        Severity
	}{
		{RuleAzExposedPort, `azurerm_linux_virtual_machine.vm["hub"]`, Critical},
		{RuleNSGWorldOpen, "azurerm_network_security_group.hub", Critical},
		{RuleAzLateral, `azurerm_linux_virtual_machine.vm["spoke1"]`, High},
		{RuleNSGNoFlowLogs, "azurerm_network_security_group.spoke", Medium},
	} {
		if !hasFinding(rep, want.rule, want.addr, want.sev) {
			t.Errorf("no %s %s finding on %s", want.sev, want.rule, want.addr)
		}
	}
	// Peering is not transitive: spoke2 is reached from the hub only.
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, `azurerm_linux_virtual_machine.vm["spoke2"]`)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if a.Source != `azurerm_virtual_network.this["hub"]` && a.Source != `azurerm_subnet.workload["spoke2"]` {
			t.Errorf("spoke2 reached from %s on %d: %s", a.Source, a.Port, pathLine(a.Path))
		}
	}
	if len(acc) == 0 {
		t.Error("spoke2 is reached from no source; want the hub on SSH")
	}
}

func TestProjectsKeyFindings(t *testing.T) {
	for _, tc := range []struct {
		project, rule, addr string
		sev                 Severity
		absent              bool
	}{
		{"three-tier", RuleExposedPort, "aws_instance.bastion", Critical, false},
		{"three-tier", RuleWorldOpen, "aws_security_group.db", High, false}, // world-open, but no route in
		{"three-tier", RuleExposedPort, "aws_db_instance.orders", Critical, true},
		{"three-tier", RuleExposedPort, "aws_lb.web", Critical, true}, // listens on 443 only
		{"peered", RuleLateral, "aws_db_instance.orders", High, false},
		{"peered", RuleLateral, "aws_instance.prod_app", High, false},
		{"eks", RuleExposedPort, "aws_eks_cluster.main", High, false}, // the Kubernetes API authenticates every request
		{"eks", RuleExposedPort, "aws_eks_node_group.default", Critical, false},
	} {
		rep := run(t, filepath.Join("testdata", "projects", tc.project))
		if got := hasFinding(rep, tc.rule, tc.addr, tc.sev); got == tc.absent {
			t.Errorf("%s: %s %s on %s: present = %v, want %v", tc.project, tc.sev, tc.rule, tc.addr, got, !tc.absent)
		}
	}
	// The lateral finding names every hop from dev to the database.
	rep := run(t, filepath.Join("testdata", "projects", "peered"))
	for _, f := range rep.Findings {
		if f.RuleID == RuleLateral && f.Address == "aws_db_instance.orders" {
			want := "aws_vpc.dev → aws_vpc_peering_connection.dev_prod → aws_route_table.prod → aws_subnet.prod_db → default network ACL of aws_vpc.prod allows all → aws_security_group.db → aws_db_instance.orders"
			if got := pathLine(f.Path); got != want {
				t.Errorf("lateral path\n got %s\nwant %s", got, want)
			}
		}
	}
}
