package check

import (
	"context"
	"strings"
	"testing"
)

// azureVPN is a hub network with a VPN gateway (site-to-site to an
// on-premises network, point-to-site clients) and a machine without an
// NSG, and a spoke peered to it that uses the hub's gateway, whose
// machine's NSG has only Azure's default rules.
const azureVPN = `
resource "azurerm_virtual_network" "hub" {
  name          = "hub"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "gateway" {
  name                 = "GatewaySubnet"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.255.0/27"]
}
resource "azurerm_subnet" "hub_app" {
  name                 = "app"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_public_ip" "gateway" {
  name              = "gateway"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_virtual_network_gateway" "hub" {
  name     = "hub"
  type     = "Vpn"
  vpn_type = "RouteBased"
  sku      = "VpnGw1"
  ip_configuration {
    name                 = "gw"
    public_ip_address_id = azurerm_public_ip.gateway.id
    subnet_id            = azurerm_subnet.gateway.id
  }
  vpn_client_configuration {
    address_space = ["172.16.8.0/24"]
  }
}
resource "azurerm_local_network_gateway" "office" {
  name            = "office"
  gateway_address = "198.51.100.7"
  address_space   = ["192.168.0.0/16"]
}
resource "azurerm_virtual_network_gateway_connection" "office" {
  name                       = "office"
  type                       = "IPsec"
  virtual_network_gateway_id = azurerm_virtual_network_gateway.hub.id
  local_network_gateway_id   = azurerm_local_network_gateway.office.id
  shared_key                 = "not-a-real-key"
}
resource "azurerm_network_interface" "hub" {
  name = "hub"
  ip_configuration {
    name      = "ip"
    subnet_id = azurerm_subnet.hub_app.id
  }
}
resource "azurerm_linux_virtual_machine" "hub" {
  name                  = "hub"
  network_interface_ids = [azurerm_network_interface.hub.id]
}

resource "azurerm_virtual_network" "spoke" {
  name          = "spoke"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_subnet" "spoke_app" {
  name                 = "app"
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = ["10.1.1.0/24"]
}
resource "azurerm_virtual_network_peering" "hub_spoke" {
  name                      = "hub-spoke"
  virtual_network_name      = azurerm_virtual_network.hub.name
  remote_virtual_network_id = azurerm_virtual_network.spoke.id
  allow_gateway_transit     = true
}
resource "azurerm_virtual_network_peering" "spoke_hub" {
  name                      = "spoke-hub"
  virtual_network_name      = azurerm_virtual_network.spoke.name
  remote_virtual_network_id = azurerm_virtual_network.hub.id
  use_remote_gateways       = true
}
resource "azurerm_network_security_group" "spoke" {
  name = "spoke"
}
resource "azurerm_subnet_network_security_group_association" "spoke" {
  subnet_id                 = azurerm_subnet.spoke_app.id
  network_security_group_id = azurerm_network_security_group.spoke.id
}
resource "azurerm_network_interface" "spoke" {
  name = "spoke"
  ip_configuration {
    name      = "ip"
    subnet_id = azurerm_subnet.spoke_app.id
  }
}
resource "azurerm_linux_virtual_machine" "spoke" {
  name                  = "spoke"
  network_interface_ids = [azurerm_network_interface.spoke.id]
}
`

// messages returns the findings' messages, for failures to show.
func messages(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Message)
	}
	return out
}

// lateralFrom returns the active AZ-NET-004 findings on addr whose
// message names from.
func lateralFrom(rep *Report, addr, from string) []Finding {
	var out []Finding
	for _, f := range activeOn(rep, RuleAzLateral, addr) {
		if strings.Contains(f.Message, from) {
			out = append(out, f)
		}
	}
	return out
}

