package check

import (
	"strings"
	"testing"
)

// Event Hubs and Service Bus namespaces and Azure AI Search services are
// read for AZ-NET-006 as storage accounts are: public network access on
// (their default) with network rules that admit every network (none, a
// default action of Allow, Service Bus's default, or IP rules holding the
// internet at large, or none at all beside a default action of Deny, which
// Azure then ignores; a search service's allowed_ips, none admitting every
// network) is reported; rules that deny by default with narrow IP rules or
// virtual network rules, and public access off, are not.
func TestAzureNamespacesAndSearchOpen(t *testing.T) {
	const src = `
resource "azurerm_eventhub_namespace" "open" {
  name = "ehopen"
  sku  = "Standard"
}
resource "azurerm_eventhub_namespace" "wide" {
  name = "ehwide"
  sku  = "Standard"
  network_rulesets {
    default_action = "Deny"
    ip_rule {
      ip_mask = "0.0.0.0/1"
    }
    ip_rule {
      ip_mask = "128.0.0.0/1"
    }
  }
}
resource "azurerm_eventhub_namespace" "office" {
  name = "ehoffice"
  sku  = "Standard"
  network_rulesets {
    default_action = "Deny"
    ip_rule {
      ip_mask = "203.0.113.0/24"
    }
  }
}
resource "azurerm_eventhub_namespace" "closed" {
  name                          = "ehclosed"
  sku                           = "Standard"
  public_network_access_enabled = false
}
resource "azurerm_servicebus_namespace" "unset" {
  name = "sbunset"
  sku  = "Premium"
  network_rule_set {
    ip_rules = ["203.0.113.0/24"]
  }
}
resource "azurerm_servicebus_namespace" "denied" {
  name = "sbdenied"
  sku  = "Premium"
  network_rule_set {
    default_action = "Deny"
    ip_rules       = ["203.0.113.0/24"]
  }
}
resource "azurerm_servicebus_namespace" "separate" {
  name = "sbseparate"
  sku  = "Premium"
}
resource "azurerm_servicebus_namespace_network_rule_set" "separate" {
  namespace_id   = azurerm_servicebus_namespace.separate.id
  default_action = "Deny"
  network_rules {
    subnet_id = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/app/subnets/app"
  }
}
resource "azurerm_eventhub_namespace" "norules" {
  name = "ehnorules"
  sku  = "Standard"
  network_rulesets {
    default_action = "Deny"
  }
}
resource "azurerm_search_service" "open" {
  name = "srchopen"
  sku  = "standard"
}
resource "azurerm_search_service" "office" {
  name        = "srchoffice"
  sku         = "standard"
  allowed_ips = ["203.0.113.7", "198.51.100.0/24"]
}
resource "azurerm_search_service" "world" {
  name        = "srchworld"
  sku         = "standard"
  allowed_ips = ["0.0.0.0/0"]
}
`
	rep := checkSource(t, src)
	for addr, want := range map[string]string{
		"azurerm_eventhub_namespace.open":    "no network_rulesets block",
		"azurerm_eventhub_namespace.wide":    "admit every internet address",
		"azurerm_servicebus_namespace.unset": "default_action of network_rule_set is Allow",
		"azurerm_eventhub_namespace.norules": "no IP or virtual network rule",
		"azurerm_search_service.open":        "no allowed_ips",
		"azurerm_search_service.world":       "allowed_ips admit every internet address",
	} {
		f := findingOn(rep, RuleAzServiceOpen, addr)
		if f == nil || f.Severity != Medium || !strings.Contains(f.Message, want) {
			t.Errorf("%s: %+v, want %s medium saying %q", addr, f, RuleAzServiceOpen, want)
		}
	}
	for _, addr := range []string{"azurerm_eventhub_namespace.office", "azurerm_eventhub_namespace.closed", "azurerm_servicebus_namespace.denied",
		"azurerm_servicebus_namespace.separate", "azurerm_search_service.office"} {
		if f := findingOn(rep, RuleAzServiceOpen, addr); f != nil {
			t.Errorf("%s: reported: %s", addr, f.Message)
		}
	}
	for _, n := range active(rep, RuleNotEvaluated) {
		if strings.Contains(n.Message, "on by default") {
			t.Errorf("%s is evaluated, yet noted: %s", n.Address, n.Message)
		}
	}
}
