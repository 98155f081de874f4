package check

import (
	"context"
	"strings"
	"testing"
)

// TestAzureContainerGroups checks that a container group of type Public,
// the provider's default, is reached from the internet on the ports it
// exposes and on no other: it had no endpoint, so a public group with SSH
// open passed unreported. A port not known statically may be any, which
// is said; a private group has no internet address.
func TestAzureContainerGroups(t *testing.T) {
	const dir = "testdata/azure/container-group"
	m := model(t, dir)
	inet := m.Internet()
	for _, c := range []struct {
		addr  string
		proto string
		port  int
		want  bool
	}{
		{"azurerm_container_group.site", "tcp", 80, true},
		{"azurerm_container_group.site", "tcp", 22, false},
		{"azurerm_container_group.site", "udp", 80, false},
		{"azurerm_container_group.tools", "tcp", 22, true},
		{"azurerm_container_group.narrow", "tcp", 8080, true},
		{"azurerm_container_group.narrow", "tcp", 5432, false}, // declared, not exposed
		{"azurerm_container_group.inside", "tcp", 22, false},
	} {
		if got := m.Reach(inet, endpoint(t, m, c.addr), c.proto, c.port).Reachable; got != c.want {
			t.Errorf("%s %s %d from the internet: reachable %v, want %v", c.addr, c.proto, c.port, got, c.want)
		}
	}
	rep := run(t, dir)
	if got := activeOn(rep, RuleAzInternetFacing, "azurerm_container_group.site"); len(got) != 1 {
		t.Errorf("public web group: %+v, want one %s", got, RuleAzInternetFacing)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_container_group.site"); len(got) > 0 {
		t.Errorf("public web group on 80: %+v, want no %s", got, RuleAzExposedPort)
	}
	tools := activeOn(rep, RuleAzExposedPort, "azurerm_container_group.tools")
	if len(tools) != 1 || tools[0].Severity != Critical || !strings.Contains(tools[0].Message, "tcp 22 (SSH) is reachable") || strings.Contains(tools[0].Message, "443") {
		t.Errorf("public group exposing SSH: %+v, want one critical naming SSH alone", tools)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_container_group.narrow"); len(got) > 0 {
		t.Errorf("group exposing 8080 alone: %+v, want no %s", got, RuleAzExposedPort)
	}
	worker := activeOn(rep, RuleAzExposedPort, "azurerm_container_group.worker")
	if len(worker) != 1 || worker[0].Severity != High || !strings.Contains(worker[0].Message, "may be reachable") ||
		!strings.Contains(worker[0].Message, "port not known statically") {
		t.Errorf("group whose port is not known statically: %+v, want one high that says it may be reachable and why", worker)
	}
	for _, rule := range []string{RuleAzExposedPort, RuleAzInternetFacing} {
		if got := activeOn(rep, rule, "azurerm_container_group.inside"); len(got) > 0 {
			t.Errorf("private group: %+v, want no %s", got, rule)
		}
	}
}

// TestContainerGroupNetworkProfile: a private container group of azurerm
// before 3.16 names its subnet through network_profile_id, an
// azurerm_network_profile whose container_network_interface holds it; it
// was placed in no subnet, so nothing in its virtual network was said to
// reach it, and the profile was noted as not evaluated. The group is in
// the profile's subnet: the subnet beside it reaches its Redis port, and
// the profile is read.
func TestContainerGroupNetworkProfile(t *testing.T) {
	const dir = "testdata/azure/aci-network-profile"
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_container_group.cache")
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	for _, a := range acc {
		if a.Source == "azurerm_subnet.vm" && a.Port == 6379 {
			reached = true
		}
	}
	if !reached {
		t.Errorf("the subnet beside the container group does not reach its port 6379: %+v", acc)
	}
	if why, ok := notModelled(run(t, dir))["azurerm_network_profile.aci"]; ok {
		t.Errorf("the network profile is noted as not read: %s", why)
	}
}
