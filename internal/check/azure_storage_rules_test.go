package check

import (
	"strings"
	"testing"
)

// TestStorageRulesWrittenTwice: a storage account whose own network_rules
// deny by default, and whose azurerm_storage_account_network_rules allow,
// has its rules written by both; whichever Terraform applies last is in
// force, and the separate resource applies after the account. The
// account was read by its own block alone, as closed, and passed over; it
// is AZ-NET-006, naming the separate resource. An account whose two
// writers both deny is not reported.
func TestStorageRulesWrittenTwice(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_storage_account" "open" {
  name                     = "open"
  resource_group_name      = "rg"
  location                 = "westeurope"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  network_rules {
    default_action = "Deny"
  }
}
resource "azurerm_storage_account_network_rules" "open" {
  storage_account_id = azurerm_storage_account.open.id
  default_action     = "Allow"
}
resource "azurerm_storage_account" "closed" {
  name                     = "closed"
  resource_group_name      = "rg"
  location                 = "westeurope"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  network_rules {
    default_action = "Deny"
  }
}
resource "azurerm_storage_account_network_rules" "closed" {
  storage_account_id = azurerm_storage_account.closed.id
  default_action     = "Deny"
  ip_rules           = ["198.51.100.0/24"]
}
`)
	f := findingOn(rep, RuleAzServiceOpen, "azurerm_storage_account.open")
	if f == nil || !strings.Contains(f.Message, "azurerm_storage_account_network_rules.open is Allow") {
		t.Errorf("%s on the account the separate rules open: %v, want one naming azurerm_storage_account_network_rules.open", RuleAzServiceOpen, f)
	}
	if f := findingOn(rep, RuleAzServiceOpen, "azurerm_storage_account.closed"); f != nil {
		t.Errorf("%s on the account both writers close: %s", RuleAzServiceOpen, f.Message)
	}
}
