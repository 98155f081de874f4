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
