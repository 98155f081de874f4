package check

import (
	"strings"
	"testing"
)

// TestContainerAppIngressOpen checks that a container app whose external
// ingress, in an environment that faces the internet, has no IP
// restrictions that keep the internet out is reported as admitting every
// address, one reached over TCP naming its port, and that restricted,
// internal and internally balanced ones are not.
func TestContainerAppIngressOpen(t *testing.T) {
	rep := run(t, "testdata/azure/container-apps")
	if got := activeOn(rep, RuleAzAppOpen, "azurerm_container_app.open"); len(got) != 1 {
		t.Errorf("%s on an external ingress without restrictions: %+v, want one", RuleAzAppOpen, got)
	}
	got := activeOn(rep, RuleAzAppOpen, "azurerm_container_app.db")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 5432") {
		t.Errorf("%s on a TCP ingress denying one address: %+v, want one naming tcp 5432", RuleAzAppOpen, got)
	}
	for _, addr := range []string{"azurerm_container_app.office", "azurerm_container_app.inside", "azurerm_container_app.ilb"} {
		if got := activeOn(rep, RuleAzAppOpen, addr); len(got) != 0 {
			t.Errorf("%s on %s: %+v, want none", RuleAzAppOpen, addr, got)
		}
	}
}
