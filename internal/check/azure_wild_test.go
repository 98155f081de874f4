package check

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Shapes of Azure Terraform met in published projects, each under
// testdata/azure.

func sshFindings(rep *Report, addr string) []Finding {
	var out []Finding
	for _, f := range activeOn(rep, RuleAzExposedPort, addr) {
		if strings.Contains(f.Message, "tcp 22 (SSH)") {
			out = append(out, f)
		}
	}
	return out
}

// TestAzureLegacyInlineAttributes checks azurerm 1.x's subnet
// address_prefix and the NSGs named inside a subnet and a network
// interface, and that a flow log switched off records nothing.
func TestAzureLegacyInlineAttributes(t *testing.T) {
	const dir = "testdata/azure/legacy-inline"
	m := model(t, dir)
	s := m.subnets["azurerm_subnet.front"]
	if s == nil || s.CIDR.String() != "10.20.1.0/24" {
		t.Fatalf("subnet front: %+v, want range 10.20.1.0/24", s)
	}
	if s.NACL == nil || s.NACL.Addr != "azurerm_network_security_group.edge" {
		t.Fatalf("subnet front's NSG: %+v, want azurerm_network_security_group.edge", s.NACL)
	}
	e := endpoint(t, m, "azurerm_virtual_machine.host")
	if len(e.NSGs) != 1 || e.NSGs[0].Addr != "azurerm_network_security_group.host" {
		t.Fatalf("interface NSGs %+v, want azurerm_network_security_group.host", e.NSGs)
	}
	res := m.Reach(m.Internet(), e, "tcp", 3389)
	if res.Reachable {
		t.Fatalf("RDP reachable through the subnet's NSG: %s", pathLine(res.Path))
	}
	if last := res.Path[len(res.Path)-1]; last.Addr != "azurerm_network_security_group.edge" {
		t.Errorf("RDP stopped at %+v, want the subnet's NSG", last)
	}
	rep := run(t, dir)
	open := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.host")
	if len(open) != 1 || open[0].Severity != High {
		t.Errorf("%s on the interface's NSG: %+v, want one high (associated, no path)", RuleNSGWorldOpen, open)
	}
	if got := activeOn(rep, RuleNSGNoFlowLogs, "azurerm_network_security_group.edge"); len(got) != 1 {
		t.Errorf("%s on the NSG whose flow log is off: %+v, want one", RuleNSGNoFlowLogs, got)
	}
}

// TestAzureInterfaceWithoutNSG checks that the NSG of one network
// interface does not filter what reaches another of the same machine.
func TestAzureInterfaceWithoutNSG(t *testing.T) {
	rep := run(t, "testdata/azure/nic-without-nsg")
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.vm"); len(got) != 1 || got[0].Severity != Critical {
		t.Fatalf("SSH through the public interface without an NSG: %+v, want one critical", got)
	}
}

// TestAzureStandardPublicIP checks that a Standard SKU public IP without
// an NSG admits nothing from the internet, and a Basic one everything.
func TestAzureStandardPublicIP(t *testing.T) {
	rep := run(t, "testdata/azure/standard-ip")
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.basic"); len(got) != 1 {
		t.Errorf("Basic public IP without NSG: %+v, want SSH exposed", got)
	}
	for _, rule := range []string{RuleAzExposedPort, RuleAzInternetFacing} {
		if got := activeOn(rep, rule, "azurerm_linux_virtual_machine.standard"); len(got) > 0 {
			t.Errorf("Standard public IP without NSG: %s %+v, want none", rule, got)
		}
	}
}

// TestAzureNamesSharedAcrossTypes checks that a reference by name finds
// the resource of the type the attribute names, when resources of other
// types share the name.
func TestAzureNamesSharedAcrossTypes(t *testing.T) {
	const dir = "testdata/azure/same-names"
	m := model(t, dir)
	if s := m.subnets["azurerm_subnet.shop"]; s == nil || s.VPC == nil || s.VPC.Addr != "azurerm_virtual_network.shop" {
		t.Fatalf("subnet's network: %+v, want azurerm_virtual_network.shop", s)
	}
	rep := run(t, dir)
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.vm"); len(got) != 1 || got[0].Severity != Critical {
		t.Fatalf("SSH allowed by the rule named by NSG name: %+v, want one critical", got)
	}
}

// TestAzureScaleSets checks that scale sets are machines of the network
// model: their inline interfaces' subnets, NSGs and public IPs.
func TestAzureScaleSets(t *testing.T) {
	rep := run(t, "testdata/azure/scale-set")
	var rdp []Finding
	for _, f := range activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine_scale_set.public") {
		if strings.Contains(f.Message, "tcp 3389 (RDP)") {
			rdp = append(rdp, f)
		}
	}
	if len(rdp) != 1 || rdp[0].Severity != Critical {
		t.Errorf("RDP of the scale set with public IPs: %+v, want one critical", rdp)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine_scale_set.private"); len(got) > 0 {
		t.Errorf("scale set without public IPs: %+v, want none", got)
	}
	open := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.rdp")
	if len(open) != 1 || open[0].Severity != Critical {
		t.Errorf("%s: %+v, want one critical", RuleNSGWorldOpen, open)
	}
}

// TestAzureFirewallUnknownFailsClosed checks that a firewall rule whose
// addresses are not known statically is read as admitting everyone, and
// said so.
func TestAzureFirewallUnknownFailsClosed(t *testing.T) {
	rep := run(t, "testdata/azure/firewall-unknown")
	got := activeOn(rep, RuleAzFirewallOpen, "azurerm_mysql_flexible_server_firewall_rule.clients")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "not known statically") {
		t.Fatalf("%s: %+v, want one that says the range is assumed", RuleAzFirewallOpen, got)
	}
}

