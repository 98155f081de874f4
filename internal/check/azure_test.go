package check

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// azureBase is a virtual network with one subnet, an NSG associated with
// it and a virtual machine with a public IP; tests add the NSG's rules.
const azureBase = `
resource "azurerm_virtual_network" "main" {
  name          = "vnet-main"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "app" {
  name                 = "snet-app"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_public_ip" "vm" {
  name              = "pip-vm"
  allocation_method = "Static"
}
resource "azurerm_network_interface" "vm" {
  name = "nic-vm"
  ip_configuration {
    name                 = "primary"
    subnet_id            = azurerm_subnet.app.id
    public_ip_address_id = azurerm_public_ip.vm.id
  }
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  network_interface_ids = [azurerm_network_interface.vm.id]
}
resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}
resource "azurerm_network_watcher_flow_log" "app" {
  network_security_group_id = azurerm_network_security_group.app.id
  enabled                   = true
}
`

// nsgRule is an inbound TCP rule of the NSG "app".
func nsgRule(name string, prio int, access, port, source string) string {
	return `
resource "azurerm_network_security_rule" "` + name + `" {
  name                        = "` + name + `"
  priority                    = ` + strconv.Itoa(prio) + `
  direction                   = "Inbound"
  access                      = "` + access + `"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "` + port + `"
  source_address_prefix       = ` + source + `
  destination_address_prefix  = "*"
  network_security_group_name = azurerm_network_security_group.app.name
}
`
}

// activeOn returns the active findings of rule on addr.
func activeOn(rep *Report, rule, addr string) []Finding {
	var out []Finding
	for _, f := range active(rep, rule) {
		if f.Address == addr {
			out = append(out, f)
		}
	}
	return out
}

// TestAzureNSGPriority checks that NSG rules are read in priority order
// (the lowest number decides), with Azure's service tags: Internet, * and
// Any are every internet address; VirtualNetwork is the network's own space
// and its peers'; AzureLoadBalancer is the platform's probe address, not
// the internet.
func TestAzureNSGPriority(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.vm"
	for _, tc := range []struct {
		name, rules string
		exposed     bool
	}{
		{"allow from Internet", nsgRule("ssh", 100, "Allow", "22", `"Internet"`), true},
		{"allow from *", nsgRule("ssh", 100, "Allow", "22", `"*"`), true},
		{"allow from Any", nsgRule("ssh", 100, "Allow", "22", `"Any"`), true},
		{"allow from 0.0.0.0/0", nsgRule("ssh", 100, "Allow", "22", `"0.0.0.0/0"`), true},
		{"allow from VirtualNetwork", nsgRule("ssh", 100, "Allow", "22", `"VirtualNetwork"`), false},
		{"allow from AzureLoadBalancer", nsgRule("ssh", 100, "Allow", "22", `"AzureLoadBalancer"`), false},
		{"allow from a private range", nsgRule("ssh", 100, "Allow", "22", `"10.0.0.0/8"`), false},
		{"deny first, allow later", nsgRule("deny", 100, "Deny", "*", `"Internet"`) + nsgRule("ssh", 200, "Allow", "22", `"Internet"`), false},
		{"allow first, deny later", nsgRule("ssh", 100, "Allow", "22", `"Internet"`) + nsgRule("deny", 200, "Deny", "*", `"Internet"`), true},
		{"deny of another port first", nsgRule("deny", 100, "Deny", "3389", `"Internet"`) + nsgRule("ssh", 200, "Allow", "22", `"Internet"`), true},
		{"only Azure's default rules", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := azureBase + `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + tc.rules
			rep := checkSource(t, src)
			got := activeOn(rep, RuleAzExposedPort, vm)
			if tc.exposed {
				if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
					t.Fatalf("want one critical %s on SSH, got %+v", RuleAzExposedPort, got)
				}
				if p := pathLine(got[0].Path); !strings.Contains(p, "azurerm_network_security_group.app → "+vm) {
					t.Errorf("path %q does not pass the NSG", p)
				}
			} else if len(got) > 0 {
				t.Errorf("want no %s, got %+v", RuleAzExposedPort, got)
			}
			if open := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.app"); tc.exposed != (len(open) > 0) {
				t.Errorf("%s findings %+v, want them %v", RuleNSGWorldOpen, open, tc.exposed)
			}
		})
	}
}

// TestAzureNICAndSubnetNSG checks that traffic must pass both the subnet's
// NSG and the network interface's: a deny on either stops it.
func TestAzureNICAndSubnetNSG(t *testing.T) {
	subnetOpen := `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + nsgRule("ssh", 100, "Allow", "22", `"Internet"`)
	nic := func(access string) string {
		return `
resource "azurerm_network_security_group" "nic" {
  name = "nsg-nic"
  security_rule {
    name                       = "ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "` + access + `"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_interface_security_group_association" "vm" {
  network_interface_id      = azurerm_network_interface.vm.id
  network_security_group_id = azurerm_network_security_group.nic.id
}
`
	}
	for _, tc := range []struct {
		name, extra string
		exposed     bool
	}{
		{"subnet allows, interface allows", nic("Allow"), true},
		{"subnet allows, interface denies", nic("Deny"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, azureBase+subnetOpen+tc.extra)
			got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.vm")
			if tc.exposed != (len(got) > 0) {
				t.Errorf("%s findings %+v, want them %v", RuleAzExposedPort, got, tc.exposed)
			}
		})
	}
}

// azurePeers is two virtual networks peered both ways, with a virtual
// machine in b whose subnet has no NSG of its own rules (Azure's defaults
// let VirtualNetwork, which includes the peer, in on every port).
func azurePeers(aSpace, bSpace string) string {
	return `
resource "azurerm_virtual_network" "a" {
  name          = "vnet-a"
  address_space = ["` + aSpace + `"]
}
resource "azurerm_virtual_network" "b" {
  name          = "vnet-b"
  address_space = ["` + bSpace + `"]
}
resource "azurerm_subnet" "b" {
  name                 = "snet-b"
  virtual_network_name = azurerm_virtual_network.b.name
  address_prefixes     = [cidrsubnet("` + bSpace + `", 4, 1)]
}
resource "azurerm_network_security_group" "b" {
  name = "nsg-b"
}
resource "azurerm_subnet_network_security_group_association" "b" {
  subnet_id                 = azurerm_subnet.b.id
  network_security_group_id = azurerm_network_security_group.b.id
}
resource "azurerm_network_watcher_flow_log" "b" {
  network_security_group_id = azurerm_network_security_group.b.id
  enabled                   = true
}
resource "azurerm_virtual_network_peering" "ab" {
  name                      = "a-to-b"
  virtual_network_name      = azurerm_virtual_network.a.name
  remote_virtual_network_id = azurerm_virtual_network.b.id
}
resource "azurerm_virtual_network_peering" "ba" {
  name                      = "b-to-a"
  virtual_network_name      = azurerm_virtual_network.b.name
  remote_virtual_network_id = azurerm_virtual_network.a.id
}
resource "azurerm_network_interface" "b" {
  name = "nic-b"
  ip_configuration {
    name      = "primary"
    subnet_id = azurerm_subnet.b.id
  }
}
resource "azurerm_linux_virtual_machine" "b" {
  name                  = "vm-b"
  network_interface_ids = [azurerm_network_interface.b.id]
}
`
}

// TestAzurePeeringOverlap checks that peered networks reach each other
// through Azure's default AllowVnetInBound (the peer is in VirtualNetwork),
// and that a peering between overlapping address spaces, which Azure
// refuses to create, is reported as such and carries no traffic.
func TestAzurePeeringOverlap(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.b"
	t.Run("disjoint", func(t *testing.T) {
		dir := writeProject(t, azurePeers("10.1.0.0/16", "10.2.0.0/16"))
		rep := run(t, dir)
		got := activeOn(rep, RuleAzLateral, vm)
		if len(got) != 1 || !strings.Contains(got[0].Message, "all of azurerm_virtual_network.a (10.1.0.0/16)") {
			t.Fatalf("want one %s from vnet a, got %+v", RuleAzLateral, got)
		}
		if p := pathLine(got[0].Path); !strings.Contains(p, "azurerm_virtual_network.a → azurerm_virtual_network_peering.ab → ") ||
			!strings.Contains(p, "azurerm_network_security_group.b → "+vm) {
			t.Errorf("path %q does not cross the peering and the NSG", p)
		}
		if r := active(rep, RuleRejected); len(r) > 0 {
			t.Errorf("unexpected %s: %+v", RuleRejected, r)
		}
	})
	t.Run("overlapping", func(t *testing.T) {
		dir := writeProject(t, azurePeers("10.1.0.0/16", "10.1.0.0/20"))
		rep := run(t, dir)
		if got := activeOn(rep, RuleAzLateral, vm); len(got) > 0 {
			t.Errorf("lateral path over a peering Azure refuses: %+v", got)
		}
		for _, p := range []string{"azurerm_virtual_network_peering.ab", "azurerm_virtual_network_peering.ba"} {
			got := activeOn(rep, RuleRejected, p)
			if len(got) != 1 || !strings.Contains(got[0].Message, "Azure refuses to peer") || !strings.Contains(got[0].Message, "10.1.0.0/20") {
				t.Errorf("%s: want one %s naming the overlap, got %+v", p, RuleRejected, got)
			}
			if o := activeOn(rep, RulePeeringOverlap, p); len(o) > 0 {
				t.Errorf("%s: AWS rule %s on an Azure peering: %+v", p, RulePeeringOverlap, o)
			}
		}
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, vm)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acc {
			if a.Source == "azurerm_virtual_network.a" {
				t.Errorf("reached from vnet a on %d over a refused peering: %s", a.Port, pathLine(a.Path))
			}
		}
	})
}

