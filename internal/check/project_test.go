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
		{RuleExposedPort, `azurerm_linux_virtual_machine.vm["hub"]`, Critical},
		{RuleNSGWorldOpen, "azurerm_network_security_group.hub", Critical},
		{RuleLateral, `azurerm_linux_virtual_machine.vm["spoke1"]`, High},
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
