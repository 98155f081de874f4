package tf

import (
	"testing"
	"testing/fstest"
)

// TestNICPrivateIP checks that an Azure interface's private_ip_address
// reads as its primary ip_configuration's static address when written, and
// as its stand-in (PrivateIPOf) when Azure assigns it, through a module
// output too.
func TestNICPrivateIP(t *testing.T) {
	files := fstest.MapFS{
		"main.tf": {Data: []byte(`
resource "azurerm_network_interface" "static" {
  ip_configuration {
    name                          = "a"
    private_ip_address_allocation = "Dynamic"
  }
  ip_configuration {
    name                          = "b"
    primary                       = true
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.1.1.4"
  }
}
module "vm" {
  source = "./vm"
}
resource "azurerm_firewall_nat_rule_collection" "in" {
  rule {
    name               = "static"
    translated_address = azurerm_network_interface.static.private_ip_address
  }
  rule {
    name               = "assigned"
    translated_address = module.vm.ip
  }
}
`)},
		"vm/main.tf": {Data: []byte(`
resource "azurerm_network_interface" "nic" {
  ip_configuration {
    name                          = "a"
    private_ip_address_allocation = "Dynamic"
  }
}
output "ip" {
  value = azurerm_network_interface.nic.private_ip_address
}
`)},
	}
	rules, _ := byAddr(load(t, files, Options{}))["azurerm_firewall_nat_rule_collection.in"].Values["rule"].([]any)
	if len(rules) != 2 {
		t.Fatalf("want two rules, got %v", rules)
	}
	for i, want := range []string{"10.1.1.4", PrivateIPOf("module.vm.azurerm_network_interface.nic")} {
		if got := rules[i].(map[string]any)["translated_address"]; got != want {
			t.Errorf("rule %d: translated_address = %#v, want %q", i, got, want)
		}
	}
}
