package check

import (
	"strings"
	"testing"
)

// frontDoorPLS is a machine whose Elasticsearch port an internal load
// balancer forwards from its frontend's 443, the balancer fronted by a
// private link service that an Azure Front Door origin reaches (the shape
// of the azurerm provider's Front Door private link example), its route
// forwarding over HTTPS.
const frontDoorPLS = `resource "azurerm_virtual_network" "net" {
  name                = "net"
  resource_group_name = "rg"
  location            = "westeurope"
  address_space       = ["10.5.0.0/16"]
}
resource "azurerm_subnet" "app" {
  name                 = "app"
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.5.1.0/24"]
  private_link_service_network_policies_enabled = false
}
resource "azurerm_network_security_group" "app" {
  name                = "app"
  resource_group_name = "rg"
  location            = "westeurope"
  security_rule {
    name                       = "search-vnet"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "9200"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}
resource "azurerm_lb" "ilb" {
  name                = "ilb"
  sku                 = "Standard"
  location            = "westeurope"
  resource_group_name = "rg"
  frontend_ip_configuration {
    name                          = "internal"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_lb_backend_address_pool" "vms" {
  name            = "vms"
  loadbalancer_id = azurerm_lb.ilb.id
}
resource "azurerm_lb_rule" "ssh" {
  name                           = "ssh"
  loadbalancer_id                = azurerm_lb.ilb.id
  protocol                       = "Tcp"
  frontend_port                  = 443
  backend_port                   = 9200
  frontend_ip_configuration_name = "internal"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.vms.id]
}
resource "azurerm_network_interface" "vm" {
  name                = "vm"
  location            = "westeurope"
  resource_group_name = "rg"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface_backend_address_pool_association" "vm" {
  network_interface_id    = azurerm_network_interface.vm.id
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.vms.id
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  resource_group_name   = "rg"
  location              = "westeurope"
  size                  = "Standard_B1s"
  admin_username        = "azureuser"
  network_interface_ids = [azurerm_network_interface.vm.id]
  admin_ssh_key {
    username   = "azureuser"
    public_key = "ssh-ed25519 AAAA"
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
    version   = "latest"
  }
}
resource "azurerm_private_link_service" "pls" {
  name                                        = "pls"
  resource_group_name                         = "rg"
  location                                    = "westeurope"
  load_balancer_frontend_ip_configuration_ids = [azurerm_lb.ilb.frontend_ip_configuration[0].id]
  nat_ip_configuration {
    name      = "primary"
    subnet_id = azurerm_subnet.app.id
    primary   = true
  }
}
resource "azurerm_cdn_frontdoor_profile" "fd" {
  name                = "fd"
  resource_group_name = "rg"
  sku_name            = "Premium_AzureFrontDoor"
}
resource "azurerm_cdn_frontdoor_endpoint" "fd" {
  name                     = "fd"
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.fd.id
}
resource "azurerm_cdn_frontdoor_origin_group" "fd" {
  name                     = "fd"
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.fd.id
  load_balancing {}
}
resource "azurerm_cdn_frontdoor_origin" "app" {
  name                           = "app"
  cdn_frontdoor_origin_group_id  = azurerm_cdn_frontdoor_origin_group.fd.id
  certificate_name_check_enabled = true
  host_name                      = "app.example.com"
  private_link {
    request_message        = "fd"
    location               = "westeurope"
    private_link_target_id = azurerm_private_link_service.pls.id
  }
}
resource "azurerm_cdn_frontdoor_route" "app" {
  name                          = "app"
  cdn_frontdoor_endpoint_id     = azurerm_cdn_frontdoor_endpoint.fd.id
  cdn_frontdoor_origin_group_id = azurerm_cdn_frontdoor_origin_group.fd.id
  cdn_frontdoor_origin_ids      = [azurerm_cdn_frontdoor_origin.app.id]
  supported_protocols           = ["Http", "Https"]
  patterns_to_match             = ["/*"]
  forwarding_protocol           = "HttpsOnly"
}
`

