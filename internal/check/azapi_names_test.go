package check

import (
	"regexp"
	"strings"
	"testing"
)

// TestAzapiNames: a finding on a resource written through the AzAPI
// provider named what it read by azurerm's arguments (network_rules,
// ip_security_restriction, role_based_access_control_enabled), which its
// code does not hold; it names them as the body does, by ARM's properties.
func TestAzapiNames(t *testing.T) {
	snake := regexp.MustCompile(`\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b`)
	want := map[string]string{
		"azapi_resource.exports":    "networkAcls",
		"azapi_resource.vault_open": "networkAcls",
		"azapi_resource.logs":       "networkAcls",
		"azapi_resource.broker":     "ipSecurityRestrictions",
		"azapi_resource.storefront": "ipSecurityRestrictions",
	}
	seen := map[string]bool{}
	site := "resource \"azapi_resource\" \"site\" {\n  type      = \"Microsoft.Web/sites@2024-04-01\"\n  name      = \"site\"\n  parent_id = \"/subscriptions/x/resourceGroups/rg\"\n  body = {\n    properties = {\n      httpsOnly  = true\n      siteConfig = { ftpsState = \"FtpsOnly\" }\n    }\n  }\n}\n"
	want["azapi_resource.site"] = "ipSecurityRestrictionsDefaultAction"
	for _, dir := range []string{"testdata/azure/azapi-data", "testdata/azure/azapi-container-apps", "testdata/azure/azapi-aks", writeProject(t, site)} {
		rep := run(t, dir)
		for _, f := range rep.Findings {
			if !strings.HasPrefix(f.Address, "azapi_resource.") || f.RuleID == RuleNotEvaluated {
				continue
			}
			for _, tok := range snake.FindAllString(f.Message, -1) {
				if !strings.HasPrefix(tok, "azurerm_") && !strings.HasPrefix(tok, "azapi_") {
					t.Errorf("%s %s (%s) names azurerm's %s: %s", f.RuleID, f.Address, dir, tok, f.Message)
				}
			}
			if strings.Contains(f.Message, "azurerm provider") {
				t.Errorf("%s %s names the azurerm provider: %s", f.RuleID, f.Address, f.Message)
			}
			if w, ok := want[f.Address]; ok && strings.Contains(f.Message, w) {
				seen[f.Address] = true
			}
		}
	}
	for addr, w := range want {
		if !seen[addr] {
			t.Errorf("no finding on %s names %s", addr, w)
		}
	}
}
