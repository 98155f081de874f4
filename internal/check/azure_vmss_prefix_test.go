package check

import (
	"strings"
	"testing"
)

// uniformScaleSet is a scale set in Uniform orchestration whose instances
// each take a public IP from a public IP prefix, in a subnet without a
// network security group.
const uniformScaleSet = `
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
resource "azurerm_public_ip_prefix" "workers" {
  name                = "workers"
  resource_group_name = "rg"
  location            = "westeurope"
  prefix_length       = 28
  sku                 = "Standard"
}
resource "azurerm_linux_virtual_machine_scale_set" "workers" {
  name                = "workers"
  resource_group_name = "rg"
  location            = "westeurope"
  sku                 = "Standard_D2s_v3"
  instances           = 2
  admin_username      = "ops"
  network_interface {
    name    = "nic"
    primary = true
    ip_configuration {
      name      = "ipc"
      primary   = true
      subnet_id = azurerm_subnet.workers.id
      public_ip_address {
        name                = "pip"
        public_ip_prefix_id = azurerm_public_ip_prefix.workers.id
      }
    }
  }
}
`

// TestScaleSetPublicIPPrefix checks that the instances of a scale set in
// Uniform orchestration whose public IPs come from a public IP prefix of
// the Standard SKU (written, or unset, its default) are reached from the
// internet through an NSG alone: they were read as Basic, open without
// one, every admin port reported. A prefix whose SKU is not known
// statically, one not in the code, or no prefix at all stays open.
func TestScaleSetPublicIPPrefix(t *testing.T) {
	const addr = "azurerm_linux_virtual_machine_scale_set.workers"
	for _, tc := range []struct {
		name, old, new string
		open           bool
	}{
		{"standard prefix", "", "", false},
		{"prefix sku unset", `  sku                 = "Standard"
`, "", false},
		{"prefix sku unknown", `  sku                 = "Standard"
`, "  sku = var.sku\n", true},
		{"prefix not known statically", "public_ip_prefix_id = azurerm_public_ip_prefix.workers.id", "public_ip_prefix_id = var.prefix", true},
		{"no prefix", "        public_ip_prefix_id = azurerm_public_ip_prefix.workers.id\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := uniformScaleSet
			if tc.old != "" {
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			src += "variable \"sku\" {}\nvariable \"prefix\" {}\n"
			got := activeOn(checkSource(t, src), "AZ-NET-002", addr)
			if open := len(got) > 0; open != tc.open {
				t.Errorf("AZ-NET-002 on %s (%s): %d findings, want open %v", addr, tc.name, len(got), tc.open)
			}
		})
	}
}