// TestAzurePeeringBothWaysOutside checks a pair of peerings between a
// network of the project and one outside it, each direction its own
// resource (the remote one named by its ID, the reverse by its name):
// both read one-sided, neither joining a network the project does not
// hold.
func TestAzurePeeringBothWaysOutside(t *testing.T) {
	src := azureBase + `
resource "azurerm_virtual_network_peering" "out" {
  name                      = "main-to-remote"
  virtual_network_name      = azurerm_virtual_network.main.name
  remote_virtual_network_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/remote"
}
resource "azurerm_virtual_network_peering" "in" {
  name                      = "remote-to-main"
  resource_group_name       = "rg"
  virtual_network_name      = "remote"
  remote_virtual_network_id = azurerm_virtual_network.main.id
}
`
	rep := checkSource(t, src)
	for _, p := range []string{"azurerm_virtual_network_peering.out", "azurerm_virtual_network_peering.in"} {
		found := false
		for _, f := range rep.Findings {
			found = found || f.Address == p && f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, "read one-sided")
		}
		if !found {
			t.Errorf("%s: want a note that it is read one-sided", p)
		}
	}
}

// TestAzureFlowLogs checks AZ-LOG-001: an NSG is covered by a flow log that
// names it or its virtual network, and reported otherwise.
func TestAzureFlowLogs(t *testing.T) {
	base := strings.Replace(azureBase, `resource "azurerm_network_watcher_flow_log" "app" {
  network_security_group_id = azurerm_network_security_group.app.id
  enabled                   = true
}`, "", 1) + `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
`
	for _, tc := range []struct {
		name, extra string
		reported    bool
	}{
		{"none", "", true},
		{"NSG flow log", `
resource "azurerm_network_watcher_flow_log" "nsg" {
  network_security_group_id = azurerm_network_security_group.app.id
  enabled                   = true
}
`, false},
		{"virtual network flow log", `
resource "azurerm_network_watcher_flow_log" "vnet" {
  target_resource_id = azurerm_virtual_network.main.id
  enabled            = true
}
`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, base+tc.extra)
			got := activeOn(rep, RuleNSGNoFlowLogs, "azurerm_network_security_group.app")
			if tc.reported != (len(got) > 0) {
				t.Errorf("%s findings %+v, want them %v", RuleNSGNoFlowLogs, got, tc.reported)
			}
		})
	}
}

// TestAzureVirtualNetworkTagOnInterfaceNSG checks that an NSG associated
// only with a network interface reads VirtualNetwork as the interface's
// network and its peers: SSH admitted from VirtualNetwork is reachable from
// the peer (before, the tag was empty there and the path was missed).
func TestAzureVirtualNetworkTagOnInterfaceNSG(t *testing.T) {
	src := strings.Replace(azurePeers("10.1.0.0/16", "10.2.0.0/16"), `resource "azurerm_subnet_network_security_group_association" "b" {
  subnet_id                 = azurerm_subnet.b.id
  network_security_group_id = azurerm_network_security_group.b.id
}`, `resource "azurerm_network_interface_security_group_association" "b" {
  network_interface_id      = azurerm_network_interface.b.id
  network_security_group_id = azurerm_network_security_group.b.id
}
resource "azurerm_network_security_rule" "vnet_ssh" {
  name                        = "vnet-ssh"
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "22"
  source_address_prefix       = "VirtualNetwork"
  destination_address_prefix  = "*"
  network_security_group_name = azurerm_network_security_group.b.name
}
resource "azurerm_network_security_rule" "deny" {
  name                        = "deny-rest"
  priority                    = 200
  direction                   = "Inbound"
  access                      = "Deny"
  protocol                    = "*"
  source_port_range           = "*"
  destination_port_range      = "*"
  source_address_prefix       = "*"
  destination_address_prefix  = "*"
  network_security_group_name = azurerm_network_security_group.b.name
}`, 1)
	rep := checkSource(t, src)
	got := activeOn(rep, RuleAzLateral, "azurerm_linux_virtual_machine.b")
	if len(got) != 1 || !strings.HasSuffix(got[0].Message, "on tcp 22 (SSH)") {
		t.Fatalf("want one %s from vnet a on SSH only, got %+v", RuleAzLateral, got)
	}
	if p := pathLine(got[0].Path); !strings.Contains(p, "azurerm_network_security_group.b → azurerm_linux_virtual_machine.b") {
		t.Errorf("path %q does not pass the interface's NSG", p)
	}
}