// TestAzureMySQLFlexibleRuleServer: a MySQL flexible server's firewall
// rule names its server by server_name (and resource_group_name), not
// server_id as the PostgreSQL one does; the server was read as "not in the
// scanned code", and a server with private access only (in a delegated
// subnet) was not seen to make its rules apply to nothing.
func TestAzureMySQLFlexibleRuleServer(t *testing.T) {
	src := `
resource "azurerm_mysql_flexible_server" "orders" {
  name                = "orders-db"
  resource_group_name = "rg-orders"
}
resource "azurerm_mysql_flexible_server_firewall_rule" "anyone" {
  name                = "anyone"
  resource_group_name = "rg-orders"
  server_name         = azurerm_mysql_flexible_server.orders.name
  start_ip_address    = "0.0.0.0"
  end_ip_address      = "255.255.255.255"
}
`
	got := activeOn(checkSource(t, src), RuleAzFirewallOpen, "azurerm_mysql_flexible_server_firewall_rule.anyone")
	if len(got) != 1 || !strings.HasSuffix(got[0].Message, "admits every internet address to azurerm_mysql_flexible_server.orders") {
		t.Fatalf("%s: %+v, want one naming the server", RuleAzFirewallOpen, got)
	}
	// Its parameters name it the same way.
	plain := src + `
resource "azurerm_mysql_flexible_server_configuration" "tls" {
  name                = "require_secure_transport"
  resource_group_name = "rg-orders"
  server_name         = azurerm_mysql_flexible_server.orders.name
  value               = "OFF"
}
`
	weak := activeOn(checkSource(t, plain), RuleAzWeakTLS, "azurerm_mysql_flexible_server_configuration.tls")
	if len(weak) != 1 || !strings.Contains(weak[0].Message, "clients of azurerm_mysql_flexible_server.orders connect without TLS") {
		t.Errorf("%s: %+v, want one naming the server", RuleAzWeakTLS, weak)
	}
	// A server in a delegated subnet (private access) has no public
	// endpoint: its firewall rules apply to nothing.
	private := strings.Replace(src, `resource_group_name = "rg-orders"
}`, `resource_group_name = "rg-orders"
  delegated_subnet_id = azurerm_subnet.db.id
}
resource "azurerm_subnet" "db" {
  name             = "db"
  address_prefixes = ["10.8.4.0/24"]
}`, 1)
	if got := activeOn(checkSource(t, private), RuleAzFirewallOpen, "azurerm_mysql_flexible_server_firewall_rule.anyone"); len(got) != 0 {
		t.Errorf("rule of a server in a delegated subnet: %+v, want none", got)
	}
}

// TestAzureIPv4AnyIsIPv4Only checks that an NSG rule from 0.0.0.0/0
// admits the IPv4 internet only, as Azure reads it.
func TestAzureIPv4AnyIsIPv4Only(t *testing.T) {
	src := azureBase + `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + nsgRule("ssh", 100, "Allow", "22", `"0.0.0.0/0"`)
	got := sshFindings(checkSource(t, src), "azurerm_linux_virtual_machine.vm")
	if len(got) != 1 || !strings.Contains(got[0].Message, "every IPv4 internet address") || strings.Contains(got[0].Message, "IPv6") {
		t.Fatalf("SSH from 0.0.0.0/0: %+v, want one finding naming the IPv4 internet only", got)
	}
}

// TestAzureUnknownPriorityFailsClosed checks that an allow whose priority
// is not known statically is read as deciding before a deny, and the
// finding says so.
func TestAzureUnknownPriorityFailsClosed(t *testing.T) {
	src := azureBase + `
variable "base" { type = number }
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + nsgRule("deny", 3000, "Deny", "*", `"Internet"`) + strings.Replace(nsgRule("ssh", 0, "Allow", "22", `"Internet"`), "priority                    = 0", "priority                    = var.base + 10", 1)
	var got []Finding
	for _, f := range activeOn(checkSource(t, src), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm") {
		if strings.Contains(f.Message, "22 (SSH)") {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("SSH allowed at an unknown priority before a deny at 3000: %+v, want one finding", got)
	}
	if !strings.Contains(got[0].Message, "priority not known statically") {
		t.Errorf("finding %+v does not say the priority was assumed", got[0])
	}
}

// TestAzurePlatformServiceTags checks that the tags only Microsoft sends
// from (GatewayManager, AzureLoadBalancer, ApiManagement, regional or not)
// admit no internet address, and
// that a finding resting on a tag read as every address says so.
func TestAzurePlatformServiceTags(t *testing.T) {
	rep := run(t, "testdata/azure/platform-tags")
	got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.gateway")
	if len(got) != 1 {
		t.Fatalf("%s: %+v, want one", RuleNSGWorldOpen, got)
	}
	msg := got[0].Message
	for _, p := range []string{"65200", "3443", "3444"} {
		if strings.Contains(msg, p) {
			t.Errorf("a platform tag's port %s read as open to the internet: %s", p, msg)
		}
	}
	if !strings.Contains(msg, "tcp 8080") || !strings.Contains(msg, `"AzureFrontDoor.Backend" is not modelled`) {
		t.Errorf("finding %q does not name 8080 and the tag it assumed", msg)
	}
}

// TestAzureLoadBalancerForwards checks that machines without public IPs
// are reached from the internet through a public load balancer, on the
// backend ports of its rules and of the NAT rules that name them only.
func TestAzureLoadBalancerForwards(t *testing.T) {
	const dir = "testdata/azure/load-balancer"
	m := model(t, dir)
	inet := m.Internet()
	for _, tc := range []struct {
		vm   string
		port int
		want bool
	}{
		{"azurerm_linux_virtual_machine.vm[0]", 22, true},
		{"azurerm_linux_virtual_machine.vm[0]", 80, true},
		{"azurerm_linux_virtual_machine.vm[0]", 3389, false},
		{"azurerm_linux_virtual_machine.vm[1]", 80, true},
		{"azurerm_linux_virtual_machine.vm[1]", 22, false},
	} {
		if res := m.Reach(inet, endpoint(t, m, tc.vm), "tcp", tc.port); res.Reachable != tc.want {
			t.Errorf("%s tcp %d: reachable %v, want %v (%s)", tc.vm, tc.port, res.Reachable, tc.want, pathLine(res.Path))
		}
	}
	rep := run(t, dir)
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.vm[0]"); len(got) != 1 {
		t.Errorf("SSH forwarded by the NAT rule: %+v, want one finding", got)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.vm[1]"); len(got) > 0 {
		t.Errorf("machine reached on 80 only: %+v, want no %s", got, RuleAzExposedPort)
	}
}

