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

// TestDynamicPartlyKnown checks that a dynamic block repeats over a known
// list whose elements hold values not known statically, keeping what each
// element fixes.
func TestDynamicPartlyKnown(t *testing.T) {
	files := fstest.MapFS{
		"main.tf": {Data: []byte(`
resource "azurerm_public_ip" "fw" {}
locals {
  rules = [
    { name = "rdp", to = "10.51.4.4", at = azurerm_public_ip.fw.ip_address },
    { name = "ssh", to = "10.51.4.5", at = azurerm_public_ip.fw.ip_address },
  ]
}
resource "azurerm_firewall_policy_rule_collection_group" "g" {
  nat_rule_collection {
    dynamic "rule" {
      for_each = local.rules
      content {
        name                = rule.value.name
        destination_address = rule.value.at
        translated_address  = rule.value.to
      }
    }
  }
}
`)},
	}
	g := byAddr(load(t, files, Options{}))["azurerm_firewall_policy_rule_collection_group.g"]
	c := g.Values["nat_rule_collection"].([]any)[0].(map[string]any)
	rules, _ := c["rule"].([]any)
	if len(rules) != 2 {
		t.Fatalf("want two rules, got %#v", c["rule"])
	}
	for i, want := range []string{"10.51.4.4", "10.51.4.5"} {
		r := rules[i].(map[string]any)
		if r["translated_address"] != want {
			t.Errorf("rule %d: translated_address = %#v, want %q", i, r["translated_address"], want)
		}
		if _, ok := r["destination_address"].(Unknown); !ok {
			t.Errorf("rule %d: destination_address = %#v, want unknown", i, r["destination_address"])
		}
	}
}
