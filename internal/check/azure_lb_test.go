package check

import (
	"strings"
	"testing"
)

// TestAzureLBNATPoolAndUnknownPort checks that a scale set reached through
// a public load balancer's NAT pool is reached on the pool's backend port,
// and that a rule whose backend port is not known statically forwards
// every port, unproven, rather than none.
func TestAzureLBNATPoolAndUnknownPort(t *testing.T) {
	src := readFixture(t, "testdata/azure/scale-set/main.tf")
	const lb = `
resource "azurerm_public_ip" "lb" {
  name              = "lb"
  allocation_method = "Static"
}
resource "azurerm_lb" "lb" {
  name = "lb"
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.lb.id
  }
}
resource "azurerm_lb_nat_pool" "rdp" {
  name                           = "rdp"
  loadbalancer_id                = azurerm_lb.lb.id
  protocol                       = "Tcp"
  frontend_port_start            = 50000
  frontend_port_end              = 50099
  backend_port                   = 3389
  frontend_ip_configuration_name = "public"
}
`
	const private = "      subnet_id = azurerm_subnet.a.id\n    }\n  }\n}"
	s := edit(t, src, private, "      subnet_id = azurerm_subnet.a.id\n      load_balancer_inbound_nat_rules_ids = [azurerm_lb_nat_pool.rdp.id]\n    }\n  }\n}") + lb
	got := activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine_scale_set.private")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "3389 (RDP) is reachable") {
		t.Fatalf("want RDP through the NAT pool, got %+v", got)
	}

	s = edit(t, s, "  backend_port                   = 3389", "  backend_port                   = var.port")
	rep := checkSource(t, "variable \"port\" { type = number }\n"+s)
	got = activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine_scale_set.private")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "3389 (RDP) may be reachable") || !strings.Contains(got[0].Message, "a port not known statically") {
		t.Fatalf("want RDP read as forwarded, not proven, got %+v", got)
	}
	wantNotes(t, rep, "backend port not known statically: read as forwarding every port")
}

// TestDescribeInternetBut checks that the internet less a few ranges (a
// network numbered from public addresses keeps them to its local route)
// is named as such, not as dozens of ranges.
func TestDescribeInternetBut(t *testing.T) {
	src := readFixture(t, "testdata/azure/load-balancer/main.tf")
	s := edit(t, src, `address_space = ["10.90.0.0/16"]`, `address_space = ["26.0.0.0/16"]`)
	s = edit(t, s, `address_prefixes     = ["10.90.1.0/24"]`, `address_prefixes     = ["26.0.1.0/24"]`)
	got := activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm[0]")
	if len(got) != 1 || !strings.HasSuffix(got[0].Message, "(every IPv4 internet address but 26.0.0.0/16)") {
		t.Fatalf("want SSH from every IPv4 internet address but the network's own, got %+v", got)
	}
}

// TestAzureLBPoolAddress checks that a machine a public load balancer's
// pool names by address (azurerm_lb_backend_address_pool_address) is
// reached on the pool's rules' ports, as one named by its interface is.
func TestAzureLBPoolAddress(t *testing.T) {
	src := readFixture(t, "testdata/azure/load-balancer/main.tf")
	s := edit(t, src, `resource "azurerm_network_interface_backend_address_pool_association" "vm" {
  count                   = 2
  network_interface_id    = azurerm_network_interface.vm[count.index].id
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.web.id
}`, `resource "azurerm_lb_backend_address_pool_address" "vm" {
  count                   = 2
  name                    = "vm-${count.index}"
  backend_address_pool_id = azurerm_lb_backend_address_pool.web.id
  virtual_network_id      = azurerm_virtual_network.net.id
  ip_address              = azurerm_network_interface.vm[count.index].private_ip_address
}`)
	s = edit(t, s, `  frontend_port                  = 80
  backend_port                   = 80`, `  frontend_port                  = 2222
  backend_port                   = 22`)
	got := activeOn(checkSource(t, s), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm[1]")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH) is reachable") {
		t.Fatalf("want SSH forwarded to the machine the pool names by address, got %+v", got)
	}
}

// TestAzureLBPoolUnknown: an interface put in a backend pool not known
// statically read as in no pool, so a machine a public balancer may
// forward SSH to read as reached from nowhere. The pool may be any of the
// project's public balancers': the machine may be reachable, and says so.
func TestAzureLBPoolUnknown(t *testing.T) {
	src := readFixture(t, "testdata/azure/load-balancer/main.tf")
	s := edit(t, src, `  backend_address_pool_id = azurerm_lb_backend_address_pool.web.id
}
resource "azurerm_network_interface_nat_rule_association"`, `  backend_address_pool_id = var.pool_id
}
resource "azurerm_network_interface_nat_rule_association"`)
	s = edit(t, s, `  frontend_port                  = 80
  backend_port                   = 80`, `  frontend_port                  = 2222
  backend_port                   = 22`)
	got := activeOn(checkSource(t, "variable \"pool_id\" { type = string }\n"+s), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm[1]")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH) may be reachable") ||
		!strings.Contains(got[0].Message, "a backend pool not known statically is assumed to be any of azurerm_lb_backend_address_pool.web") {
		t.Fatalf("want SSH read as forwarded through the pool, not proven, got %+v", got)
	}
}