// TestExposedPortsGrouped checks that the admin ports of one machine that
// the same addresses reach make one finding listing them, with runs of one
// service compacted, and that a finding is graded by whom it admits: the
// whole internet is critical, one office range is medium and named.
func TestExposedPortsGrouped(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.vm"
	for _, tc := range []struct {
		name, rules string
		sev         Severity
		want        []string
	}{
		{"every port from the internet", nsgRule("all", 100, "Allow", "*", `"Internet"`), Critical,
			[]string{"tcp 22 (SSH), 23 (Telnet), ", "and 24 other ports (every admin and data-store port checked) are reachable from the internet (every IPv4 internet address"}},
		{"two ports from an office /24", nsgRule("ssh", 100, "Allow", "22", `"203.0.113.0/24"`) + nsgRule("rdp", 110, "Allow", "3389", `"203.0.113.0/24"`), Medium,
			[]string{"tcp 22 (SSH), 3389 (RDP) are reachable from the internet (203.0.113.0/24)"}},
		{"half the IPv4 internet", nsgRule("ssh", 100, "Allow", "22", `"0.0.0.0/1"`), Critical,
			[]string{"tcp 22 (SSH) is reachable from the internet ("}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, azureBase+`
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
`+tc.rules)
			got := activeOn(rep, RuleAzExposedPort, vm)
			if len(got) != 1 {
				t.Fatalf("want one %s on %s, got %d: %+v", RuleAzExposedPort, vm, len(got), got)
			}
			if got[0].Severity != tc.sev {
				t.Errorf("severity %v, want %v: %s", got[0].Severity, tc.sev, got[0].Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0].Message, w) {
					t.Errorf("message %q does not hold %q", got[0].Message, w)
				}
			}
		})
	}
}

func TestPortList(t *testing.T) {
	got := portList([]int{22, 2375, 2376, 2379, 2380, 5985, 5986, 8080, 8081},
		[]string{"SSH", "Docker API", "Docker API", "etcd", "etcd peer", "WinRM", "WinRM", "vm service port", "vm service port"})
	const want = "22 (SSH), 2375-2376 (Docker API), 2379 (etcd), 2380 (etcd peer), 5985-5986 (WinRM), 8080-8081 (vm service port)"
	if got != want {
		t.Errorf("portList = %q, want %q", got, want)
	}
}

// TestAzurePublicIPVersion checks that a machine's public IP is reached from
// its own address family only: IPv4 when ip_version is unset, IPv6 when it
// says so, either (with a note) when it cannot be read.
func TestAzurePublicIPVersion(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.vm"
	for _, tc := range []struct {
		name, version, want, not string
	}{
		{"unset", "", "(every IPv4 internet address)", "IPv6"},
		{"IPv4", `"IPv4"`, "(every IPv4 internet address)", "IPv6"},
		{"IPv6", `"IPv6"`, "(every IPv6 internet address)", "IPv4"},
		{"unknown", "var.ip_version", "(every IPv4 internet address, every IPv6 internet address)", "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := azureBase + `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + nsgRule("ssh", 100, "Allow", "22", `"*"`)
			if tc.version != "" {
				src = strings.Replace(src, `allocation_method = "Static"`, `allocation_method = "Static"
  ip_version        = `+tc.version, 1)
			}
			got := activeOn(checkSource(t, src), RuleAzExposedPort, vm)
			if len(got) != 1 || !strings.Contains(got[0].Message, tc.want) || strings.Contains(got[0].Message, tc.not) {
				t.Fatalf("want one %s reached from %s only, got %+v", RuleAzExposedPort, tc.want, got)
			}
		})
	}
}

// TestAzureServiceOpenUnknown checks that AZ-NET-006 reads what it cannot
// evaluate as open and says so, and that public access turned off or a
// default of Deny closes the service.
func TestAzureServiceOpenUnknown(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"default_action unknown", "network_rules {\n    default_action = var.action\n  }", "default_action of network_rules is not known statically: read as Allow"},
		{"public access unknown", "public_network_access_enabled = var.public\n  network_rules {\n    default_action = \"Allow\"\n  }", "public_network_access_enabled is not known statically: read as true"},
		{"default_action Allow", "network_rules {\n    default_action = \"Allow\"\n  }", "default_action of network_rules is Allow"},
		{"public access off", "public_network_access_enabled = false", ""},
		{"deny by default", "network_rules {\n    default_action = \"Deny\"\n  }", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, "resource \"azurerm_storage_account\" \"s\" {\n  name = \"s\"\n  "+tc.body+"\n}\n"), RuleAzServiceOpen, "azurerm_storage_account.s")
			if tc.want == "" {
				if len(got) > 0 {
					t.Fatalf("want no %s, got %+v", RuleAzServiceOpen, got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, tc.want) {
				t.Fatalf("want one medium %s saying %q, got %+v", RuleAzServiceOpen, tc.want, got)
			}
		})
	}
}