// TestFrontDoorPrivateLinkOrigin checks that a Front Door origin reached
// through a private link service publishes what the internal load
// balancer behind it forwards to: the internet reaches the machine's 9200
// through Front Door, where before the machine was read as reached from
// its own subnet alone.
func TestFrontDoorPrivateLinkOrigin(t *testing.T) {
	rep := checkSource(t, frontDoorPLS)
	fs := activeOn(rep, "AZ-NET-002", "azurerm_linux_virtual_machine.vm")
	if len(fs) != 1 {
		t.Fatalf("AZ-NET-002 on the machine: %+v", rep.Findings)
	}
	f := fs[0]
	if f.Severity != Critical || !strings.Contains(f.Message, "tcp 9200 (Elasticsearch) is reachable from the internet") {
		t.Errorf("finding: %s %s", f.Severity, f.Message)
	}
	var path []string
	for _, h := range f.Path {
		path = append(path, h.Addr)
	}
	want := "azurerm_cdn_frontdoor_origin.app azurerm_private_link_service.pls azurerm_lb.ilb"
	if !strings.Contains(strings.Join(path, " "), want) {
		t.Errorf("path %v, want it through %s", path, want)
	}
	if !strings.Contains(f.Fix, "Front Door origins that reach it through a private link service (azurerm_cdn_frontdoor_origin.app)") {
		t.Errorf("fix: %s", f.Fix)
	}

	// Front Door sends what it forwards over HTTP to the origin's
	// http_port (80), which the balancer does not forward.
	s := edit(t, frontDoorPLS, `forwarding_protocol           = "HttpsOnly"`, `forwarding_protocol           = "HttpOnly"`)
	if fs := activeOn(checkSource(t, s), "AZ-NET-002", "azurerm_linux_virtual_machine.vm"); len(fs) != 0 {
		t.Errorf("HTTP to port 80, which no rule forwards: %+v", fs)
	}
	// An origin group no route sends to takes no traffic.
	s = edit(t, frontDoorPLS, `  cdn_frontdoor_origin_group_id = azurerm_cdn_frontdoor_origin_group.fd.id
  cdn_frontdoor_origin_ids`, `  cdn_frontdoor_origin_group_id = azurerm_cdn_frontdoor_origin_group.other.id
  cdn_frontdoor_origin_ids`) + `
resource "azurerm_cdn_frontdoor_origin_group" "other" {
  name                     = "other"
  cdn_frontdoor_profile_id = azurerm_cdn_frontdoor_profile.fd.id
  load_balancing {}
}
`
	if fs := activeOn(checkSource(t, s), "AZ-NET-002", "azurerm_linux_virtual_machine.vm"); len(fs) != 0 {
		t.Errorf("origin group no route names: %+v", fs)
	}
	// An origin whose https_port is the one the balancer forwards.
	s = edit(t, frontDoorPLS, `  frontend_port                  = 443`, `  frontend_port                  = 8443`)
	if fs := activeOn(checkSource(t, s), "AZ-NET-002", "azurerm_linux_virtual_machine.vm"); len(fs) != 0 {
		t.Errorf("HTTPS to 443, which the balancer does not forward: %+v", fs)
	}
	s = edit(t, s, `  certificate_name_check_enabled = true`, `  certificate_name_check_enabled = true
  https_port                     = 8443`)
	if fs := activeOn(checkSource(t, s), "AZ-NET-002", "azurerm_linux_virtual_machine.vm"); len(fs) != 1 {
		t.Errorf("HTTPS to https_port 8443, which the balancer forwards: %+v", fs)
	}
}

// TestFrontDoorPrivateLinkUnfollowed checks that a Front Door origin whose
// private link reaches an application gateway, or a private link service
// outside the scanned code, is noted as not evaluated, where it was passed
// over in silence.
func TestFrontDoorPrivateLinkUnfollowed(t *testing.T) {
	for target, want := range map[string]string{
		`"/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/privateLinkServices/pls"`: "which is not in the scanned code",
		`"/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/applicationGateways/agw"`: "whose private listeners this reader does not follow",
		`"/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/sites/app"`:                   "",
	} {
		s := edit(t, frontDoorPLS, `private_link_target_id = azurerm_private_link_service.pls.id`, `private_link_target_id = `+target)
		var got []string
		for _, n := range activeOn(checkSource(t, s), RuleNotEvaluated, "azurerm_cdn_frontdoor_origin.app") {
			got = append(got, n.Message)
		}
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s: notes %q", target, got)
		case want != "" && (len(got) != 1 || !strings.Contains(got[0], want)):
			t.Errorf("%s: notes %q, want one saying %q", target, got, want)
		}
	}
}

