package check

import (
	"os"
	"strings"
	"testing"
)

// readFixture returns the text of a fixture file.
func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// edit returns src with old replaced by new, failing when src lacks old.
func edit(t *testing.T, src, old, new string) string {
	t.Helper()
	if !strings.Contains(src, old) {
		t.Fatalf("fixture lacks %q", old)
	}
	return strings.Replace(src, old, new, 1)
}

func pathText(hops []Hop) string {
	var parts []string
	for _, h := range hops {
		parts = append(parts, h.String())
	}
	return strings.Join(parts, " → ")
}

// TestAzureFirewallDNAT checks that a machine without a public IP that an
// Azure Firewall DNAT rule publishes is reached from the rule's sources on
// the translated port, through the firewall, its rule and the machine's
// NSG (which sees the firewall's subnet, not the client): a classic rule
// collection and a firewall policy's NAT rule collection alike.
func TestAzureFirewallDNAT(t *testing.T) {
	const dir = "testdata/azure/firewall-dnat"
	rep := run(t, dir)
	jump := activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.jump")
	if len(jump) != 1 || jump[0].Severity != Critical || !strings.Contains(jump[0].Message, "tcp 3389 (RDP) is reachable from the internet (every IPv4 internet address)") {
		t.Fatalf("jump: want one critical %s for RDP from every IPv4 address, got %+v", RuleAzExposedPort, jump)
	}
	p := pathText(jump[0].Path)
	for _, want := range []string{"azurerm_firewall.hub", "DNAT rule inbound/rdp-jump", "10.1.1.4:3389", "azurerm_network_security_group.workload: inbound rule 100 allows tcp 3389 from 10.0.1.0/26"} {
		if !strings.Contains(p, want) {
			t.Errorf("jump path lacks %q: %s", want, p)
		}
	}
	app := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
	if len(app) != 1 || app[0].Severity != Medium || !strings.Contains(app[0].Message, "tcp 22 (SSH) is reachable from the internet (203.0.113.0/24)") ||
		!strings.Contains(pathText(app[0].Path), "DNAT rule office/ssh-app") {
		t.Fatalf("app: want one medium %s for SSH from 203.0.113.0/24 through office/ssh-app, got %+v", RuleAzExposedPort, app)
	}
	// Neither machine has a public IP: the fix names the DNAT rules.
	for _, f := range []Finding{jump[0], app[0]} {
		if !strings.Contains(f.Fix, "DNAT") || !strings.Contains(f.Fix, "azurerm_firewall.hub") || strings.Contains(f.Fix, "public IP") {
			t.Errorf("%s: fix %q does not name the firewall's DNAT rule that publishes the port", f.Address, f.Fix)
		}
	}
	for _, vm := range []string{"azurerm_windows_virtual_machine.jump", "azurerm_linux_virtual_machine.app"} {
		if got := activeOn(rep, RuleAzInternetFacing, vm); len(got) != 0 {
			t.Errorf("%s is behind the firewall, not internet-facing itself: %+v", vm, got)
		}
	}
	m := model(t, dir)
	if r := m.Reach(m.Internet(), endpoint(t, m, "azurerm_linux_virtual_machine.app"), "tcp", 3389); r.Reachable {
		t.Errorf("no rule translates to the app machine's RDP: %s", pathText(r.Path))
	}

	src := readFixture(t, dir+"/main.tf")
	t.Run("NSG denies the firewall", func(t *testing.T) {
		rep := checkSource(t, edit(t, src, `access                     = "Allow"`, `access                     = "Deny"`))
		if got := active(rep, RuleAzExposedPort); len(got) != 0 {
			t.Fatalf("the NSG denies the firewall's subnet: %+v", got)
		}
	})
	t.Run("source an address range", func(t *testing.T) {
		// A firewall takes first-last ranges: the range, not every address.
		rep := checkSource(t, edit(t, src, `source_addresses    = ["203.0.113.0/24"]`, `source_addresses    = ["203.0.113.0-203.0.113.255"]`))
		app := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(app) != 1 || app[0].Severity != Medium || !strings.Contains(app[0].Message, "tcp 22 (SSH) is reachable from the internet (203.0.113.0/24)") {
			t.Errorf("app: want one medium %s for SSH from 203.0.113.0/24, got %+v", RuleAzExposedPort, app)
		}
		if got := active(rep, RuleRejected); len(got) != 0 {
			t.Errorf("a range is not rejected: %+v", got)
		}
	})
	t.Run("translated address unknown", func(t *testing.T) {
		s := edit(t, src, `translated_address  = "10.1.1.5"`, `translated_address  = var.backend`)
		rep := checkSource(t, "variable \"backend\" { type = string }\n"+s)
		for _, vm := range []string{"azurerm_windows_virtual_machine.jump", "azurerm_linux_virtual_machine.app"} {
			var ssh []Finding
			for _, f := range activeOn(rep, RuleAzExposedPort, vm) {
				if strings.Contains(f.Message, "22 (SSH)") {
					ssh = append(ssh, f)
				}
			}
			if len(ssh) != 1 || ssh[0].Severity != Medium || !strings.Contains(ssh[0].Message, "may be reachable") || !strings.Contains(ssh[0].Message, "translated address not known statically") {
				t.Errorf("%s: want SSH read as published, not proven, got %+v", vm, ssh)
			}
		}
	})
	dynamicApp := func(t *testing.T, s string) string {
		t.Helper()
		return edit(t, s, "private_ip_address_allocation = \"Static\"\n    private_ip_address            = \"10.1.1.5\"", `private_ip_address_allocation = "Dynamic"`)
	}
	t.Run("rules not known statically", func(t *testing.T) {
		s := edit(t, src, `  nat_rule_collection {
    name     = "office"`, `  dynamic "nat_rule_collection" {
    for_each = var.collections
    content {
      name     = nat_rule_collection.value.name
      priority = 100
      action   = "Dnat"
      dynamic "rule" {
        for_each = nat_rule_collection.value.rules
        content {
          name                = rule.value.name
          protocols           = ["TCP"]
          source_addresses    = rule.value.sources
          destination_address = azurerm_public_ip.firewall.ip_address
          destination_ports   = rule.value.ports
          translated_address  = rule.value.to
          translated_port     = rule.value.port
        }
      }
    }
  }
  nat_rule_collection {
    name     = "office"`)
		rep := checkSource(t, "variable \"collections\" { type = any }\n"+s)
		var found bool
		for _, f := range activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.jump") {
			found = found || strings.Contains(f.Message, "may be reachable") && strings.Contains(f.Message, "22 (SSH)") && strings.Contains(f.Message, "not known statically")
		}
		if !found {
			t.Fatalf("rules not known statically may publish any machine on any port: %+v", activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.jump"))
		}
	})
	t.Run("translated address of an interface", func(t *testing.T) {
		s := edit(t, dynamicApp(t, src), `translated_address  = "10.1.1.5"`, `translated_address  = azurerm_network_interface.app.private_ip_address`)
		rep := checkSource(t, s)
		app := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(app) != 1 || app[0].Severity != Medium || !strings.Contains(app[0].Message, "tcp 22 (SSH) is reachable from the internet (203.0.113.0/24)") {
			t.Fatalf("app: want SSH through the rule, proven, got %+v", app)
		}
		for _, f := range activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.jump") {
			if strings.Contains(f.Message, "22 (SSH)") {
				t.Errorf("the rule translates to the app machine's interface only: %+v", f)
			}
		}
	})
	t.Run("internal load balancer", func(t *testing.T) {
		s := edit(t, src, `translated_address  = "10.1.1.5"`, `translated_address  = azurerm_lb.internal.private_ip_address`)
		s = edit(t, s, `translated_port     = "22"`, `translated_port     = "2200"`) + `
resource "azurerm_lb" "internal" {
  name = "internal"
  sku  = "Standard"
  frontend_ip_configuration {
    name      = "private"
    subnet_id = azurerm_subnet.workload.id
  }
}
resource "azurerm_lb_backend_address_pool" "app" {
  name            = "app"
  loadbalancer_id = azurerm_lb.internal.id
}
resource "azurerm_lb_rule" "ssh" {
  name                           = "ssh"
  loadbalancer_id                = azurerm_lb.internal.id
  protocol                       = "Tcp"
  frontend_port                  = 2200
  backend_port                   = 22
  frontend_ip_configuration_name = "private"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.app.id]
}
resource "azurerm_network_interface_backend_address_pool_association" "app" {
  network_interface_id    = azurerm_network_interface.app.id
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.app.id
}
`
		rep := checkSource(t, s)
		app := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(app) != 1 || app[0].Severity != Medium || !strings.Contains(app[0].Message, "tcp 22 (SSH) is reachable from the internet (203.0.113.0/24)") ||
			!strings.Contains(pathText(app[0].Path), "internal load balancer rule ssh forwards tcp 2200 to its backend pool on tcp 22") {
			t.Fatalf("app: want SSH through the firewall and the internal balancer, proven, got %+v", app)
		}
		for _, f := range activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.jump") {
			if strings.Contains(f.Message, "22 (SSH)") {
				t.Errorf("the jump host is in no pool of the balancer: %+v", f)
			}
		}
	})
	// The interface's pool, or the rule's, not known statically: the
	// machine may be behind the balancer, which is not proven.
	t.Run("internal load balancer, pool not known statically", func(t *testing.T) {
		s := edit(t, src, `translated_address  = "10.1.1.5"`, `translated_address  = azurerm_lb.internal.private_ip_address`)
		s = edit(t, s, `translated_port     = "22"`, `translated_port     = "2200"`) + `
variable "pool_id" {
  type = string
}
resource "azurerm_lb" "internal" {
  name = "internal"
  sku  = "Standard"
  frontend_ip_configuration {
    name      = "private"
    subnet_id = azurerm_subnet.workload.id
  }
}
resource "azurerm_lb_backend_address_pool" "app" {
  name            = "app"
  loadbalancer_id = azurerm_lb.internal.id
}
resource "azurerm_lb_rule" "ssh" {
  name                           = "ssh"
  loadbalancer_id                = azurerm_lb.internal.id
  protocol                       = "Tcp"
  frontend_port                  = 2200
  backend_port                   = 22
  frontend_ip_configuration_name = "private"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.app.id]
}
resource "azurerm_network_interface_backend_address_pool_association" "app" {
  network_interface_id    = azurerm_network_interface.app.id
  ip_configuration_name   = "ip"
  backend_address_pool_id = var.pool_id
}
`
		app := activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(app) != 1 || !strings.Contains(app[0].Message, "tcp 22 (SSH) may be reachable") ||
			!strings.Contains(app[0].Message, "a backend pool not known statically is assumed to hold azurerm_linux_virtual_machine.app") {
			t.Fatalf("app: want SSH through the firewall and the internal balancer, not proven, got %+v", app)
		}
	})
	t.Run("NSG source an interface's address", func(t *testing.T) {
		s := edit(t, dynamicApp(t, src), `source_address_prefix      = "10.0.1.0/26"`, `source_address_prefix      = azurerm_network_interface.app.private_ip_address`)
		rep := checkSource(t, s)
		for _, n := range active(rep, RuleNotEvaluated) {
			if strings.Contains(n.Message, "service tag") {
				t.Errorf("an interface's address is no service tag: %s", n.Message)
			}
		}
		m := model(t, writeProject(t, s))
		var rules []NACLRule
		for _, n := range m.NACLs {
			if n.Addr == "azurerm_network_security_group.workload" {
				rules = n.Ingress
			}
		}
		if len(rules) == 0 || rules[0].CIDR.String() != "10.1.1.0/24" || !strings.Contains(rules[0].Assumed, "any address of its interface's subnets") {
			t.Fatalf("want the rule read as the interface's subnet, assumed, got %+v", rules)
		}
	})
	t.Run("translated FQDN", func(t *testing.T) {
		s := edit(t, src, `translated_address  = "10.1.1.5"`, `translated_fqdn     = "app.internal.example"`)
		got := activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(got) != 1 || !strings.Contains(got[0].Message, "FQDN app.internal.example is not resolved statically") {
			t.Fatalf("a translated FQDN may name any machine: %+v", got)
		}
	})
	t.Run("backend subnet elsewhere", func(t *testing.T) {
		s := edit(t, src, "    subnet_id                     = azurerm_subnet.workload.id\n    private_ip_address_allocation = \"Static\"\n    private_ip_address            = \"10.1.1.4\"",
			"    subnet_id                     = var.subnet\n    private_ip_address_allocation = \"Static\"\n    private_ip_address            = \"10.1.1.4\"")
		got := activeOn(checkSource(t, "variable \"subnet\" { type = string }\n"+s), RuleAzExposedPort, "azurerm_windows_virtual_machine.jump")
		if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "3389 (RDP) may be reachable") || !strings.Contains(got[0].Message, "subnet not in the scanned code") {
			t.Fatalf("a machine in a subnet the code does not show is read as reached through the rule, unproven: %+v", got)
		}
	})
	t.Run("dynamic address in the subnet", func(t *testing.T) {
		s := edit(t, src, `translated_address  = "10.1.1.5"`, `translated_address  = "10.1.1.9"`)
		got := activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(got) != 0 {
			t.Fatalf("no machine can hold 10.1.1.9 (both are static): %+v", got)
		}
		s = edit(t, s, "private_ip_address_allocation = \"Static\"\n    private_ip_address            = \"10.1.1.5\"", `private_ip_address_allocation = "Dynamic"`)
		got = activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine.app")
		if len(got) != 1 || !strings.Contains(got[0].Message, "translated address 10.1.1.9 is held statically by no interface in the project") {
			t.Fatalf("a machine with an address Azure assigns in 10.1.1.0/24 may hold 10.1.1.9: %+v", got)
		}
	})
}

