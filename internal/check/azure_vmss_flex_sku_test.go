package check

import (
	"strings"
	"testing"
)

// flexScaleSet is a scale set in Flexible orchestration whose instances
// each take a public IP of the SKU its public_ip_address block names, in a
// subnet without a network security group.
const flexScaleSet = `
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "4.10.0"
    }
  }
}
resource "azurerm_virtual_network" "main" {
  name                = "main"
  resource_group_name = "rg"
  location            = "westeurope"
  address_space       = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "workers" {
  name                 = "workers"
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_orchestrated_virtual_machine_scale_set" "workers" {
  name                        = "workers"
  resource_group_name         = "rg"
  location                    = "westeurope"
  platform_fault_domain_count = 1
  sku_name                    = "Standard_D2s_v3"
  instances                   = 2
  network_interface {
    name    = "nic"
    primary = true
    ip_configuration {
      name      = "ipc"
      primary   = true
      subnet_id = azurerm_subnet.workers.id
      public_ip_address {
        name     = "pip"
        sku_name = "Standard_Regional"
      }
    }
  }
}
`

// TestFlexScaleSetStandardPublicIP checks that the instances of a scale
// set whose public_ip_address block names a Standard SKU (Standard_Regional,
// Standard_Global) are reached from the internet through an NSG alone, as
// a machine's Standard public IP is: with none on the subnet or the
// interface nothing is reached, where every port was said to be. One of
// the Basic SKU, or whose SKU is not set or not known statically, is open
// without an NSG.
func TestFlexScaleSetStandardPublicIP(t *testing.T) {
	const addr = "azurerm_orchestrated_virtual_machine_scale_set.workers"
	for _, tc := range []struct {
		name, sku string
		open      bool
	}{
		{"standard regional", `"Standard_Regional"`, false},
		{"standard global", `"Standard_Global"`, false},
		{"basic", `"Basic_Regional"`, true},
		{"unknown", `var.sku`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(flexScaleSet, `"Standard_Regional"`, tc.sku, 1)
			if tc.sku == "var.sku" {
				src += "variable \"sku\" {}\n"
			}
			rep := checkSource(t, src)
			got := activeOn(rep, "AZ-NET-002", addr)
			if open := len(got) > 0; open != tc.open {
				t.Errorf("AZ-NET-002 on %s with public IP SKU %s: %d findings, want open %v", addr, tc.sku, len(got), tc.open)
			}
		})
	}
	i := strings.Index(flexScaleSet, "  network_interface {")
	nsg := flexScaleSet[:i] + `  network_interface {
    name                      = "nic"
    primary                   = true
    network_security_group_id = azurerm_network_security_group.workers.id
` + flexScaleSet[i+len("  network_interface {\n    name    = \"nic\"\n    primary = true\n"):] + `
resource "azurerm_network_security_group" "workers" {
  name                = "workers"
  resource_group_name = "rg"
  location            = "westeurope"
  security_rule {
    name                       = "ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
`
	got := activeOn(checkSource(t, nsg), "AZ-NET-002", addr)
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || strings.Contains(got[0].Message, "3389") {
		t.Errorf("AZ-NET-002 on %s whose interface NSG admits SSH: %+v", addr, got)
	}
}