// TestAzureIPVersionScaleSetAndLB checks that ip_version is honoured beyond
// network interfaces: a scale set's instances are reached on their
// ip_configuration's version, and machines behind a public load balancer on
// the family of its frontends' public IPs; what cannot be read is either.
func TestAzureIPVersionScaleSetAndLB(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	vmss, lb := read("testdata/azure/scale-set/main.tf"), read("testdata/azure/load-balancer/main.tf")
	const v4, v6, both = "(every IPv4 internet address)", "(every IPv6 internet address)", "(every IPv4 internet address, every IPv6 internet address)"
	for _, tc := range []struct {
		name, src, old, new, addr, want string
	}{
		{"scale set unset", vmss, "", "", "azurerm_windows_virtual_machine_scale_set.public", v4},
		{"scale set IPv6", vmss, "      public_ip_address {", "      version   = \"IPv6\"\n      public_ip_address {", "azurerm_windows_virtual_machine_scale_set.public", v6},
		{"scale set unknown", vmss, "      public_ip_address {", "      version   = var.version\n      public_ip_address {", "azurerm_windows_virtual_machine_scale_set.public", both},
		{"frontend unset", lb, "", "", "azurerm_linux_virtual_machine.vm[0]", v4},
		{"frontend IPv6", lb, `allocation_method = "Static"`, "allocation_method = \"Static\"\n  ip_version        = \"IPv6\"", "azurerm_linux_virtual_machine.vm[0]", v6},
		{"frontend unknown", lb, `allocation_method = "Static"`, "allocation_method = \"Static\"\n  ip_version        = var.version", "azurerm_linux_virtual_machine.vm[0]", both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if tc.old != "" {
				if !strings.Contains(src, tc.old) {
					t.Fatalf("fixture lacks %q", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			got := activeOn(checkSource(t, src), RuleAzExposedPort, tc.addr)
			if len(got) != 1 || !strings.HasSuffix(got[0].Message, tc.want) {
				t.Fatalf("want one %s reached from %s, got %+v", RuleAzExposedPort, tc.want, got)
			}
		})
	}
}

// TestAzureCosmosOpenUnknown checks that AZ-NET-006 reads a Cosmos DB
// account's filter and access flag when they are not known statically as
// open, and says so, and that ranges it can read are judged as written.
func TestAzureCosmosOpenUnknown(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		sev        Severity
		want       string
	}{
		{"filter unknown", "ip_range_filter = var.ranges", Medium, "ip_range_filter is not known statically: read as admitting every address"},
		{"public access unknown", "public_network_access_enabled = var.public", Medium, "public_network_access_enabled is not known statically: read as true"},
		{"filter of the internet", "ip_range_filter = [\"0.0.0.0/0\"]", Medium, "ip_range_filter admits every internet address"},
		{"Azure services", "ip_range_filter = \"0.0.0.0,203.0.113.0/24\"", Low, "admits every Azure service, of every tenant"},
		{"office only", "ip_range_filter = \"203.0.113.0/24\"", 0, ""},
		{"virtual network filter unknown", "is_virtual_network_filter_enabled = var.vnet", Medium, "no ip_range_filter and is_virtual_network_filter_enabled is not true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, "resource \"azurerm_cosmosdb_account\" \"c\" {\n  name = \"c\"\n  "+tc.body+"\n}\n"), RuleAzServiceOpen, "azurerm_cosmosdb_account.c")
			if tc.want == "" {
				if len(got) > 0 {
					t.Fatalf("want no %s, got %+v", RuleAzServiceOpen, got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != tc.sev || !strings.Contains(got[0].Message, tc.want) {
				t.Fatalf("want one %s %s saying %q, got %+v", tc.sev, RuleAzServiceOpen, tc.want, got)
			}
		})
	}
}

// TestAzureAppOpenUnknown checks that AZ-APP-001 reads an access flag,
// default action or restriction it cannot evaluate as open and says so.
func TestAzureAppOpenUnknown(t *testing.T) {
	restricted := "ip_restriction_default_action = \"Deny\"\n    scm_use_main_ip_restriction = true\n    ip_restriction {\n      ip_address = \"203.0.113.0/24\"\n    }"
	for _, tc := range []struct {
		name, attrs, site, want string
	}{
		{"public access unknown", "public_network_access_enabled = var.public", "", "public_network_access_enabled is not known statically (read as true)"},
		{"default action unknown", "", "ip_restriction_default_action = var.action\n    scm_use_main_ip_restriction = true\n    ip_restriction {\n      ip_address = \"203.0.113.0/24\"\n    }", "ip_restriction_default_action is not known statically: read as Allow"},
		{"restriction address unknown", "", "ip_restriction_default_action = \"Deny\"\n    scm_use_main_ip_restriction = true\n    ip_restriction {\n      ip_address = var.range\n    }", "an ip_restriction entry is not known statically"},
		{"restricted", "", restricted, ""},
		{"public access off", "public_network_access_enabled = false", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "resource \"azurerm_linux_web_app\" \"a\" {\n  name = \"a\"\n  https_only = true\n  " + tc.attrs + "\n  site_config {\n    " + tc.site + "\n  }\n}\n"
			got := activeOn(checkSource(t, src), RuleAzAppOpen, "azurerm_linux_web_app.a")
			if tc.want == "" {
				if len(got) > 0 {
					t.Fatalf("want no %s, got %+v", RuleAzAppOpen, got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, tc.want) {
				t.Fatalf("want one medium %s saying %q, got %+v", RuleAzAppOpen, tc.want, got)
			}
		})
	}
}

// TestAzureAppSiteConfigUnknown checks that a site_config not known
// statically is read at its most permissive, and said so: restrictions that
// may admit everyone, FTP that may be plain.
func TestAzureAppSiteConfigUnknown(t *testing.T) {
	rep := checkSource(t, "variable \"site\" {}\nresource \"azurerm_linux_web_app\" \"a\" {\n  name = \"a\"\n  https_only = true\n  site_config = var.site\n}\n")
	open := activeOn(rep, RuleAzAppOpen, "azurerm_linux_web_app.a")
	if len(open) != 1 || !strings.Contains(open[0].Message, "ip_restriction is not known statically") {
		t.Errorf("want one %s saying the restrictions are not known, got %+v", RuleAzAppOpen, open)
	}
	weak := activeOn(rep, RuleAzWeakTLS, "azurerm_linux_web_app.a")
	if len(weak) != 1 || !strings.Contains(weak[0].Message, "ftps_state is not known statically") {
		t.Errorf("want one %s saying ftps_state is not known, got %+v", RuleAzWeakTLS, weak)
	}
}

// TestAzureSourceASG checks that an NSG rule admitting an application
// security group admits machines of its virtual network, said to be
// assumed (which interfaces are members is not modelled), and nothing
// beyond the rule's ports: a rule naming no address prefix admitted no one.
func TestAzureSourceASG(t *testing.T) {
	const db = "azurerm_linux_virtual_machine.db"
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/asg-source"}}, db)
	if err != nil {
		t.Fatal(err)
	}
	web := false
	for _, a := range acc {
		if a.Port != 5432 || a.Proto != "tcp" || a.Source == "internet" {
			t.Errorf("%s reached from %s on %s %d: %s", db, a.Source, a.Proto, a.Port, pathLine(a.Path))
			continue
		}
		if a.Source == "azurerm_subnet.web" {
			web = true
			if len(a.Assumed) == 0 || !strings.Contains(a.Assumed[0], "source application security group") {
				t.Errorf("web tier's path not said to be assumed: %+v", a.Assumed)
			}
		}
	}
	if !web {
		t.Errorf("the web tier does not reach PostgreSQL: %+v", acc)
	}
}

// TestAzureSubnetLookup checks that an azurerm_subnet lookup of a subnet
// written inside a virtual network of the project, one with an NSG the
// provider gives an ID, is that subnet: the machine on it is reached from
// the peered hub by SSH through the spoke's NSG, and on nothing else.
func TestAzureSubnetLookup(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.vm"
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/subnet-lookup"}}, vm)
	if err != nil {
		t.Fatal(err)
	}
	hub := false
	for _, a := range acc {
		switch {
		case a.Proto != "tcp" || a.Port != 22:
			t.Errorf("%s reached from %s on %s %d", vm, a.Source, a.Proto, a.Port)
		case a.Source == "azurerm_virtual_network.hub":
			hub = true
			if p := pathLine(a.Path); !strings.Contains(p, "azurerm_virtual_network.spoke/subnets/snet-vm → azurerm_network_security_group.spoke → "+vm) {
				t.Errorf("path %q does not cross the looked-up subnet and its NSG", p)
			}
		}
	}
	if !hub {
		t.Errorf("the hub does not reach SSH on the machine: %+v", acc)
	}
	if got := activeOn(run(t, "testdata/azure/subnet-lookup"), RuleAzLateral, vm); len(got) != 1 {
		t.Errorf("%s: %+v, want one", RuleAzLateral, got)
	}
}

// TestAzureAzAPINSG: an NSG written through the AzAPI provider was passed
// over: the machine behind one admitting RDP from everywhere read as
// behind no NSG, and one admitting SSH from everywhere, associated with
// nothing, was not flagged. Its inline rules are read as an azurerm NSG's
// (a body given as a map or as jsonencode text).
func TestAzureAzAPINSG(t *testing.T) {
	const dir = "testdata/azure/azapi-nsg"
	rep := run(t, dir)
	got := activeOn(rep, RuleNSGWorldOpen, "azapi_resource.jump")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 3389") || strings.Contains(got[0].Message, "tcp 23") {
		t.Errorf("%s on azapi_resource.jump: %+v, want one critical naming RDP and not the denied Telnet", RuleNSGWorldOpen, got)
	}
	got = activeOn(rep, RuleNSGWorldOpen, "azapi_resource.legacy")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "tcp 22") {
		t.Errorf("%s on azapi_resource.legacy: %+v, want one medium naming SSH", RuleNSGWorldOpen, got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_windows_virtual_machine.hop")
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, a := range acc {
		if a.Source == "internet" {
			ports = append(ports, fmt.Sprintf("%s %d", a.Proto, a.Port))
			if p := pathLine(a.Path); !strings.Contains(p, "azapi_resource.jump") {
				t.Errorf("path %q does not cross the NSG", p)
			}
		}
	}
	if fmt.Sprint(ports) != "[tcp 3389]" {
		t.Errorf("the machine is reached from the internet on %v, want [tcp 3389]", ports)
	}
	if n := notModelled(rep); n["azapi_resource.jump"] != "" {
		t.Errorf("the NSG read is noted as not in the network model: %s", n["azapi_resource.jump"])
	}
}

// TestAzureNSGRulesUnknown: an NSG whose rules were not known statically
// as a whole (set from a variable without a value) was read as allowing
// everything on a path, but not flagged as possibly admitting the world,
// as one built from a dynamic block over such a variable is.
func TestAzureNSGRulesUnknown(t *testing.T) {
	rep := run(t, "testdata/azure/nsg-rules-unknown")
	for _, addr := range []string{"azurerm_network_security_group.given", "azapi_resource.given"} {
		got := activeOn(rep, RuleNSGWorldOpen, addr)
		if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "may admit every internet address on tcp 0-79") ||
			!strings.Contains(got[0].Message, "security rules not known statically") {
			t.Errorf("%s on %s: %+v, want one medium saying it may admit the internet, and why", RuleNSGWorldOpen, addr, got)
		}
	}
}

// TestAzureReachPorts: --reach asked of an Azure machine the admin and
// data-store ports alone, so the ports its NSG admits the internet on, and
// those a public load balancer forwards to a scale set, were left out of
// the answer: every source reaching them is listed, by port.
func TestAzureReachPorts(t *testing.T) {
	const dir = "testdata/azure/reach-ports"
	for _, c := range []struct {
		addr string
		want []string
	}{
		{"azurerm_linux_virtual_machine.web", []string{"tcp 8443", "udp 51820"}},
		{"azurerm_linux_virtual_machine_scale_set.pool", []string{"tcp 9090"}},
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, c.addr)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range acc {
			if a.Source == "internet" {
				got = append(got, fmt.Sprintf("%s %d", a.Proto, a.Port))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s reached from the internet on %v, want %v", c.addr, got, c.want)
		}
	}
}

// TestAzureBalancerHopOrder: the path through a public load balancer read
// "internet → the balancer → the network's internet edge → its routes →
// the subnet", as if the balancer stood outside that edge. The balancer
// now comes where it forwards, between the routes and the subnet, as an
// Application Gateway does.
func TestAzureBalancerHopOrder(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/reach-ports"}}, "azurerm_linux_virtual_machine_scale_set.pool")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if a.Source != "internet" {
			continue
		}
		var kinds []string
		for _, h := range a.Path {
			kinds = append(kinds, h.Kind)
		}
		if k := strings.Join(kinds, " "); !strings.HasPrefix(k, "source igw route lb subnet") {
			t.Errorf("%s %d: hops %s (%s), want the balancer after the routes, before the subnet", a.Proto, a.Port, k, pathLine(a.Path))
		}
	}
}