// TestAzureLBRulePoolUnknown: a public balancer's rule whose backend pool
// is not known statically forwarded to no pool, so the machines in the
// balancer's pools read as not reached on its port. The pool may be any
// of the balancer's: they may be reachable on it, and say so.
func TestAzureLBRulePoolUnknown(t *testing.T) {
	src := readFixture(t, "testdata/azure/load-balancer/main.tf")
	s := edit(t, src, `  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.web.id]`, `  backend_address_pool_ids       = [var.pool_id]`)
	s = edit(t, s, `  frontend_port                  = 80
  backend_port                   = 80`, `  frontend_port                  = 2222
  backend_port                   = 22`)
	got := activeOn(checkSource(t, "variable \"pool_id\" { type = string }\n"+s), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm[1]")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH) may be reachable") ||
		!strings.Contains(got[0].Message, "azurerm_lb_rule.http's backend pool is not known statically: assumed to be azurerm_lb_backend_address_pool.web") {
		t.Fatalf("want SSH read as forwarded by the rule, not proven, got %+v", got)
	}
}

// TestAzureLBNATRuleUnknown: an interface associated with an inbound NAT
// rule not known statically read as the target of none, so a machine a
// public balancer may forward SSH to read as reached from nowhere. The
// rule may be any of the project's: the machine may be reachable.
func TestAzureLBNATRuleUnknown(t *testing.T) {
	src := readFixture(t, "testdata/azure/load-balancer/main.tf")
	s := edit(t, src, `  nat_rule_id           = azurerm_lb_nat_rule.ssh.id`, `  nat_rule_id           = var.nat_rule_id`)
	got := activeOn(checkSource(t, "variable \"nat_rule_id\" { type = string }\n"+s), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm[0]")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH) may be reachable") ||
		!strings.Contains(got[0].Message, "an inbound NAT rule not known statically is assumed to be any of azurerm_lb_nat_rule.ssh") {
		t.Fatalf("want SSH read as forwarded by the NAT rule, not proven, got %+v", got)
	}
}

// TestAzureLBNATRuleToPool: an inbound NAT rule that names a backend pool
// (backend_address_pool_id, with frontend_port_start and frontend_port_end)
// forwards a frontend port to each member of the pool, as Azure maps it;
// the machines of the pool were read as reached by no NAT rule, so RDP
// open to the internet through it was not reported.
func TestAzureLBNATRuleToPool(t *testing.T) {
	const src = `
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.60.0.0/16"]
}
resource "azurerm_subnet" "desk" {
  name                 = "desk"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.60.1.0/24"]
}
resource "azurerm_public_ip" "lb" {
  name              = "lb"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_lb" "desk" {
  name = "desk"
  sku  = "Standard"
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.lb.id
  }
}
resource "azurerm_lb_backend_address_pool" "desk" {
  name            = "desk"
  loadbalancer_id = azurerm_lb.desk.id
}
resource "azurerm_lb_nat_rule" "rdp" {
  name                           = "rdp"
  loadbalancer_id                = azurerm_lb.desk.id
  protocol                       = "Tcp"
  frontend_port_start            = 4000
  frontend_port_end              = 4009
  backend_port                   = 3389
  frontend_ip_configuration_name = "public"
  backend_address_pool_id        = azurerm_lb_backend_address_pool.desk.id
}
resource "azurerm_network_security_group" "desk" {
  name = "desk"
  security_rule {
    name                       = "rdp"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "3389"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "desk" {
  subnet_id                 = azurerm_subnet.desk.id
  network_security_group_id = azurerm_network_security_group.desk.id
}
resource "azurerm_network_interface" "desk" {
  name = "desk"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.desk.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface_backend_address_pool_association" "desk" {
  network_interface_id    = azurerm_network_interface.desk.id
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.desk.id
}
resource "azurerm_windows_virtual_machine" "desk" {
  name                  = "desk"
  network_interface_ids = [azurerm_network_interface.desk.id]
}
`
	rep := checkSource(t, src)
	got := activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.desk")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "3389 (RDP) is reachable") || !strings.Contains(pathText(got[0].Path), "azurerm_lb.desk") {
		t.Fatalf("want RDP through the NAT rule to the pool, got %+v", got)
	}
	if got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.desk"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("the NSG's open RDP reaches the machine: %+v", got)
	}
	// The machine has no public IP: the fix names the NAT rule that
	// publishes the port.
	if fix := got[0].Fix; !strings.Contains(fix, "inbound NAT rule azurerm_lb_nat_rule.rdp") || strings.Contains(fix, "public IP") {
		t.Errorf("fix %q does not name the NAT rule that publishes RDP", fix)
	}

	// A pool not known statically may be any of the balancer's.
	s := edit(t, src, "  backend_address_pool_id        = azurerm_lb_backend_address_pool.desk.id\n}", "  backend_address_pool_id        = var.pool\n}")
	got = activeOn(checkSource(t, "variable \"pool\" { type = string }\n"+s), RuleAzExposedPort, "azurerm_windows_virtual_machine.desk")
	if len(got) != 1 || !strings.Contains(got[0].Message, "3389 (RDP) may be reachable") || !strings.Contains(got[0].Message, "backend pool is not known statically") {
		t.Fatalf("want RDP read as forwarded, not proven, got %+v", got)
	}
}