// TestPrivateEndpointToPrivateLinkServiceNoted checks that a private
// endpoint connected to a private link service, which lets its network
// reach what the service's internal load balancer forwards to, is noted
// as not evaluated, where it was passed over in silence.
func TestPrivateEndpointToPrivateLinkServiceNoted(t *testing.T) {
	i := strings.Index(frontDoorPLS, `resource "azurerm_cdn_frontdoor_profile"`)
	rep := checkSource(t, frontDoorPLS[:i]+`resource "azurerm_virtual_network" "consumer" {
  name                = "consumer"
  resource_group_name = "rg"
  location            = "westeurope"
  address_space       = ["10.9.0.0/16"]
}
resource "azurerm_subnet" "consumer" {
  name                 = "consumer"
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.consumer.name
  address_prefixes     = ["10.9.1.0/24"]
}
resource "azurerm_private_endpoint" "pls" {
  name                = "pe"
  location            = "westeurope"
  resource_group_name = "rg"
  subnet_id           = azurerm_subnet.consumer.id
  private_service_connection {
    name                           = "pls"
    is_manual_connection           = false
    private_connection_resource_id = azurerm_private_link_service.pls.id
  }
}
`)
	got := activeOn(rep, RuleNotEvaluated, "azurerm_private_endpoint.pls")
	if len(got) != 1 || !strings.Contains(got[0].Message, "private link service azurerm_private_link_service.pls") {
		t.Errorf("notes on the private endpoint: %+v", got)
	}
}

// TestFrontDoorNoRouteNoted checks that a private link origin of a project
// that declares no Front Door route at all (the routes kept elsewhere) is
// noted as not followed, not passed over.
func TestFrontDoorNoRouteNoted(t *testing.T) {
	i := strings.Index(frontDoorPLS, `resource "azurerm_cdn_frontdoor_route" "app"`)
	rep := checkSource(t, frontDoorPLS[:i])
	got := activeOn(rep, RuleNotEvaluated, "azurerm_cdn_frontdoor_origin.app")
	if len(got) != 1 || !strings.Contains(got[0].Message, "no route of the scanned code sends requests to its origin group") {
		t.Errorf("notes on the origin: %+v", got)
	}
	if fs := activeOn(rep, "AZ-NET-002", "azurerm_linux_virtual_machine.vm"); len(fs) != 0 {
		t.Errorf("reached with no route: %+v", fs)
	}
}

// TestPrivateEndpointByAliasNoted checks that a private endpoint connected
// to a private link service by its alias (private_connection_resource_alias,
// which names only a private link service), the project's or another
// subscription's, is noted as the one connected by ID is; it was passed
// over, noted at most as a value the provider computes.
func TestPrivateEndpointByAliasNoted(t *testing.T) {
	i := strings.Index(frontDoorPLS, `resource "azurerm_cdn_frontdoor_profile"`)
	for alias, want := range map[string]string{
		"azurerm_private_link_service.pls.alias":                                             "private link service azurerm_private_link_service.pls",
		`"partner.0f7d9a3c-2b1e-4d5f-8a6b-1c2d3e4f5a6b.westeurope.azure.privatelinkservice"`: "private link service partner.0f7d9a3c-2b1e-4d5f-8a6b-1c2d3e4f5a6b.westeurope.azure.privatelinkservice",
	} {
		rep := checkSource(t, frontDoorPLS[:i]+`resource "azurerm_subnet" "consumer" {
  name                 = "consumer"
  resource_group_name  = "rg"
  virtual_network_name = "consumer"
  address_prefixes     = ["10.9.1.0/24"]
}
resource "azurerm_private_endpoint" "pls" {
  name                = "pe"
  location            = "westeurope"
  resource_group_name = "rg"
  subnet_id           = azurerm_subnet.consumer.id
  private_service_connection {
    name                              = "pls"
    is_manual_connection              = true
    request_message                   = "please"
    private_connection_resource_alias = `+alias+`
  }
}
`)
		found := false
		for _, f := range activeOn(rep, RuleNotEvaluated, "azurerm_private_endpoint.pls") {
			found = found || strings.Contains(f.Message, want) && strings.Contains(f.Message, "not evaluated")
		}
		if !found {
			t.Errorf("alias %s: notes %+v, want one naming %s", alias, activeOn(rep, RuleNotEvaluated, "azurerm_private_endpoint.pls"), want)
		}
	}
}
