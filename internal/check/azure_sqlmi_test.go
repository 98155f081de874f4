package check

import (
	"fmt"
	"strings"
	"testing"
)

// sqlMISource is a SQL managed instance in a subnet whose NSG admits the
// internet on 3342, its public data endpoint's port, and on 1433;
// publicEndpoint is the instance's public_data_endpoint_enabled.
func sqlMISource(publicEndpoint string) string {
	return fmt.Sprintf(`
resource "azurerm_virtual_network" "v" {
  name                = "v"
  location            = "westeurope"
  resource_group_name = "rg"
  address_space       = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "mi" {
  name                 = "mi"
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefixes     = ["10.0.0.0/24"]
}
resource "azurerm_network_security_group" "mi" {
  name                = "mi"
  location            = "westeurope"
  resource_group_name = "rg"
  security_rule {
    name                       = "public-endpoint"
    priority                   = 1300
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["1433", "3342"]
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "mi" {
  subnet_id                 = azurerm_subnet.mi.id
  network_security_group_id = azurerm_network_security_group.mi.id
}
resource "azurerm_mssql_managed_instance" "mi" {
  name                         = "mi"
  resource_group_name          = "rg"
  location                     = "westeurope"
  license_type                 = "BasePrice"
  sku_name                     = "GP_Gen5"
  storage_size_in_gb           = 32
  vcores                       = 4
  subnet_id                    = azurerm_subnet.mi.id
  administrator_login          = "sqladmin"
  administrator_login_password = "x"
  public_data_endpoint_enabled = %s
}
`, publicEndpoint)
}

// TestSQLManagedInstancePublicEndpoint checks that a SQL managed instance
// whose public data endpoint is on (public_data_endpoint_enabled, or not
// known statically) is reached from the internet on 3342 where its
// subnet's NSG admits it, as a machine with a public address is
// (AZ-NET-002), and never on 1433, which its public address does not
// forward; with the endpoint off nothing reaches it from the internet.
// It was only noted as not evaluated.
func TestSQLManagedInstancePublicEndpoint(t *testing.T) {
	for _, c := range []struct {
		value, want string
	}{{"true", "is reachable from the internet"}, {"var.public", "may be reachable from the internet"}} {
		src := sqlMISource(c.value)
		if strings.HasPrefix(c.value, "var.") {
			src += "variable \"public\" {}\n"
		}
		rep := checkSource(t, src)
		got := activeOn(rep, RuleAzExposedPort, "azurerm_mssql_managed_instance.mi")
		if len(got) != 1 || !strings.Contains(got[0].Message, "3342") || strings.Contains(got[0].Message, "1433") || !strings.Contains(got[0].Message, c.want) {
			t.Errorf("public_data_endpoint_enabled = %s: %s %+v, want one on 3342 alone saying %q", c.value, RuleAzExposedPort, got, c.want)
		}
		for _, f := range activeOn(rep, RuleNotEvaluated, "azurerm_mssql_managed_instance.mi") {
			if strings.Contains(f.Message, "not in the network model") {
				t.Errorf("public_data_endpoint_enabled = %s: noted as not evaluated: %s", c.value, f.Message)
			}
		}
	}
	rep := checkSource(t, sqlMISource("false"))
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_mssql_managed_instance.mi"); len(got) != 0 {
		t.Errorf("public data endpoint off: %+v, want none", got)
	}
}

// TestSQLManagedInstancePublicEndpointGrading checks how the exposure of a
// managed instance's public data endpoint is told: 3342 is its data-store
// port, so the NSG that admits the internet there is critical, as on a
// database's own port, not graded down as an application's; the instance
// is a database, not a virtual machine, so it is not AZ-NET-003; and the
// fix names its public data endpoint, not a public IP it does not have.
func TestSQLManagedInstancePublicEndpointGrading(t *testing.T) {
	rep := checkSource(t, sqlMISource("true"))
	if got := activeOn(rep, RuleAzInternetFacing, "azurerm_mssql_managed_instance.mi"); len(got) != 0 {
		t.Errorf("%s on the instance, a database, not a machine: %+v", RuleAzInternetFacing, got)
	}
	nsg := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.mi")
	if len(nsg) != 1 || nsg[0].Severity != Critical || strings.Contains(nsg[0].Message, "no admin, data-store") {
		t.Errorf("want one critical %s on the NSG, 3342 being the instance's data-store port, got %+v", RuleNSGWorldOpen, nsg)
	}
	got := activeOn(rep, RuleAzExposedPort, "azurerm_mssql_managed_instance.mi")
	if len(got) != 1 || !strings.Contains(got[0].Fix, "public_data_endpoint_enabled = false") || strings.Contains(got[0].Fix, "public IP") {
		t.Errorf("want one %s whose fix turns the public data endpoint off, got %+v", RuleAzExposedPort, got)
	}
	for _, f := range rep.Findings {
		if strings.HasPrefix(f.RuleID, "AWS-") {
			t.Errorf("an AWS rule on an Azure resource: %s %s %s", f.RuleID, f.Address, f.Message)
		}
	}
}

// TestSQLManagedInstancePublicEndpointNotLateral checks that the public
// data endpoint, which answers at the instance's public address alone, is
// not read as reached on 3342 from a peered network through the instance's
// subnet: the peer reaches the instance on 1433 (AZ-NET-004) and only
// there, where it was also said to reach 3342.
func TestSQLManagedInstancePublicEndpointNotLateral(t *testing.T) {
	src := sqlMISource("true")
	src = strings.Replace(src, `destination_port_ranges    = ["1433", "3342"]`, `destination_port_range     = "*"`, 1)
	src = strings.Replace(src, `source_address_prefix      = "Internet"`, `source_address_prefix      = "VirtualNetwork"`, 1)
	src += `
resource "azurerm_virtual_network" "peer" {
  name                = "peer"
  location            = "westeurope"
  resource_group_name = "rg"
  address_space       = ["10.9.0.0/16"]
}
resource "azurerm_virtual_network_peering" "to_peer" {
  name                      = "to-peer"
  resource_group_name       = "rg"
  virtual_network_name      = azurerm_virtual_network.v.name
  remote_virtual_network_id = azurerm_virtual_network.peer.id
}
resource "azurerm_virtual_network_peering" "from_peer" {
  name                      = "from-peer"
  resource_group_name       = "rg"
  virtual_network_name      = azurerm_virtual_network.peer.name
  remote_virtual_network_id = azurerm_virtual_network.v.id
}
`
	got := activeOn(checkSource(t, src), RuleAzLateral, "azurerm_mssql_managed_instance.mi")
	if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 1433") || strings.Contains(got[0].Message, "3342") {
		t.Errorf("want one %s from the peer on 1433 alone, got %+v", RuleAzLateral, got)
	}
}