// TestAzureVPNReach checks that the networks behind a virtual network
// gateway reach the hub and the spokes that use its gateway, subject to
// their NSGs (whose VirtualNetwork tag holds those networks, as Azure's
// does), graded as reach from an AWS VPN is.
func TestAzureVPNReach(t *testing.T) {
	const (
		hub    = "azurerm_linux_virtual_machine.hub"
		spoke  = "azurerm_linux_virtual_machine.spoke"
		office = "(192.168.0.0/16)"
		p2s    = "(172.16.8.0/24)"
	)
	rep := checkSource(t, azureVPN)
	for _, vm := range []string{hub, spoke} {
		for _, from := range []string{office, p2s} {
			got := lateralFrom(rep, vm, from)
			if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || !strings.Contains(got[0].Message, "azurerm_virtual_network_gateway.hub") {
				t.Errorf("%s: want one high %s on SSH from the VPN %s, got %q", vm, RuleAzLateral, from, messages(activeOn(rep, RuleAzLateral, vm)))
				continue
			}
			if p := pathLine(got[0].Path); !strings.Contains(p, "azurerm_virtual_network_gateway.hub") {
				t.Errorf("%s: path %q does not cross the gateway", vm, p)
			}
		}
	}
	// --reach lists the networks behind the gateway among the sources.
	acc, err := Reachability(context.Background(), Config{Paths: []string{writeProject(t, azureVPN)}}, spoke)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acc {
		found = found || a.Source == "VPN azurerm_virtual_network_gateway.hub (192.168.0.0/16)" && a.Port == 22
	}
	if !found {
		t.Errorf("--reach on %s does not list the office on SSH", spoke)
	}
	for _, n := range active(rep, RuleNotEvaluated) {
		if strings.Contains(n.Address, "virtual_network_gateway") {
			t.Errorf("the gateway is modelled, yet noted: %+v", n)
		}
	}

	t.Run("spoke without the remote gateway", func(t *testing.T) {
		rep := checkSource(t, strings.Replace(azureVPN, "use_remote_gateways       = true", "use_remote_gateways       = false", 1))
		if got := lateralFrom(rep, spoke, office); len(got) > 0 {
			t.Errorf("the spoke does not use the hub's gateway, yet is reached from the office: %q", messages(got))
		}
		if got := lateralFrom(rep, hub, office); len(got) != 1 {
			t.Errorf("the hub is still reached from the office: %q", messages(activeOn(rep, RuleAzLateral, hub)))
		}
	})
	t.Run("hub without gateway transit", func(t *testing.T) {
		// Azure refuses use_remote_gateways unless the hub's side allows
		// gateway transit: no route reaches the spoke.
		rep := checkSource(t, strings.Replace(azureVPN, "allow_gateway_transit     = true", "allow_gateway_transit     = false", 1))
		if got := lateralFrom(rep, spoke, office); len(got) > 0 {
			t.Errorf("the hub allows no gateway transit, yet the spoke is reached from the office: %q", messages(got))
		}
	})
	t.Run("NSG denies the office", func(t *testing.T) {
		rep := checkSource(t, azureVPN+`
resource "azurerm_network_security_rule" "no_office" {
  name                        = "no-office"
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Deny"
  protocol                    = "*"
  source_port_range           = "*"
  destination_port_range      = "*"
  source_address_prefix       = "192.168.0.0/16"
  destination_address_prefix  = "*"
  network_security_group_name = azurerm_network_security_group.spoke.name
}
`)
		if got := lateralFrom(rep, spoke, office); len(got) > 0 {
			t.Errorf("the NSG denies the office, yet it reaches the spoke: %q", messages(got))
		}
		if got := lateralFrom(rep, spoke, p2s); len(got) != 1 {
			t.Errorf("the NSG still admits the VPN clients: %q", messages(activeOn(rep, RuleAzLateral, spoke)))
		}
	})
	t.Run("gateway subnet not known", func(t *testing.T) {
		src := "variable \"gateway_subnet\" { type = string }\n" + strings.Replace(azureVPN, "subnet_id            = azurerm_subnet.gateway.id", "subnet_id            = var.gateway_subnet", 1)
		rep := checkSource(t, src)
		if got := lateralFrom(rep, hub, office); len(got) > 0 {
			t.Errorf("the gateway is not placed, yet the office reaches the hub: %q", messages(got))
		}
		noted := false
		for _, n := range active(rep, RuleNotEvaluated) {
			noted = noted || n.Address == "azurerm_virtual_network_gateway.hub" && strings.Contains(n.Message, "not evaluated")
		}
		if !noted {
			t.Errorf("a gateway that cannot be placed is not noted")
		}
	})
	t.Run("no connection", func(t *testing.T) {
		src := strings.Replace(azureVPN, `resource "azurerm_virtual_network_gateway_connection" "office"`, `resource "azurerm_virtual_network_gateway_connection" "unused"`, 1)
		src = strings.Replace(src, "local_network_gateway_id   = azurerm_local_network_gateway.office.id", "local_network_gateway_id   = \"\"", 1)
		rep := checkSource(t, src)
		if got := lateralFrom(rep, hub, office); len(got) > 0 {
			t.Errorf("no connection joins the office, yet it reaches the hub: %q", messages(got))
		}
	})
}

