package check

import (
	"strings"
	"testing"
)

// dnatToUnplaced is an Azure Firewall whose policy translates RDP from
// any address to 10.2.1.4, and a machine with no public IP whose
// interface takes an address Azure assigns in a subnet a module outside
// the scanned code gives (a spoke network from a registry module).
const dnatToUnplaced = `
variable "spoke_subnet_id" {
  type = string
}
variable "hub_subnet_id" {
  type = string
}
resource "azurerm_public_ip" "fw" {
  name                = "fw"
  resource_group_name = "rg"
  location            = "westeurope"
  allocation_method   = "Static"
  sku                 = "Standard"
}
resource "azurerm_firewall_policy" "hub" {
  name                = "hub"
  resource_group_name = "rg"
  location            = "westeurope"
}
resource "azurerm_firewall" "hub" {
  name                = "hub"
  resource_group_name = "rg"
  location            = "westeurope"
  sku_name            = "AZFW_VNet"
  sku_tier            = "Standard"
  firewall_policy_id  = azurerm_firewall_policy.hub.id
  ip_configuration {
    name                 = "configuration"
    subnet_id            = var.hub_subnet_id
    public_ip_address_id = azurerm_public_ip.fw.id
  }
}
resource "azurerm_firewall_policy_rule_collection_group" "hub" {
  name               = "hub"
  firewall_policy_id = azurerm_firewall_policy.hub.id
  priority           = 500
  nat_rule_collection {
    name     = "nat"
    priority = 300
    action   = "Dnat"
    rule {
      name                = "rdp"
      protocols           = ["TCP"]
      source_addresses    = ["*"]
      destination_address = azurerm_public_ip.fw.ip_address
      destination_ports   = ["3389"]
      translated_address  = "10.2.1.4"
      translated_port     = "3389"
    }
  }
}
resource "azurerm_network_interface" "vm" {
  name                = "vm"
  resource_group_name = "rg"
  location            = "westeurope"
  ip_configuration {
    name                          = "internal"
    subnet_id                     = var.spoke_subnet_id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_windows_virtual_machine" "vm" {
  name                  = "vm"
  resource_group_name   = "rg"
  location              = "westeurope"
  size                  = "Standard_F2"
  admin_username        = "azureuser"
  admin_password        = "not-a-real-password-1A!"
  network_interface_ids = [azurerm_network_interface.vm.id]
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
  source_image_reference {
    publisher = "MicrosoftWindowsServer"
    offer     = "WindowsServer"
    sku       = "2022-Datacenter"
    version   = "latest"
  }
}
`

// TestDNATToMachineInSubnetElsewhere checks that a DNAT rule's translated
// address may be that of a machine whose interface takes an address Azure
// assigns in a subnet not in the scanned code: RDP the firewall publishes
// to it is reported, the assumption said; it was read as reaching no
// machine of the project, and the machine as reached by no one.
func TestDNATToMachineInSubnetElsewhere(t *testing.T) {
	rep := checkSource(t, dnatToUnplaced)
	fs := activeOn(rep, "AZ-NET-002", "azurerm_windows_virtual_machine.vm")
	if len(fs) != 1 {
		t.Fatalf("AZ-NET-002 on the machine: %+v", rep.Findings)
	}
	if !strings.Contains(fs[0].Message, "tcp 3389 (RDP) may be reachable from the internet") ||
		!strings.Contains(fs[0].Message, "10.2.1.4 is held statically by no interface in the project: assumed to be any machine with an address Azure assigns in a subnet that holds it or in one not in the scanned code") {
		t.Errorf("message: %s", fs[0].Message)
	}
	if !strings.Contains(fs[0].Fix, "DNAT rules that translate it to the machine (nat/rdp") {
		t.Errorf("fix: %s", fs[0].Fix)
	}
	for _, n := range activeOn(rep, RuleNotEvaluated, "azurerm_firewall_policy_rule_collection_group.hub") {
		if strings.Contains(n.Message, "reaches no machine") {
			t.Errorf("note: %s", n.Message)
		}
	}
	// A machine whose interface holds another address statically is not
	// the one.
	s := strings.Replace(dnatToUnplaced, `    private_ip_address_allocation = "Dynamic"`, `    private_ip_address_allocation = "Static"
    private_ip_address            = "10.2.1.5"`, 1)
	if fs := activeOn(checkSource(t, s), "AZ-NET-002", "azurerm_windows_virtual_machine.vm"); len(fs) != 0 {
		t.Errorf("machine at 10.2.1.5: %+v", fs)
	}
}