// TestAzureAppFrontDoorTag checks that an access restriction allowing the
// AzureFrontDoor.Backend tag admits every tenant's Front Door, and so the
// whole internet, unless a header names the site's own profile: the tag
// alone, or a headers block of empty lists, was read as restricting the
// site. A profile ID known only after apply is a filter; another service's
// tag is its own addresses.
func TestAzureAppFrontDoorTag(t *testing.T) {
	rep := run(t, "testdata/azure/front-door-tag")
	for _, addr := range []string{"azurerm_linux_web_app.tag_only", "azurerm_linux_web_app.empty_headers"} {
		got := activeOn(rep, RuleAzAppOpen, addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, "service tag AzureFrontDoor.Backend with no header filter") {
			t.Errorf("%s: %+v, want one %s naming the tag without a header filter", addr, got, RuleAzAppOpen)
		}
	}
	for _, addr := range []string{"azurerm_linux_web_app.own_profile", "azurerm_linux_web_app.monitor"} {
		if got := activeOn(rep, RuleAzAppOpen, addr); len(got) > 0 {
			t.Errorf("%s: %+v, want no %s", addr, got, RuleAzAppOpen)
		}
	}
}

// TestAzureRegistryOpen checks that a container registry without network
// rules is reported as taking connections from every network, and at high
// when it serves its images to anonymous readers; one whose rules deny by
// default, or whose public access is off, is not. Registries were not read
// at all.
func TestAzureRegistryOpen(t *testing.T) {
	rep := run(t, "testdata/azure/registry")
	builds := activeOn(rep, RuleAzServiceOpen, "azurerm_container_registry.builds")
	if len(builds) != 1 || builds[0].Severity != Medium || !strings.Contains(builds[0].Message, "SKU takes no network rules") {
		t.Errorf("registry without network rules: %+v, want one medium", builds)
	}
	anon := activeOn(rep, RuleAzServiceOpen, "azurerm_container_registry.public_images")
	if len(anon) != 1 || anon[0].Severity != High || !strings.Contains(anon[0].Message, "anonymous_pull_enabled = true") {
		t.Errorf("registry with anonymous pull: %+v, want one high naming it", anon)
	}
	for _, addr := range []string{"azurerm_container_registry.office", "azurerm_container_registry.private"} {
		if got := activeOn(rep, RuleAzServiceOpen, addr); len(got) > 0 {
			t.Errorf("%s: %+v, want none", addr, got)
		}
	}
}