// TestAzureApplicationGateway checks that a machine in an Application
// Gateway's backend pool is reached from the internet on the backend
// settings' port, through the public listener and from the gateway's
// subnet, and that an NSG on the gateway's subnet stops it.
func TestAzureApplicationGateway(t *testing.T) {
	const dir = "testdata/azure/application-gateway"
	m := model(t, dir)
	web := endpoint(t, m, "azurerm_linux_virtual_machine.web")
	r := m.Reach(m.Internet(), web, "tcp", 8080)
	p := pathText(r.Path)
	if !r.Reachable || len(r.Assumed) != 0 || !strings.Contains(p, "listener web (tcp 443) routes to backend pool web on tcp 8080") ||
		!strings.Contains(p, "azurerm_network_security_group.web: inbound rule 100 allows tcp 8080 from 10.2.0.0/24") {
		t.Fatalf("want a proven path through the gateway on 8080, got %v %s %v", r.Reachable, p, r.Assumed)
	}
	// Each hop is named once: the gateway, then its listener.
	if l := pathLine(r.Path); !strings.Contains(l, "azurerm_application_gateway.web → azurerm_application_gateway.web:web →") {
		t.Errorf("path %s: want the gateway and then its listener web", l)
	}
	if r := m.Reach(m.Internet(), web, "tcp", 22); r.Reachable {
		t.Errorf("the gateway forwards 8080 only: %s", pathText(r.Path))
	}
	if got := active(run(t, dir), RuleAzExposedPort); len(got) != 0 {
		t.Errorf("8080 is no admin port: %+v", got)
	}

	src := readFixture(t, dir+"/main.tf")
	t.Run("backend on SSH", func(t *testing.T) {
		rep := checkSource(t, edit(t, src, "port                  = 8080", "port                  = 22"))
		got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.web")
		if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(pathText(got[0].Path), "azurerm_application_gateway.web") {
			t.Fatalf("want SSH published by the gateway, got %+v", got)
		}
	})
	t.Run("routing rules not known statically", func(t *testing.T) {
		s := edit(t, src, `  request_routing_rule {
    name                       = "web"
    rule_type                  = "Basic"
    priority                   = 100
    http_listener_name         = "web"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }`, `  dynamic "request_routing_rule" {
    for_each = var.rules
    content {
      name                       = request_routing_rule.value.name
      rule_type                  = "Basic"
      priority                   = request_routing_rule.value.priority
      http_listener_name         = request_routing_rule.value.listener
      backend_address_pool_name  = request_routing_rule.value.pool
      backend_http_settings_name = request_routing_rule.value.settings
    }
  }`)
		m := model(t, writeProject(t, "variable \"rules\" { type = any }\n"+s))
		r := m.Reach(m.Internet(), endpoint(t, m, "azurerm_linux_virtual_machine.web"), "tcp", 8080)
		if !r.Reachable || len(r.Assumed) == 0 || !strings.Contains(strings.Join(r.Assumed, "; "), "request_routing_rule http_listener_name, backend_address_pool_name, backend_http_settings_name not known statically") {
			t.Fatalf("routing rules not known statically route the listener to every pool, unproven: %v %s %v", r.Reachable, pathText(r.Path), r.Assumed)
		}
	})
	t.Run("gateway subnet NSG", func(t *testing.T) {
		s := src + `
resource "azurerm_network_security_group" "gateway" {
  name = "gateway"
  security_rule {
    name                       = "office"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "198.51.100.0/24"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "gateway" {
  subnet_id                 = azurerm_subnet.gateway.id
  network_security_group_id = azurerm_network_security_group.gateway.id
}
`
		m := model(t, writeProject(t, s))
		r := m.Reach(m.Internet(), endpoint(t, m, "azurerm_linux_virtual_machine.web"), "tcp", 8080)
		if !r.Reachable || m.describe(r.From) != "198.51.100.0/24" {
			t.Fatalf("want 8080 from the office's range only, got %v from %v: %s", r.Reachable, r.From, pathText(r.Path))
		}
	})
}

// TestFirewallDNATFromPrivateClients checks that a DNAT rule whose sources
// hold no internet address publishes nothing to the internet and is not
// noted, and that a rule reaching no machine of the project is noted once,
// whatever its protocols.
func TestFirewallDNATFromPrivateClients(t *testing.T) {
	rep := run(t, "testdata/azure/firewall-dnat-private")
	var office, world int
	for _, f := range active(rep, RuleNotEvaluated) {
		switch {
		case strings.Contains(f.Message, "inbound/office"):
			office++
		case strings.Contains(f.Message, "inbound/world"):
			world++
		}
	}
	if office != 0 || world != 1 {
		t.Errorf("notes on the private clients' rule: %d, want none; on the world's: %d, want one: %+v", office, world, active(rep, RuleNotEvaluated))
	}
}
