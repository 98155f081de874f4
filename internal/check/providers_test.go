package check

import (
	"strings"
	"testing"
)

// A default that changed with a provider's major version is read with the
// version the configuration runs: a storage account that leaves
// min_tls_version unset takes TLS1_0 under azurerm 2.x, as its
// required_providers constraint holds it, and TLS1_2 from 3.0 on, which a
// loose constraint with a lock file selecting 3.x gives (as a constraint
// without an upper bound, or none, would: Terraform installs the newest).
func TestStorageTLSDefaultByProviderVersion(t *testing.T) {
	rep := run(t, "testdata/azure/storage-azurerm2")
	f := findingOn(rep, RuleAzWeakTLS, "azurerm_storage_account.exports")
	if f == nil || !strings.Contains(f.Message, `azurerm "~> 2.46"`) || !strings.Contains(f.Message, "TLS1_0") {
		t.Errorf("azurerm 2.x, min_tls_version unset: %+v, want %s naming the constraint and TLS1_0", f, RuleAzWeakTLS)
	}
	if f := findingOn(rep, RuleAzWeakTLS, "azurerm_storage_account.pinned"); f != nil {
		t.Errorf("min_tls_version = TLS1_2 reported: %s", f.Message)
	}
	if f := findingOn(run(t, "testdata/azure/storage-azurerm-locked"), RuleAzWeakTLS, "azurerm_storage_account.exports"); f != nil {
		t.Errorf("azurerm 3.x selected by the lock file: %s", f.Message)
	}
	if f := findingOn(run(t, "testdata/rules/AZ-TLS-001/pass"), RuleAzWeakTLS, "azurerm_storage_account.exports"); f != nil {
		t.Errorf("no provider version said: %s", f.Message)
	}
}

// An MSK cluster that leaves client_broker unset takes TLS from the AWS
// provider 3.0 on and TLS_PLAINTEXT before: under a 2.x constraint (the
// string form Terraform 0.12 wrote) it takes plaintext from clients.
func TestMSKDefaultByProviderVersion(t *testing.T) {
	f := findingOn(run(t, "testdata/aws/msk-aws2"), RuleTransitPlain, "aws_msk_cluster.events")
	if f == nil || !strings.Contains(f.Message, `aws "~> 2.70"`) || !strings.Contains(f.Message, "TLS_PLAINTEXT") {
		t.Errorf("AWS provider 2.x, client_broker unset: %+v, want %s naming the constraint", f, RuleTransitPlain)
	}
}

// TestAppDefaultActionByProviderVersion: azurerm before 3.95 sends no
// default action for a web app's access restrictions, and App Service then
// ends rules in an implicit deny: a site whose rules allow an office
// admits the office alone. It was read as admitting every address, the
// default from 3.95 on; a site without rules admits every address under
// any version.
func TestAppDefaultActionByProviderVersion(t *testing.T) {
	rep := run(t, "testdata/azure/app-default-action-3x")
	if got := activeOn(rep, RuleAzAppOpen, "azurerm_linux_web_app.office"); len(got) != 0 {
		t.Errorf("%s on a site whose rules end in an implicit deny: %+v, want none", RuleAzAppOpen, got)
	}
	if got := activeOn(rep, RuleAzAppOpen, "azurerm_linux_web_app.open"); len(got) != 1 {
		t.Errorf("%s on a site without rules: %+v, want one", RuleAzAppOpen, got)
	}
}