// TestAzurePrivateDatabases: a PostgreSQL or MySQL flexible server in a
// delegated subnet, and the private endpoint of an Azure SQL server, were
// not in the network model: --reach named no resource, and a database port
// open to a whole peered network went unreported. Each is now an endpoint
// in its subnet, on its database's port.
func TestAzurePrivateDatabases(t *testing.T) {
	const dir = "testdata/azure/private-databases"
	rep := run(t, dir)
	for _, tc := range []struct{ addr, port string }{
		{"azurerm_postgresql_flexible_server.orders", "tcp 5432"},
		{"azurerm_mysql_flexible_server.billing", "tcp 3306"},
		{"azurerm_private_endpoint.ledger", "tcp 1433"},
	} {
		got := activeOn(rep, RuleAzLateral, tc.addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, tc.port) || !strings.Contains(got[0].Message, "azurerm_virtual_network.partner") {
			t.Errorf("%s on %s: %+v, want one on %s from the partner network", RuleAzLateral, tc.addr, got, tc.port)
		}
	}
	// --reach on the server behind the private endpoint lists what
	// reaches it through the endpoint.
	for _, addr := range []string{"azurerm_postgresql_flexible_server.orders", "azurerm_mssql_server.ledger"} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, addr)
		if err != nil {
			t.Errorf("--reach %s: %v", addr, err)
			continue
		}
		var peer bool
		for _, a := range acc {
			peer = peer || strings.Contains(a.Source, "azurerm_virtual_network.partner")
		}
		if !peer {
			t.Errorf("--reach %s: %+v, want the partner network among the sources", addr, acc)
		}
	}
}

// TestAzureApplianceTransitNoted: a route whose next hop is a virtual
// appliance (an Azure Firewall or a network virtual appliance in a hub)
// carries spoke-to-spoke traffic through rules the model does not read;
// it was passed over in silence. Each such route is now a note saying the
// transit is read as forwarding (TestAzureApplianceTransitReach).
func TestAzureApplianceTransitNoted(t *testing.T) {
	rep := run(t, "testdata/azure/appliance-transit")
	for _, tc := range []struct{ addr, dest string }{
		{"azurerm_route_table.left", "10.2.0.0/16"},
		{"azurerm_route.to_left", "10.1.0.0/16"},
	} {
		got := activeOn(rep, RuleNotEvaluated, tc.addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, tc.dest) || !strings.Contains(got[0].Message, "10.0.1.4") || !strings.Contains(got[0].Message, "read as forwarding") {
			t.Errorf("%s on %s: %+v, want one note naming %s through 10.0.1.4, read as forwarding", RuleNotEvaluated, tc.addr, got, tc.dest)
		}
	}
	if got := activeOn(rep, RuleNotEvaluated, "azurerm_route_table.right"); len(got) > 0 {
		t.Errorf("note on a table without appliance routes: %+v", got)
	}
}

// TestAzureApplianceTransitReach: a spoke whose subnet routes another
// spoke's range to an appliance in the hub both are peered with reaches
// that spoke through it. The appliance's rules are not read, so the
// transit is read as forwarding (fail closed), and the path says so.
func TestAzureApplianceTransitReach(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/appliance-reach"}}, "azurerm_postgresql_flexible_server.orders")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, a := range acc {
		if a.Source != "azurerm_subnet.app" || a.Port != 5432 {
			continue
		}
		found = true
		var hops []string
		for _, h := range a.Path {
			hops = append(hops, h.Addr+" "+h.Detail)
		}
		if p := strings.Join(hops, " | "); !strings.Contains(p, "azurerm_route_table.app") || !strings.Contains(p, "10.0.1.4") {
			t.Errorf("path %q does not cross the appliance route", p)
		}
		if as := strings.Join(a.Assumed, "; "); !strings.Contains(as, "not evaluated") {
			t.Errorf("assumed %q does not say the appliance's rules are not evaluated", as)
		}
	}
	if !found {
		t.Errorf("the left spoke's subnet does not reach the server through the hub's appliance: %+v", acc)
	}
}

// TestAzureVirtualNetworkTagHoldsRoutes: Azure's VirtualNetwork tag holds
// the prefixes of the user-defined routes of the subnet's route table, so
// an NSG admitting only VirtualNetwork admits a spoke whose range that
// table sends through the hub's firewall. The tag was read as the
// network's and its peers' spaces only, turning the spoke away.
func TestAzureVirtualNetworkTagHoldsRoutes(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/appliance-vnet-tag"}}, "azurerm_postgresql_flexible_server.orders")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if a.Source == "azurerm_subnet.app" && a.Port == 5432 {
			return
		}
	}
	t.Errorf("the left spoke's subnet does not reach the server through the hub's appliance past an NSG admitting VirtualNetwork: %+v", acc)
}

// TestAzureSubnetUnknownReach: a flexible server, a private endpoint and a
// container group whose subnet is not known statically may be in any
// subnet of the configuration, as an AWS endpoint's may be any its
// expression names. Reach gave up on them ("its subnets are not known"),
// so nothing reached them; each is now reached from a subnet it may share,
// the path saying that subnet was assumed.
func TestAzureSubnetUnknownReach(t *testing.T) {
	for _, tc := range []struct {
		addr string
		port int
	}{
		{"azurerm_postgresql_flexible_server.orders", 5432},
		{"azurerm_private_endpoint.ledger", 1433},
		{"azurerm_container_group.jobs", 22},
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/subnet-unknown"}}, tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, a := range acc {
			if a.Source != "azurerm_subnet.app" || a.Port != tc.port {
				continue
			}
			found = true
			if as := strings.Join(a.Assumed, "; "); !strings.Contains(as, "not known statically") || !strings.Contains(as, "any subnet") {
				t.Errorf("%s: assumed %q does not say its subnet was assumed", tc.addr, as)
			}
		}
		if !found {
			t.Errorf("%s: not reached from azurerm_subnet.app on %d: %+v", tc.addr, tc.port, acc)
		}
	}
}

