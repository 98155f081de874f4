package check

import (
	"strings"
	"testing"
)

// TestFirewallDNATSourceIPGroup checks that a DNAT rule whose sources are
// IP groups of the project (azurerm_ip_group, with the ranges
// azurerm_ip_group_cidr adds) admits their ranges: SSH an office's group
// reaches is medium, naming the office, where the groups were read as
// every address, the exposure assumed. A group not known statically, or
// one of its ranges, is still read as every address.
func TestFirewallDNATSourceIPGroup(t *testing.T) {
	src := edit(t, readFixture(t, "testdata/azure/firewall-dnat/main.tf"), `      source_addresses    = ["203.0.113.0/24"]`,
		`      source_ip_groups    = [azurerm_ip_group.office.id]`)
	groups := `
resource "azurerm_ip_group" "office" {
  name  = "office"
  cidrs = ["203.0.113.0/25"]
}
resource "azurerm_ip_group_cidr" "office_annex" {
  ip_group_id = azurerm_ip_group.office.id
  cidr        = "203.0.113.128/25"
}
`
	app := activeOn(checkSource(t, src+groups), RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
	if len(app) != 1 || app[0].Severity != Medium || !strings.Contains(app[0].Message, "tcp 22 (SSH) is reachable from the internet (203.0.113.0/24)") {
		t.Errorf("DNAT from the office's IP group: want one medium %s from 203.0.113.0/24, got %+v", RuleAzExposedPort, app)
	}
	unknownCIDR := strings.Replace(groups, `cidr        = "203.0.113.128/25"`, "cidr        = var.annex", 1) + "variable \"annex\" {}\n"
	app = activeOn(checkSource(t, src+unknownCIDR), RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
	if len(app) != 1 || !strings.Contains(app[0].Message, "may be reachable from the internet") || !strings.Contains(app[0].Message, "IP group") {
		t.Errorf("DNAT from an IP group with a range not known statically: want one %s read as every address, saying so, got %+v", RuleAzExposedPort, app)
	}
}