// TestAzureBalancerOnPath: the path to a machine the internet reaches
// through a public load balancer did not name the balancer: it read as if
// the machine had a public address of its own. The balancer is a hop,
// saying what it forwards, where it forwards: before the subnet.
func TestAzureBalancerOnPath(t *testing.T) {
	m := model(t, "testdata/azure/load-balancer")
	inet := m.Internet()
	for _, tc := range []struct {
		vm   string
		port int
		how  string
	}{
		{"azurerm_linux_virtual_machine.vm[0]", 22, "inbound NAT rule azurerm_lb_nat_rule.ssh"},
		{"azurerm_linux_virtual_machine.vm[1]", 80, "rule azurerm_lb_rule.http"},
	} {
		res := m.Reach(inet, endpoint(t, m, tc.vm), "tcp", tc.port)
		i := slices.IndexFunc(res.Path, func(h Hop) bool { return h.Kind == "lb" })
		if !res.Reachable || i < 0 || i+1 >= len(res.Path) || res.Path[i+1].Kind != "subnet" || res.Path[i].Addr != "azurerm_lb.web" ||
			!strings.Contains(res.Path[i].Detail, "forwards tcp "+strconv.Itoa(tc.port)) || !strings.Contains(res.Path[i].Detail, tc.how) {
			t.Errorf("%s tcp %d: path %+v, want the balancer forwarding the port, before the subnet", tc.vm, tc.port, res.Path)
		}
	}
}

// TestAzureBehindBalancerRules checks that a machine the internet reaches
// only through a public balancer's load-balancing rules is behind a load
// balancer, where AZ-NET-003's remedy puts it, and is not reported as
// internet-facing; one a NAT rule forwards a port to alone is, as with a
// public address of its own.
func TestAzureBehindBalancerRules(t *testing.T) {
	const dir = "testdata/azure/lb-rules-only"
	m := model(t, dir)
	inet := m.Internet()
	if res := m.Reach(inet, endpoint(t, m, "azurerm_linux_virtual_machine.web"), "tcp", 80); !res.Reachable {
		t.Errorf("web tcp 80 not reachable through the balancer's rule")
	}
	if res := m.Reach(inet, endpoint(t, m, "azurerm_linux_virtual_machine.ops"), "tcp", 443); !res.Reachable {
		t.Errorf("ops tcp 443 not reachable through the NAT rule")
	}
	rep := run(t, dir)
	if got := activeOn(rep, RuleAzInternetFacing, "azurerm_linux_virtual_machine.web"); len(got) > 0 {
		t.Errorf("machine reached through load-balancing rules only: %+v, want no %s", got, RuleAzInternetFacing)
	}
	if got := activeOn(rep, RuleAzInternetFacing, "azurerm_linux_virtual_machine.ops"); len(got) != 1 {
		t.Errorf("machine a NAT rule forwards a port to: %+v, want one %s", got, RuleAzInternetFacing)
	}
}

// TestAzureAKSAPIServer checks that a public AKS API server without
// authorized ranges is reported, and a private cluster is not. One whose
// authorized ranges hold one not known statically was reported reachable
// from every address as if proven: it may be. An address alone is a range
// of one, and a /32 not known statically one address somewhere.
func TestAzureAKSAPIServer(t *testing.T) {
	rep := run(t, "testdata/azure/aks")
	open := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.open")
	if len(open) != 1 || !strings.Contains(open[0].Message, "every IPv4 internet address") {
		t.Errorf("public API server without authorized ranges: %+v, want one finding naming every address", open)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.private"); len(got) > 0 {
		t.Errorf("private cluster: %+v, want none", got)
	}
	office := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.office")
	if len(office) != 1 || !strings.Contains(office[0].Message, "198.51.100.0/24") || strings.Contains(office[0].Message, "every IPv") {
		t.Errorf("API server with an authorized range: %+v, want the range alone", office)
	}
	// A range not known statically may be any: every address may reach
	// the API server, which is not proven.
	vendor := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.vendor")
	if len(vendor) != 1 || vendor[0].Severity != High || !strings.Contains(vendor[0].Message, "may be reachable from the internet") ||
		!strings.Contains(vendor[0].Message, "authorized_ip_ranges has an element not known statically") {
		t.Errorf("API server with a range not known statically: %+v, want one high that says it may be reachable and why", vendor)
	}
	// An address written without a prefix length was dropped ("is not a
	// CIDR block"), so the server read as unreached: it is that address.
	admin := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.admin")
	if len(admin) != 1 || admin[0].Severity != Medium || !strings.Contains(admin[0].Message, "203.0.113.7/32") {
		t.Errorf("API server authorized for one address: %+v, want one medium naming it", admin)
	}
	// One /32 not known statically: it may be reached, from one address.
	mine := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.mine")
	if len(mine) != 1 || mine[0].Severity != Medium || !strings.Contains(mine[0].Message, "may be reachable from the internet") ||
		!strings.Contains(mine[0].Message, "authorized_ip_ranges has an element not known statically but for its length (a /32 range)") {
		t.Errorf("API server authorized for a /32 not known statically: %+v, want one medium that says it may be reachable and why", mine)
	}
}

// TestAzureSubnetElsewhereFailsClosed checks that a machine with a public
// IP in a subnet outside the scanned code is read as routed to the
// internet without a subnet NSG: the port its interface's NSG admits is
// reported as possibly reachable, the ports it denies are not.
func TestAzureSubnetElsewhereFailsClosed(t *testing.T) {
	got := activeOn(run(t, "testdata/azure/subnet-elsewhere"), RuleAzExposedPort, "azurerm_linux_virtual_machine.jump")
	if len(got) != 1 || got[0].Severity != High {
		t.Fatalf("%s: %+v, want one high (not proven)", RuleAzExposedPort, got)
	}
	msg := got[0].Message
	if !strings.Contains(msg, "tcp 22 (SSH) may be reachable") || !strings.Contains(msg, "subnet not in the scanned code") || strings.Contains(msg, "3389") {
		t.Errorf("finding %q: want SSH alone, said to rest on the unknown subnet", msg)
	}
}