// TestAzureApplianceAddressNamesFirewall: a route's next hop taken from a
// firewall's private address, which the provider assigns, was noted as
// "an address not known statically" without saying whose; the note now
// names the firewall the reference takes it from.
func TestAzureApplianceAddressNamesFirewall(t *testing.T) {
	rep := run(t, "testdata/azure/appliance-firewall-ip")
	got := activeOn(rep, RuleNotEvaluated, "azurerm_route_table.left")
	var found bool
	for _, f := range got {
		if strings.Contains(f.Message, "route to-right") {
			found = true
			if !strings.Contains(f.Message, "azurerm_firewall.hub") {
				t.Errorf("note %q does not name the firewall whose address is the next hop", f.Message)
			}
		}
	}
	if !found {
		t.Errorf("no note on the route to the appliance: %+v", got)
	}
}

// TestAzureVirtualNetworkTagDenyShared: an NSG guarding subnets whose
// route tables differ meets a different VirtualNetwork in each; a deny
// naming the tag is read with only the route prefixes they all share, so
// that it denies nothing Azure may let through.
func TestAzureVirtualNetworkTagDenyShared(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/appliance-vnet-tag-deny"}}, "azurerm_postgresql_flexible_server.orders")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if a.Source == "azurerm_subnet.app" && a.Port == 5432 {
			return
		}
	}
	t.Errorf("the left spoke's subnet is read as denied by a VirtualNetwork that holds its range in one of the NSG's subnets only: %+v", acc)
}

// TestAzureVirtualNetworkTagDefaultRoute: a default route (forced
// tunnelling to a firewall) is not taken into the VirtualNetwork tag of
// the subnet's NSG: its default rule AllowVnetInBound would then admit
// every address, where what the internet sends gets no answer back
// through the appliance.
func TestAzureVirtualNetworkTagDefaultRoute(t *testing.T) {
	rep := run(t, "testdata/azure/forced-tunnel")
	if got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.app"); len(got) != 0 {
		t.Errorf("%s on an NSG of default rules behind a default route: %+v, want none", RuleNSGWorldOpen, got)
	}
}

// TestAzureAppEmptyRestrictionsDeny checks that, on the apps whose default
// actions the provider sets, an empty restriction list with a default
// action of Deny admits no one (no rule matches, the default applies),
// while an empty list elsewhere, or with the default left to Allow, admits
// every address.
func TestAzureAppEmptyRestrictionsDeny(t *testing.T) {
	deny := "ip_restriction_default_action = \"Deny\"\n    scm_ip_restriction_default_action = \"Deny\""
	for _, tc := range []struct {
		name, typ, site, want string
	}{
		{"both denied", "azurerm_linux_web_app", deny, ""},
		{"scm default left", "azurerm_windows_web_app", "ip_restriction_default_action = \"Deny\"", "scm_ip_restriction_default_action is not set"},
		{"legacy app", "azurerm_app_service", deny, "no scm_ip_restriction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "resource \"" + tc.typ + "\" \"a\" {\n  name = \"a\"\n  https_only = true\n  site_config {\n    " + tc.site + "\n  }\n}\n"
			got := activeOn(checkSource(t, src), RuleAzAppOpen, tc.typ+".a")
			if tc.want == "" {
				if len(got) > 0 {
					t.Fatalf("want no %s, got %+v", RuleAzAppOpen, got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0].Message, tc.want) {
				t.Fatalf("want one %s saying %q, got %+v", RuleAzAppOpen, tc.want, got)
			}
		})
	}
}

// TestAzapiSiteRestrictions checks that a web app written through the
// AzAPI provider (Microsoft.Web/sites) is judged by its access
// restrictions as the azurerm apps are: one with none is open, one that
// allows a narrow range and denies the rest is not, and one with public
// network access disabled is not; none is noted as outside the model.
func TestAzapiSiteRestrictions(t *testing.T) {
	site := func(name, props string) string {
		return "resource \"azapi_resource\" \"" + name + "\" {\n  type = \"Microsoft.Web/sites@2024-04-01\"\n  name = \"" + name + "\"\n  parent_id = \"/subscriptions/x/resourceGroups/rg\"\n  body = {\n    kind = \"app,linux\"\n    properties = {\n      httpsOnly = true\n" + props + "\n    }\n  }\n}\n"
	}
	src := site("open", "      siteConfig = { ftpsState = \"FtpsOnly\" }") +
		site("narrow", "      siteConfig = {\n        ftpsState = \"FtpsOnly\"\n        ipSecurityRestrictionsDefaultAction = \"Deny\"\n        scmIpSecurityRestrictionsUseMain = true\n        ipSecurityRestrictions = [{ ipAddress = \"203.0.113.0/24\", action = \"Allow\", priority = 100, name = \"office\" }]\n      }") +
		site("private", "      publicNetworkAccess = \"Disabled\"")
	rep := checkSource(t, src)
	if got := activeOn(rep, RuleAzAppOpen, "azapi_resource.open"); len(got) != 1 || !strings.Contains(got[0].Message, "no scmIpSecurityRestrictions") {
		t.Errorf("%s on the app without restrictions: %+v, want one saying the deployment site has none", RuleAzAppOpen, got)
	}
	for _, a := range []string{"azapi_resource.narrow", "azapi_resource.private"} {
		if got := activeOn(rep, RuleAzAppOpen, a); len(got) > 0 {
			t.Errorf("%s on %s: %+v, want none", RuleAzAppOpen, a, got)
		}
		if got := activeOn(rep, RuleNotEvaluated, a); len(got) > 0 {
			t.Errorf("%s on %s: %+v, want none", RuleNotEvaluated, a, got)
		}
	}
}

// TestAzapiNetwork checks that a virtual network and subnet written
// through the AzAPI provider are read as the azurerm ones: the subnet's
// NSG governs it, and the machine in it on a public IP is reached from the
// internet on SSH; neither is noted as outside the model.
func TestAzapiNetwork(t *testing.T) {
	rep := run(t, "testdata/azure/azapi-network")
	got := activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.vm")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || !strings.Contains(pathLine(got[0].Path), "azapi_resource.subnet") {
		t.Errorf("%s on the machine: %+v, want one critical for SSH through the subnet", RuleAzExposedPort, got)
	}
	for _, a := range []string{"azapi_resource.vnet", "azapi_resource.subnet"} {
		if got := activeOn(rep, RuleNotEvaluated, a); len(got) > 0 {
			t.Errorf("%s on %s: %+v, want none", RuleNotEvaluated, a, got)
		}
	}
}

