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

// TestContainerAppAzAPI: container apps written through the AzAPI provider
// (Microsoft.App/containerApps) were only noted as not evaluated; they are
// read as azurerm_container_app is: an external ingress open to the
// internet is AZ-APP-001 (medium over TCP), allowInsecure is AZ-TLS-001,
// and an app behind a narrow range, without external ingress or in an
// internal environment (written through AzAPI too) is not reported.
func TestContainerAppAzAPI(t *testing.T) {
	rep := run(t, "testdata/azure/azapi-container-apps")
	if got := activeOn(rep, RuleAzAppOpen, "azapi_resource.storefront"); len(got) != 1 || got[0].Severity != Low {
		t.Errorf("%s on an external ingress without restrictions: %+v, want one, low", RuleAzAppOpen, got)
	}
	if got := activeOn(rep, RuleAzAppOpen, "azapi_resource.broker"); len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "tcp 5672") {
		t.Errorf("%s on a TCP ingress: %+v, want one, medium, naming tcp 5672", RuleAzAppOpen, got)
	}
	for _, addr := range []string{"azapi_resource.admin", "azapi_resource.worker", "azapi_resource.legacy", "azapi_resource.back_office"} {
		if got := activeOn(rep, RuleAzAppOpen, addr); len(got) != 0 {
			t.Errorf("%s on %s: %+v, want none", RuleAzAppOpen, addr, got)
		}
	}
	if got := activeOn(rep, RuleAzWeakTLS, "azapi_resource.legacy"); len(got) != 1 {
		t.Errorf("%s on allowInsecure: %+v, want one", RuleAzWeakTLS, got)
	}
	for _, f := range active(rep, RuleNotEvaluated) {
		if strings.Contains(f.Message, "Microsoft.App/") {
			t.Errorf("%s still noted as not evaluated: %s", f.Address, f.Message)
		}
	}
}