// TestAzureAnyProtocolKeepsPorts checks that an NSG rule for protocol *
// admits its own ports only (TCP, UDP and ICMP), not every port.
func TestAzureAnyProtocolKeepsPorts(t *testing.T) {
	src := azureBase + `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + strings.Replace(nsgRule("ssh", 100, "Allow", "22", `"*"`), `protocol                    = "Tcp"`, `protocol                    = "*"`, 1)
	rep := checkSource(t, src)
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.vm"); len(got) != 1 {
		t.Errorf("SSH admitted by a rule for protocol *: %+v, want one finding", got)
	}
	for _, f := range activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.vm") {
		if strings.Contains(f.Message, "3389") {
			t.Errorf("RDP reported through a rule for port 22: %s", f.Message)
		}
	}
}

// TestWinRMIsAnAdminPort checks that WinRM (5985, 5986), Windows' remote
// shell, is one of the admin ports whose exposure is reported.
func TestWinRMIsAnAdminPort(t *testing.T) {
	src := azureBase + `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + nsgRule("winrm", 100, "Allow", "5986", `"Internet"`)
	got := activeOn(checkSource(t, src), RuleAzExposedPort, "azurerm_linux_virtual_machine.vm")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 5986 (WinRM)") {
		t.Fatalf("WinRM open to the internet: %+v, want one finding", got)
	}
}

// TestAzureInlineSubnets checks that subnets written inside a virtual
// network are the model's, with the NSGs they name: an interface in one
// was read as in a subnet outside the scanned code, with no NSG, so every
// admin port of its machine was reported as possibly reachable.
func TestAzureInlineSubnets(t *testing.T) {
	rep := run(t, "testdata/azure/inline-subnets")
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.web"); len(got) > 0 {
		t.Errorf("machine whose subnet NSG admits 443 alone: %+v, want no %s", got, RuleAzExposedPort)
	}
	jump := sshFindings(rep, "azurerm_linux_virtual_machine.jump")
	if len(jump) != 1 || jump[0].Severity != Critical || strings.Contains(jump[0].Message, "3389") {
		t.Fatalf("SSH through the admin subnet's NSG: %+v, want one critical, SSH alone", jump)
	}
	if p := pathLine(jump[0].Path); !strings.Contains(p, "azurerm_network_security_group.admin") {
		t.Errorf("path %q does not cross the admin subnet's NSG", p)
	}
}