// TestAzapiPeering checks that peerings written through the AzAPI provider
// join their networks as azurerm's do: the peered network's subnet reaches
// the machine's SSH, which its NSG admits from VirtualNetwork.
func TestAzapiPeering(t *testing.T) {
	const dir = "testdata/azure/azapi-peering"
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_linux_virtual_machine.db")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acc {
		if strings.Contains(a.Source, "azapi_resource.app") && a.Port == 22 {
			found = true
		}
	}
	if !found {
		t.Errorf("the peered network does not reach the machine's SSH: %+v", acc)
	}
	rep := run(t, dir)
	for _, a := range []string{"azapi_resource.app_data", "azapi_resource.data_app"} {
		if got := activeOn(rep, RuleNotEvaluated, a); len(got) > 0 {
			t.Errorf("%s on %s: %+v, want none", RuleNotEvaluated, a, got)
		}
	}
}

// TestAzapiSubnetRouteTables checks that a route table an AzAPI subnet's
// body names is the subnet's, as an association makes it: the left spoke
// reaches the server through the hub's appliance, its range in the right
// spoke's VirtualNetwork tag by the right spoke's route back.
func TestAzapiSubnetRouteTables(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/azapi-route-tables"}}, "azurerm_postgresql_flexible_server.orders")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		if a.Source == "azapi_resource.app" && a.Port == 5432 {
			return
		}
	}
	t.Errorf("the left spoke's AzAPI subnet does not reach the server through the hub's appliance: %+v", acc)
}

// TestNSGAllowByDestination checks that an NSG rule allowing a port to
// one destination address opens it on the machine holding that address
// alone: the bastion is reached on SSH, the app beside it (another static
// address) is not, and the worker, whose address Azure assigns, is read
// as possibly the bastion's.
func TestNSGAllowByDestination(t *testing.T) {
	rep := run(t, "testdata/azure/nsg-destination")
	for addr, want := range map[string]bool{"azurerm_linux_virtual_machine.bastion": true, "azurerm_linux_virtual_machine.app": false, "azurerm_linux_virtual_machine.worker": true} {
		got := activeOn(rep, RuleAzExposedPort, addr)
		if reached := len(got) == 1 && strings.Contains(got[0].Message, "tcp 22 (SSH)"); reached != want || !want && len(got) != 0 {
			t.Errorf("%s on %s: %+v, want reached on SSH %v", RuleAzExposedPort, addr, got, want)
		}
	}
}

// TestRegistryBelowPremium checks that a container registry below the
// Premium SKU, which takes no network rules, is said to admit every
// network for that reason, and that network rules written on one, which
// the provider refuses, are CHECK-003.
func TestRegistryBelowPremium(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_container_registry" "standard" {
  name                = "acrstandard"
  resource_group_name = "rg"
  location            = "westeurope"
  sku                 = "Standard"
}
resource "azurerm_container_registry" "ruled" {
  name                = "acrruled"
  resource_group_name = "rg"
  location            = "westeurope"
  sku                 = "Basic"
  network_rule_set {
    default_action = "Deny"
  }
}
`)
	if got := activeOn(rep, RuleAzServiceOpen, "azurerm_container_registry.standard"); len(got) != 1 || !strings.Contains(got[0].Message, "Premium") {
		t.Errorf("%s on the Standard registry: %+v, want one saying only Premium takes network rules", RuleAzServiceOpen, got)
	}
	if got := activeOn(rep, RuleRejected, "azurerm_container_registry.ruled"); len(got) != 1 || !strings.Contains(got[0].Message, "network_rule_set") {
		t.Errorf("%s on a Basic registry with network rules: %+v, want one", RuleRejected, got)
	}
}

// TestAzAPIStorageAndVaults: storage accounts and key vaults written
// through the AzAPI provider (Microsoft.Storage/storageAccounts,
// Microsoft.KeyVault/vaults) were only noted as not evaluated; they are
// read as azurerm's are, by publicNetworkAccess and networkAcls (ARM
// admits every network when networkAcls is not set).
func TestAzAPIStorageAndVaults(t *testing.T) {
	rep := run(t, "testdata/azure/azapi-data")
	for addr, want := range map[string]string{
		"azapi_resource.logs":       "no networkAcls block",
		"azapi_resource.exports":    "0.0.0.0/1",
		"azapi_resource.vault_open": "defaultAction of networkAcls is Allow",
	} {
		if got := activeOn(rep, RuleAzServiceOpen, addr); len(got) != 1 || !strings.Contains(got[0].Message, want) {
			t.Errorf("%s: %+v, want one %s saying %q", addr, got, RuleAzServiceOpen, want)
		}
	}
	for _, addr := range []string{"azapi_resource.private", "azapi_resource.vault_office"} {
		if got := activeOn(rep, RuleAzServiceOpen, addr); len(got) != 0 {
			t.Errorf("%s: %+v, want none", addr, got)
		}
	}
	for _, f := range active(rep, RuleNotEvaluated) {
		if strings.Contains(f.Message, "Microsoft.Storage/") || strings.Contains(f.Message, "Microsoft.KeyVault/") {
			t.Errorf("%s still noted as not evaluated: %s", f.Address, f.Message)
		}
	}
}

// TestAzureCognitiveAccountOpen: an Azure AI services or OpenAI account
// (azurerm_cognitive_account) answers on a public endpoint unless public
// network access is off, and its network_acls narrow it as a key vault's
// do; one that admits every network was only noted as public by default,
// and one that turned public access on explicitly as not evaluated.
func TestAzureCognitiveAccountOpen(t *testing.T) {
	rep := run(t, "testdata/azure/cognitive")
	for addr, want := range map[string]string{
		"azurerm_cognitive_account.chat": "no network_acls block",
		"azurerm_cognitive_account.lab":  "default_action of network_acls is Allow",
	} {
		if got := activeOn(rep, RuleAzServiceOpen, addr); len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, want) {
			t.Errorf("%s: %+v, want one medium %s saying %q", addr, got, RuleAzServiceOpen, want)
		}
	}
	for _, addr := range []string{"azurerm_cognitive_account.office", "azurerm_cognitive_account.internal"} {
		if got := activeOn(rep, RuleAzServiceOpen, addr); len(got) != 0 {
			t.Errorf("%s: %+v, want none", addr, got)
		}
	}
	if got := active(rep, RuleNotEvaluated); len(got) != 0 {
		t.Errorf("cognitive accounts noted as not evaluated: %+v", got)
	}
}
