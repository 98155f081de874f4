package check

import (
	"strings"
	"testing"
)

// TestAzureLookedUpSubnetPrefixSource pins how an NSG source that is a
// looked-up subnet's or network's range is read: whatever the lookup finds
// is not known statically (a subnet of another network, a hub's), so the
// rule admits every address, the finding saying so, at its worst (an
// allow); a lookup of a subnet the project itself writes is no exception,
// the range being the lookup's attribute, which is not read.
func TestAzureLookedUpSubnetPrefixSource(t *testing.T) {
	const lookups = `
data "azurerm_subnet" "jump" {
  name                 = "jump"
  virtual_network_name = "hub"
  resource_group_name  = "rg-hub"
}
data "azurerm_subnet" "own" {
  name                 = "snet-app"
  virtual_network_name = "vnet-main"
}
data "azurerm_virtual_network" "hub" {
  name                = "hub"
  resource_group_name = "rg-hub"
}
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
`
	for _, source := range []string{
		"data.azurerm_subnet.jump.address_prefix",
		"data.azurerm_subnet.jump.address_prefixes[0]",
		"data.azurerm_virtual_network.hub.address_space[0]",
		"data.azurerm_subnet.own.address_prefixes[0]",
	} {
		rep := checkSource(t, azureBase+lookups+nsgRule("ssh", 100, "Allow", "22", source))
		got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.vm")
		if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable from the internet") || !strings.Contains(got[0].Message, "address prefix not known statically: assumed to be every address") {
			t.Errorf("source %s: want one %s saying the prefix is assumed to be every address, got %+v", source, RuleAzExposedPort, got)
		}
	}
}