// TestAzureNSGAssociationUnknown: an association whose NSG is not known
// statically was dropped, so a machine with a Standard SKU public IP read
// as behind no NSG, admitting nothing. The NSG may allow anything: the
// machine may be reachable, and says so; so may one in a subnet
// associated the same way.
func TestAzureNSGAssociationUnknown(t *testing.T) {
	src := readFixture(t, "testdata/azure/standard-ip/main.tf")
	for _, tc := range []struct{ name, assoc string }{
		{"interface", `resource "azurerm_network_interface_security_group_association" "standard" {
  network_interface_id      = azurerm_network_interface.standard.id
  network_security_group_id = var.nsg_id
}`},
		{"subnet", `resource "azurerm_subnet_network_security_group_association" "a" {
  subnet_id                 = azurerm_subnet.a.id
  network_security_group_id = var.nsg_id
}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, "variable \"nsg_id\" { type = string }\n"+src+"\n"+tc.assoc+"\n")
			got := sshFindings(rep, "azurerm_linux_virtual_machine.standard")
			if len(got) != 1 || !strings.Contains(got[0].Message, "may be reachable") || !strings.Contains(got[0].Message, "network security group not known statically") {
				t.Fatalf("Standard public IP behind an NSG not known statically: %+v, want SSH that may be reachable and why", got)
			}
		})
	}
}

// TestAzureSourceOfKnownLength: an NSG rule whose source is
// "${security_rule.value}/32" over a list without a value was read as
// admitting every address (AZ-NET-001, high, and SSH exposed at high). Each
// is one address somewhere: the machine may be reached, from one address.
// A prefix given whole by a variable may still be every address.
func TestAzureSourceOfKnownLength(t *testing.T) {
	rep := run(t, "testdata/azure/source-sized")
	if got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.jump"); len(got) != 0 {
		t.Errorf("%s on the NSG admitting /32s: %+v, want none", RuleNSGWorldOpen, got)
	}
	if got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.win"); len(got) != 1 || got[0].Severity != High {
		t.Errorf("%s on the NSG admitting any prefix: %+v, want one high", RuleNSGWorldOpen, got)
	}
	got := sshFindings(rep, "azurerm_linux_virtual_machine.jump")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "may be reachable") ||
		!strings.Contains(got[0].Message, "address prefix not known statically but for its length (a /32 range)") {
		t.Errorf("SSH to the machine: %+v, want one medium that says it may be reachable from a /32", got)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_windows_virtual_machine.win"); len(got) != 1 || got[0].Severity != High {
		t.Errorf("RDP to the machine behind any prefix: %+v, want one high", got)
	}
}

// TestAzureGatewayInfraPorts: an NSG on an application gateway's subnet
// admitting 65200-65535 from any address, as Azure requires of its
// GatewayManager for v2 gateways, was flagged open to the whole internet
// (AZ-NET-001, high). Azure locks those ports with its certificates and the
// subnet holds gateways alone: that range is not read as open; another
// port is, and a v1 gateway keeps only 65503-65534.
func TestAzureGatewayInfraPorts(t *testing.T) {
	src := readFixture(t, "testdata/azure/application-gateway/main.tf") + `
resource "azurerm_network_security_group" "gateway" {
  name = "gateway"
  security_rule {
    name                       = "infra"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "65200-65535"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "ssh"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "gateway" {
  subnet_id                 = azurerm_subnet.gateway.id
  network_security_group_id = azurerm_network_security_group.gateway.id
}
`
	got := activeOn(checkSource(t, src), RuleNSGWorldOpen, "azurerm_network_security_group.gateway")
	if len(got) != 1 || !strings.Contains(got[0].Message, "every internet address on tcp 22;") {
		t.Errorf("%s on the gateway's NSG: %+v, want one for tcp 22 alone", RuleNSGWorldOpen, got)
	}
	v1 := edit(t, edit(t, src, `name     = "Standard_v2"`, `name     = "Standard_Medium"`), `tier     = "Standard_v2"`, `tier     = "Standard"`)
	got = activeOn(checkSource(t, v1), RuleNSGWorldOpen, "azurerm_network_security_group.gateway")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 65200-65502, tcp 65535,") || strings.Contains(got[0].Message, "65534") {
		t.Errorf("%s on a v1 gateway's NSG: %+v, want all but 65503-65534 still open", RuleNSGWorldOpen, got)
	}
}

// TestAzureCountedMachines: machines, interfaces, public IPs and their
// associations counted by a variable without a value name each other by
// element(…, count.index), not known statically. The machines were left
// out of the network model (no interface, so no path: the SSH of the jump
// hosts and the workers behind the balancer went unreported, their NSGs
// read as associated with nothing). Each such reference is every instance
// of what its expression names, as a count known statically reads.
func TestAzureCountedMachines(t *testing.T) {
	const dir = "testdata/azure/counted-machines"
	rep := run(t, dir)
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.jump"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("SSH to the jump hosts through their Standard public IPs and NSG: %+v, want one critical", got)
	}
	m := model(t, dir)
	w := endpoint(t, m, "azurerm_linux_virtual_machine.worker")
	if res := m.Reach(m.Internet(), w, "tcp", 8443); !res.Reachable {
		t.Errorf("worker not reached on tcp 8443 through the balancer's pool: %s", pathLine(res.Path))
	}
	if res := m.Reach(m.Internet(), w, "tcp", 22); res.Reachable {
		t.Errorf("worker reached on tcp 22, which no balancer rule forwards: %s", pathLine(res.Path))
	}
	// A machine behind each is reached: on SSH, critical; on 8443, an
	// application's port, high.
	for nsg, sev := range map[string]Severity{"azurerm_network_security_group.jump": Critical, "azurerm_network_security_group.workers": High} {
		if got := activeOn(rep, RuleNSGWorldOpen, nsg); len(got) != 1 || got[0].Severity != sev {
			t.Errorf("%s on %s: %+v, want one %s (a machine behind it is reached)", RuleNSGWorldOpen, nsg, got, sev)
		}
	}
}

// TestAzureDenyToSomeDestinations checks that an NSG's deny whose
// destination is narrower than what the NSG guards (one address, an
// application security group) stops nothing for the rest: the machine
// outside it stays reached by the allow after it, while a deny to the
// whole subnet, its network or every address still stops it.
func TestAzureDenyToSomeDestinations(t *testing.T) {
	deny := func(dest string) string {
		return strings.Replace(nsgRule("deny", 100, "Deny", "22", `"Internet"`),
			`destination_address_prefix  = "*"`, dest, 1)
	}
	for _, tc := range []struct {
		dest    string
		reached bool
	}{
		{`destination_address_prefix = "10.0.1.4"`, true},
		{`destination_address_prefixes = ["10.0.1.4/32", "10.0.1.8/30"]`, true},
		{`destination_application_security_group_ids = [azurerm_application_security_group.web.id]`, true},
		{`destination_address_prefix = "Internet"`, true},
		{`destination_address_prefix = var.dest`, true},
		{`destination_address_prefix = "10.0.1.0/24"`, false},
		{`destination_address_prefixes = ["10.0.0.0/16"]`, false},
		{`destination_address_prefix = "VirtualNetwork"`, false},
		{`destination_address_prefix = "*"`, false},
	} {
		src := azureBase + `
variable "dest" { type = string }
resource "azurerm_application_security_group" "web" { name = "asg-web" }
resource "azurerm_network_security_group" "app" { name = "nsg-app" }
` + deny(tc.dest) + nsgRule("ssh", 200, "Allow", "22", `"Internet"`)
		got := sshFindings(checkSource(t, src), "azurerm_linux_virtual_machine.vm")
		if tc.reached && len(got) != 1 {
			t.Errorf("deny with %s before an allow of SSH from the internet: %+v, want SSH reached", tc.dest, got)
		}
		if !tc.reached && len(got) != 0 {
			t.Errorf("deny with %s before an allow of SSH from the internet: %+v, want SSH stopped", tc.dest, got)
		}
	}
}

// TestAzureServiceIPRulesOpen checks that a storage account's, key vault's
// or container registry's network rules that deny by default but whose IP
// rules admit every internet address, or are not known statically, are
// read as admitting every network (AZ-NET-006), and narrow ones are not.
func TestAzureServiceIPRulesOpen(t *testing.T) {
	for _, tc := range []struct {
		typ, body, want string
	}{
		{"azurerm_storage_account", `network_rules {
    default_action = "Deny"
    ip_rules       = ["0.0.0.0/1", "128.0.0.0/1"]
  }`, "default_action of network_rules is Deny, but its ip_rules admit every internet address"},
		{"azurerm_key_vault", `network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = ["0.0.0.0/0"]
  }`, "default_action of network_acls is Deny, but its ip_rules admit every internet address"},
		{"azurerm_container_registry", `sku = "Premium"
  network_rule_set {
    default_action = "Deny"
    ip_rule {
      action   = "Allow"
      ip_range = "0.0.0.0/0"
    }
  }`, "default_action of network_rule_set is Deny, but its ip_rule blocks admit every internet address"},
		{"azurerm_key_vault", `network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
    ip_rules       = var.allowed
  }`, "ip_rules of network_acls are not known statically: read as admitting every address"},
		{"azurerm_storage_account", `network_rules {
    default_action = "Deny"
    ip_rules       = ["203.0.113.0/24", "198.51.100.7"]
  }`, ""},
	} {
		src := "variable \"allowed\" { type = list(string) }\nresource \"" + tc.typ + "\" \"s\" {\n  name = \"s\"\n  " + tc.body + "\n}\n"
		got := activeOn(checkSource(t, src), RuleAzServiceOpen, tc.typ+".s")
		if tc.want == "" {
			if len(got) > 0 {
				t.Errorf("%s: want no %s, got %+v", tc.body, RuleAzServiceOpen, got)
			}
			continue
		}
		if len(got) != 1 || !strings.Contains(got[0].Message, tc.want) {
			t.Errorf("%s: want one %s saying %q, got %+v", tc.body, RuleAzServiceOpen, tc.want, got)
		}
	}
}

// TestAzureForwardedTrafficStated: traffic a hub's appliance forwards
// from one spoke to another enters each spoke through its peering with the
// hub, which Azure documents as dropping it unless allow_forwarded_traffic
// is true there. The flag was not read. Azure does not drop such traffic
// in every case, so the path is kept, and it names each peering that
// leaves the flag off (or sets it from a value not known statically).
func TestAzureForwardedTrafficStated(t *testing.T) {
	raw, err := os.ReadFile("testdata/azure/appliance-reach/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	both := strings.Replace(string(raw), `remote_virtual_network_id = azurerm_virtual_network.hub.id
}`, `remote_virtual_network_id = azurerm_virtual_network.hub.id
  allow_forwarded_traffic   = var.forward
}
variable "forward" { type = bool }`, 1)
	for _, tc := range []struct {
		name, src string
		want, not []string
	}{
		{"left off", string(raw), []string{"azurerm_virtual_network_peering.left_hub", "allow_forwarded_traffic"}, []string{"right_hub"}},
		{"left unknown", both, []string{"azurerm_virtual_network_peering.left_hub", "not known statically"}, []string{"right_hub"}},
		{"both on", strings.Replace(both, "var.forward", "true", 1), nil, []string{"allow_forwarded_traffic"}},
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{writeProject(t, tc.src)}}, "azurerm_postgresql_flexible_server.orders")
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, a := range acc {
			if a.Source != "azurerm_subnet.app" || a.Port != 5432 {
				continue
			}
			found = true
			as := strings.Join(a.Assumed, "; ")
			for _, w := range tc.want {
				if !strings.Contains(as, w) {
					t.Errorf("%s: assumed %q does not name %q", tc.name, as, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(as, w) {
					t.Errorf("%s: assumed %q names %q", tc.name, as, w)
				}
			}
		}
		if !found {
			t.Errorf("%s: the left spoke's subnet does not reach the server through the hub's appliance: %+v", tc.name, acc)
		}
	}
}

// TestAnalysisServicesFirewall: an Analysis Services server answers on a
// public endpoint, its inline ipv4_firewall_rule blocks the only thing
// between it and the internet; one admitting every address went
// unreported. Rules spanning the internet are critical; a server with no
// rule, whose firewall the provider then leaves off, and rules not known
// statically, are high and say so; narrow rules are not reported.
func TestAnalysisServicesFirewall(t *testing.T) {
	rep := checkSource(t, `
variable "start" {}
resource "azurerm_analysis_services_server" "open" {
  name                = "open"
  location            = "westeurope"
  resource_group_name = "rg"
  sku                 = "S0"
  ipv4_firewall_rule {
    name        = "low"
    range_start = "0.0.0.0"
    range_end   = "127.255.255.255"
  }
  ipv4_firewall_rule {
    name        = "high"
    range_start = "128.0.0.0"
    range_end   = "255.255.255.255"
  }
}
resource "azurerm_analysis_services_server" "bare" {
  name                = "bare"
  location            = "westeurope"
  resource_group_name = "rg"
  sku                 = "S0"
}
resource "azurerm_analysis_services_server" "unknown" {
  name                = "unknown"
  location            = "westeurope"
  resource_group_name = "rg"
  sku                 = "S0"
  ipv4_firewall_rule {
    name        = "office"
    range_start = var.start
    range_end   = "203.0.113.20"
  }
}
resource "azurerm_analysis_services_server" "office" {
  name                = "office"
  location            = "westeurope"
  resource_group_name = "rg"
  sku                 = "S0"
  enable_power_bi_service = true
  ipv4_firewall_rule {
    name        = "office"
    range_start = "203.0.113.10"
    range_end   = "203.0.113.20"
  }
}
`)
	for addr, want := range map[string]Severity{"open": Critical, "bare": High, "unknown": High} {
		got := activeOn(rep, RuleAzFirewallOpen, "azurerm_analysis_services_server."+addr)
		if len(got) != 1 || got[0].Severity != want {
			t.Errorf("%s on azurerm_analysis_services_server.%s: %+v, want one at %s", RuleAzFirewallOpen, addr, got, want)
		}
	}
	if got := activeOn(rep, RuleAzFirewallOpen, "azurerm_analysis_services_server.office"); len(got) != 0 {
		t.Errorf("%s on the server that admits an office range: %+v", RuleAzFirewallOpen, got)
	}
}

// TestWholeResourceWhereANameIsTaken: a network security rule whose
// network_security_group_name is the whole azurerm_network_security_group
// resource, not its name. Terraform takes only a string there and
// rejects the configuration; it was read as naming a group "" and noted
// as outside the project. It is CHECK-003, naming the attribute and the
// resource, and nothing more is said of it.
func TestWholeResourceWhereANameIsTaken(t *testing.T) {
	rep := run(t, "testdata/azure/rule-nsg-object")
	var got []Finding
	for _, f := range active(rep, RuleRejected) {
		if f.Address == "azurerm_network_security_rule.ssh" && strings.Contains(f.Message, "network_security_group_name") &&
			strings.Contains(f.Message, "azurerm_network_security_group.nsg") {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Errorf("whole resource as the rule's group name: %+v, want one CHECK-003", active(rep, RuleRejected))
	}
	for _, f := range active(rep, RuleNotEvaluated) {
		if f.Address == "azurerm_network_security_rule.ssh" {
			t.Errorf("a note beside the rejection: %s", f.Message)
		}
	}
}

// TestAzurePublicIPDefaultSKU: a public IP whose sku is not set is of the
// Standard SKU from azurerm 4.0 (Basic before it), closed to the internet
// until an NSG admits it, and so is one of the StandardV2 SKU; both were
// read as Basic, so a machine behind one without an NSG was reported as
// reached on every port.
func TestAzurePublicIPDefaultSKU(t *testing.T) {
	const src = `
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.41.0.0/16"]
}
resource "azurerm_subnet" "a" {
  name                 = "a"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.41.1.0/24"]
}
resource "azurerm_public_ip" "vm" {
  name              = "vm"
  allocation_method = "Static"
}
resource "azurerm_public_ip" "v2" {
  name              = "v2"
  allocation_method = "Static"
  sku               = "StandardV2"
}
resource "azurerm_network_interface" "vm" {
  name = "vm"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.vm.id
  }
}
resource "azurerm_network_interface" "v2" {
  name = "v2"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.v2.id
  }
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  network_interface_ids = [azurerm_network_interface.vm.id]
}
resource "azurerm_linux_virtual_machine" "v2" {
  name                  = "v2"
  network_interface_ids = [azurerm_network_interface.v2.id]
}
`
	rep := checkSource(t, src)
	for _, vm := range []string{"azurerm_linux_virtual_machine.vm", "azurerm_linux_virtual_machine.v2"} {
		if got := sshFindings(rep, vm); len(got) != 0 {
			t.Errorf("%s behind a Standard public IP without an NSG: %+v, want nothing reached", vm, got)
		}
	}
	const v3 = `
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 3.100"
    }
  }
}
`
	rep = checkSource(t, v3+src)
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.vm"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("azurerm 3.x, sku unset (Basic) without an NSG: %+v, want SSH exposed", got)
	}
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.v2"); len(got) != 0 {
		t.Errorf("StandardV2 under azurerm 3.x: %+v, want nothing reached", got)
	}
}

// TestAzAPIAKS: AKS clusters written through the AzAPI provider
// (Microsoft.ContainerService/managedClusters) were only noted as not
// evaluated; their API server is read as azurerm_kubernetes_cluster's:
// public unless apiServerAccessProfile.enablePrivateCluster, narrowed by
// authorizedIPRanges, and gated by enableRBAC, disableLocalAccounts and
// aadProfile (an AKS Automatic cluster disables local accounts and
// integrates Entra ID).
func TestAzAPIAKS(t *testing.T) {
	rep := run(t, "testdata/azure/azapi-aks")
	auto := activeOn(rep, RuleAzExposedPort, "azapi_resource.automatic")
	if len(auto) != 1 || auto[0].Severity != High || !strings.Contains(auto[0].Message, "every IPv4 internet address") ||
		strings.Contains(auto[0].Message, "local accounts are on") || !strings.Contains(auto[0].Message, "Azure AD tokens") {
		t.Errorf("AKS Automatic with a public API server: %+v, want one high, local accounts off, Azure AD tokens", auto)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azapi_resource.private"); len(got) != 0 {
		t.Errorf("private cluster: %+v, want none", got)
	}
	office := activeOn(rep, RuleAzExposedPort, "azapi_resource.office")
	if len(office) != 1 || office[0].Severity != Medium || !strings.Contains(office[0].Message, "198.51.100.0/24") {
		t.Errorf("API server with an authorized range: %+v, want one medium naming the range", office)
	}
	if got := activeOn(rep, RuleAzExposedPort, "azapi_resource.legacy"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("Kubernetes RBAC off: %+v, want one critical", got)
	}
	for _, f := range active(rep, RuleNotEvaluated) {
		if strings.Contains(f.Message, "Microsoft.ContainerService/") {
			t.Errorf("%s still noted as not evaluated: %s", f.Address, f.Message)
		}
	}
}

// TestAzureInterfaceSubnetCounted checks that an interface's subnet_id not
// known statically, one of a subnet resource whose count is not known
// statically, is one of that resource's subnets, behind the NSG they have:
// it was read as a subnet outside the scanned code without an NSG, so SSH
// was reported reachable through an NSG that admits HTTPS alone.
func TestAzureInterfaceSubnetCounted(t *testing.T) {
	const dir = "testdata/azure/nic-subnet-counted"
	rep := run(t, dir)
	for _, addr := range []string{"azurerm_linux_virtual_machine.web", "azurerm_linux_virtual_machine_scale_set.workers"} {
		if got := activeOn(rep, RuleAzExposedPort, addr); len(got) > 0 {
			t.Errorf("%s on %s behind an NSG admitting HTTPS alone: %+v, want none", RuleAzExposedPort, addr, got)
		}
		m := model(t, dir)
		e := endpoint(t, m, addr)
		res := m.Reach(m.Internet(), e, "tcp", 443)
		if !res.Reachable || !strings.Contains(strings.Join(res.Assumed, "\n"), "not known statically: assumed to be any of azurerm_subnet.tier") {
			t.Errorf("%s on 443: reachable %v, assumed %q, want reachable through a subnet of azurerm_subnet.tier, said so", addr, res.Reachable, res.Assumed)
		}
		if res := m.Reach(m.Internet(), e, "tcp", 22); res.Reachable {
			t.Errorf("%s on 22 reachable: %s", addr, pathLine(res.Path))
		}
	}
}

// TestAzureNetworkSpaceUnknown checks that a virtual network whose
// address space is not known statically still holds its subnets: the
// VirtualNetwork tag of an NSG there admits the gateway's subnet, so the
// machine the gateway publishes is reached from the internet, and the
// path says what was assumed. The tag held nothing, and the machine was
// reached from no source at all.
func TestAzureNetworkSpaceUnknown(t *testing.T) {
	m := model(t, "testdata/azure/vnet-space-unknown")
	e := endpoint(t, m, "azurerm_linux_virtual_machine.app")
	res := m.Reach(m.Internet(), e, "tcp", 8443)
	if !res.Reachable {
		t.Fatalf("8443 through the application gateway not reachable: %s", pathLine(res.Path))
	}
	if !strings.Contains(strings.Join(res.Assumed, "\n"), "address space of azurerm_virtual_network.shop is not known statically") {
		t.Errorf("assumed %q, want the network's address space named as assumed", res.Assumed)
	}
	if res := m.Reach(m.Internet(), e, "tcp", 22); res.Reachable {
		t.Errorf("22 reachable: %s", pathLine(res.Path))
	}
	// The tag holds private ranges, not the internet: the default
	// AllowVnetInBound admits no internet address.
	for _, f := range run(t, "testdata/azure/vnet-space-unknown").Findings {
		if f.RuleID == RuleNSGWorldOpen {
			t.Errorf("%s: %+v, want none (the VirtualNetwork tag is not the internet)", f.RuleID, f)
		}
	}
}

// TestAzureGatewayBackendSubnetCounted checks that a machine a gateway
// publishes, in a subnet of a resource whose count is not known
// statically, is reached through that subnet's NSG, which turns the
// gateway away on the backend port, not as one outside the scanned code
// without an NSG.
func TestAzureGatewayBackendSubnetCounted(t *testing.T) {
	m := model(t, "testdata/azure/gateway-backend-counted")
	e := endpoint(t, m, "azurerm_linux_virtual_machine.api")
	if res := m.Reach(m.Internet(), e, "tcp", 8080); res.Reachable {
		t.Errorf("8080 through the gateway reachable past the backend subnet's NSG: %s (assumed %q)", pathLine(res.Path), res.Assumed)
	}
}

// TestAzureVirtualWAN checks that networks connected to the hubs of one
// Virtual WAN reach each other, and the branches behind a hub's VPN
// gateway reach them, as the hubs route by default: a machine whose NSG
// admits the VirtualNetwork tag is reached from the other spoke and the
// branch office, not from a network connected to no hub.
func TestAzureVirtualWAN(t *testing.T) {
	const dir = "testdata/azure/virtual-wan"
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_linux_virtual_machine.db")
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]bool{}
	for _, a := range acc {
		if a.Port == 22 {
			from[a.Source] = true
		}
	}
	for _, want := range []string{"azurerm_virtual_network.apps", "VPN azurerm_vpn_gateway.north (192.168.40.0/24)"} {
		if !from[want] {
			t.Errorf("SSH from %s not reached; reached from %v", want, from)
		}
	}
	if from["azurerm_virtual_network.lab"] {
		t.Errorf("SSH reached from a network connected to no hub: %v", from)
	}
	lat := activeOn(run(t, dir), RuleAzLateral, "azurerm_linux_virtual_machine.db")
	if len(lat) == 0 || !strings.Contains(strings.Join(messages(lat), "\n"), "azurerm_virtual_network.apps") {
		t.Errorf("%s: %q, want SSH from the other spoke", RuleAzLateral, messages(lat))
	}
}

// TestAzAPIUpdateSubnetNSG checks that an azapi_update_resource of a
// subnet that sets its networkSecurityGroup associates that NSG with the
// subnet, as azurerm's association does: the NSG admits SSH from anywhere,
// so the machine behind its Standard public IP is reached. The update was
// only noted, the NSG read as associated with nothing and the machine as
// closed.
func TestAzAPIUpdateSubnetNSG(t *testing.T) {
	rep := run(t, "testdata/azure/azapi-update-association")
	if got := sshFindings(rep, "azurerm_linux_virtual_machine.jump"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("SSH through the NSG the update associates: %+v, want one critical", got)
	}
	if got := activeOn(rep, RuleNSGWorldOpen, "azapi_resource.jump"); len(got) != 1 || got[0].Severity != Critical {
		t.Errorf("%s on the NSG: %+v, want one critical", RuleNSGWorldOpen, got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "azapi_update_resource.jump_nsg"); len(got) > 0 {
		t.Errorf("the update is read, yet noted: %+v", got)
	}
}

// TestAzureAppPinnedWithAliases checks that a provider version pinned in
// a required_providers entry that also declares configuration_aliases is
// read: before azurerm 3.95 a web app's restrictions end in an implicit
// deny, so one allow of an office range admits no one else. The
// constraint was lost and the site read as admitting everyone.
func TestAzureAppPinnedWithAliases(t *testing.T) {
	rep := run(t, "testdata/azure/app-pinned-aliases")
	if got := activeOn(rep, RuleAzAppOpen, "azurerm_linux_web_app.portal"); len(got) > 0 {
		t.Errorf("%s: %q, want none", RuleAzAppOpen, messages(got))
	}
}

// TestAzureGatewaySubnetCounted checks that an application gateway whose
// subnet is one of a subnet resource whose count is not known statically
// is behind those subnets' NSG, which admits HTTPS from one office range:
// the gateway was read as in a subnet outside the scanned code, without
// an NSG, and so reached from the whole internet.
func TestAzureGatewaySubnetCounted(t *testing.T) {
	m := model(t, "testdata/azure/gateway-subnet-counted")
	e := endpoint(t, m, "azurerm_application_gateway.edge")
	res := m.Reach(m.Internet(), e, "tcp", 443)
	if !res.Reachable {
		t.Fatalf("HTTPS from the office not reached: %s", pathLine(res.Path))
	}
	if got := m.describe(res.From); got != "203.0.113.0/24" {
		t.Errorf("HTTPS reached from %s, want the office's 203.0.113.0/24 alone", got)
	}
}

// TestAzureNSGOnSubnetElsewhere checks that an NSG associated with a
// subnet outside the scanned code (a lookup) is graded as associated, not
// as one nothing associates: its rule admitting SSH from anywhere is high,
// and the finding says where it is associated. It was medium, and said
// that nothing associated it.
func TestAzureNSGOnSubnetElsewhere(t *testing.T) {
	rep := run(t, "testdata/azure/nsg-subnet-elsewhere")
	got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.ops")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "associated by azurerm_subnet_network_security_group_association.ops with a subnet outside the scanned code") {
		t.Errorf("%s: %+v, want one high that names the association", RuleNSGWorldOpen, got)
	}
}