// TestAzureVNetToVNetSpokes checks that a VNet-to-VNet connection carries
// the spokes that use the far gateway (gateway transit), as Azure's
// gateways advertise them: the machine at the near end is reached from
// the spoke's range, not only from the far hub's.
func TestAzureVNetToVNetSpokes(t *testing.T) {
	const src = `
resource "azurerm_virtual_network" "hub" {
  name          = "hub"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "hub_gateway" {
  name                 = "GatewaySubnet"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.255.0/27"]
}
resource "azurerm_virtual_network_gateway" "hub" {
  name     = "hub"
  type     = "Vpn"
  vpn_type = "RouteBased"
  sku      = "VpnGw1"
  ip_configuration {
    name      = "gw"
    subnet_id = azurerm_subnet.hub_gateway.id
  }
}
resource "azurerm_virtual_network" "spoke" {
  name          = "spoke"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_virtual_network_peering" "hub_spoke" {
  name                      = "hub-spoke"
  virtual_network_name      = azurerm_virtual_network.hub.name
  remote_virtual_network_id = azurerm_virtual_network.spoke.id
  allow_gateway_transit     = true
}
resource "azurerm_virtual_network_peering" "spoke_hub" {
  name                      = "spoke-hub"
  virtual_network_name      = azurerm_virtual_network.spoke.name
  remote_virtual_network_id = azurerm_virtual_network.hub.id
  use_remote_gateways       = true
}

resource "azurerm_virtual_network" "site" {
  name          = "site"
  address_space = ["192.168.0.0/16"]
}
resource "azurerm_subnet" "site_gateway" {
  name                 = "GatewaySubnet"
  virtual_network_name = azurerm_virtual_network.site.name
  address_prefixes     = ["192.168.255.0/27"]
}
resource "azurerm_subnet" "site_app" {
  name                 = "app"
  virtual_network_name = azurerm_virtual_network.site.name
  address_prefixes     = ["192.168.1.0/24"]
}
resource "azurerm_virtual_network_gateway" "site" {
  name     = "site"
  type     = "Vpn"
  vpn_type = "RouteBased"
  sku      = "VpnGw1"
  ip_configuration {
    name      = "gw"
    subnet_id = azurerm_subnet.site_gateway.id
  }
}
resource "azurerm_virtual_network_gateway_connection" "site_hub" {
  name                            = "site-hub"
  type                            = "Vnet2Vnet"
  virtual_network_gateway_id      = azurerm_virtual_network_gateway.site.id
  peer_virtual_network_gateway_id = azurerm_virtual_network_gateway.hub.id
  shared_key                      = "not-a-real-key"
}
resource "azurerm_network_interface" "site" {
  name = "site"
  ip_configuration {
    name      = "ip"
    subnet_id = azurerm_subnet.site_app.id
  }
}
resource "azurerm_linux_virtual_machine" "site" {
  name                  = "site"
  network_interface_ids = [azurerm_network_interface.site.id]
}
`
	const site = "azurerm_linux_virtual_machine.site"
	rep := checkSource(t, src)
	for _, from := range []string{"(10.0.0.0/16)", "(10.1.0.0/16)"} {
		if got := lateralFrom(rep, site, from); len(got) != 1 || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
			t.Errorf("want one %s on SSH from the VPN %s, got %q", RuleAzLateral, from, messages(activeOn(rep, RuleAzLateral, site)))
		}
	}
	t.Run("spoke without the remote gateway", func(t *testing.T) {
		rep := checkSource(t, strings.Replace(src, "use_remote_gateways       = true", "use_remote_gateways       = false", 1))
		if got := lateralFrom(rep, site, "(10.1.0.0/16)"); len(got) > 0 {
			t.Errorf("the spoke does not use the hub's gateway, yet reaches the far site: %q", messages(got))
		}
	})
}
