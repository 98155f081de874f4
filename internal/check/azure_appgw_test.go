package check

import (
	"strings"
	"testing"
)

// appGateway is an Application Gateway with a public frontend "public", a
// private one "private", ports http (80) and https (443), an HTTPS listener
// "https" on the public frontend, and what body adds.
func appGateway(body string) string {
	return `
resource "azurerm_public_ip" "gw" {
  name                = "pip-gw"
  resource_group_name = "rg"
  location            = "westeurope"
  allocation_method   = "Static"
  sku                 = "Standard"
}
variable "listeners" {
  type = list(any)
}
resource "azurerm_application_gateway" "gw" {
  name                = "agw"
  resource_group_name = "rg"
  location            = "westeurope"
  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 1
  }
  gateway_ip_configuration {
    name      = "gw"
    subnet_id = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/agw"
  }
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.gw.id
  }
  frontend_ip_configuration {
    name                          = "private"
    subnet_id                     = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/agw"
    private_ip_address_allocation = "Dynamic"
  }
  frontend_port {
    name = "http"
    port = 80
  }
  frontend_port {
    name = "https"
    port = 443
  }
  backend_address_pool {
    name = "web"
  }
  backend_http_settings {
    name                  = "web"
    cookie_based_affinity = "Disabled"
    port                  = 80
    protocol              = "Http"
  }
  redirect_configuration {
    name                 = "to-https"
    redirect_type        = "Permanent"
    target_listener_name = "https"
  }
  redirect_configuration {
    name          = "to-http-url"
    redirect_type = "Permanent"
    target_url    = "http://www.example.com"
  }
  redirect_configuration {
    name          = "to-https-url"
    redirect_type = "Permanent"
    target_url    = "https://www.example.com"
  }
  http_listener {
    name                           = "https"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "https"
    protocol                       = "Https"
    ssl_certificate_name           = "web"
  }
  request_routing_rule {
    name                       = "https"
    priority                   = 1
    rule_type                  = "Basic"
    http_listener_name         = "https"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }
` + body + `
}
`
}

const httpListener = `
  http_listener {
    name                           = "http"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }
`

// TestAppGatewayPlainHTTP: an Application Gateway's HTTP listener on a
// public frontend that a routing rule serves, rather than redirects to
// HTTPS, is AZ-TLS-001; what is not known statically is read as serving
// HTTP and said so. No rule flagged it.
func TestAppGatewayPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // "" for no finding
	}{
		{"served", httpListener + `
  request_routing_rule {
    name                       = "http"
    priority                   = 2
    rule_type                  = "Basic"
    http_listener_name         = "http"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }`, "listener http on port 80 of a public frontend serves HTTP without redirecting to HTTPS"},
		{"redirected to the HTTPS listener", httpListener + `
  request_routing_rule {
    name                        = "http"
    priority                    = 2
    rule_type                   = "Basic"
    http_listener_name          = "http"
    redirect_configuration_name = "to-https"
  }`, ""},
		{"redirected to an https URL", httpListener + `
  request_routing_rule {
    name                        = "http"
    priority                    = 2
    rule_type                   = "Basic"
    http_listener_name          = "http"
    redirect_configuration_name = "to-https-url"
  }`, ""},
		{"redirected to an http URL", httpListener + `
  request_routing_rule {
    name                        = "http"
    priority                    = 2
    rule_type                   = "Basic"
    http_listener_name          = "http"
    redirect_configuration_name = "to-http-url"
  }`, "listener http on port 80 of a public frontend serves HTTP"},
		{"a path map that serves one path", httpListener + `
  url_path_map {
    name                                = "paths"
    default_redirect_configuration_name = "to-https"
    path_rule {
      name                       = "api"
      paths                      = ["/api/*"]
      backend_address_pool_name  = "web"
      backend_http_settings_name = "web"
    }
  }
  request_routing_rule {
    name               = "http"
    priority           = 2
    rule_type          = "PathBasedRouting"
    http_listener_name = "http"
    url_path_map_name  = "paths"
  }`, "listener http on port 80 of a public frontend serves HTTP"},
		{"a path map that redirects every path", httpListener + `
  url_path_map {
    name                                = "paths"
    default_redirect_configuration_name = "to-https"
    path_rule {
      name                        = "api"
      paths                       = ["/api/*"]
      redirect_configuration_name = "to-https"
    }
  }
  request_routing_rule {
    name               = "http"
    priority           = 2
    rule_type          = "PathBasedRouting"
    http_listener_name = "http"
    url_path_map_name  = "paths"
  }`, ""},
		{"on the private frontend", `
  http_listener {
    name                           = "http"
    frontend_ip_configuration_name = "private"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }
  request_routing_rule {
    name                       = "http"
    priority                   = 2
    rule_type                  = "Basic"
    http_listener_name         = "http"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }`, ""},
		{"named by no rule", httpListener, ""},
		{"listeners not known statically", `
  dynamic "http_listener" {
    for_each = var.listeners
    content {
      name                           = http_listener.value.name
      frontend_ip_configuration_name = "public"
      frontend_port_name             = "http"
      protocol                       = http_listener.value.protocol
    }
  }
  request_routing_rule {
    name                       = "other"
    priority                   = 2
    rule_type                  = "Basic"
    http_listener_name         = "other"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }`, "may serve HTTP without redirecting to HTTPS (its protocol is not known statically: read as Http; its name is not known statically"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, appGateway(tc.body)), RuleAzWeakTLS, "azurerm_application_gateway.gw")
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("want no finding, got %q", got[0].Message)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0].Message, tc.want)):
				t.Errorf("got %+v, want one saying %q", got, tc.want)
			}
		})
	}
}
