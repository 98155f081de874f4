# An older project pinned to the azurerm 2.x line: its storage account
# leaves min_tls_version to the provider.

terraform {
  required_version = ">= 0.13"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 2.46"
    }
  }
}

provider "azurerm" {
  features {}
}

resource "azurerm_resource_group" "data" {
  name     = "rg-data"
  location = "westeurope"
}

resource "azurerm_storage_account" "exports" {
  name                      = "exportsdata"
  resource_group_name       = azurerm_resource_group.data.name
  location                  = azurerm_resource_group.data.location
  account_tier              = "Standard"
  account_replication_type  = "LRS"
  enable_https_traffic_only = true

  network_rules {
    default_action = "Deny"
    ip_rules       = ["203.0.113.10"]
  }
}

resource "azurerm_storage_account" "pinned" {
  name                      = "pinneddata"
  resource_group_name       = azurerm_resource_group.data.name
  location                  = azurerm_resource_group.data.location
  account_tier              = "Standard"
  account_replication_type  = "LRS"
  enable_https_traffic_only = true
  min_tls_version           = "TLS1_2"

  network_rules {
    default_action = "Deny"
    ip_rules       = ["203.0.113.10"]
  }
}
