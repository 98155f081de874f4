# Azure resources the model does not read that put something in reach: a
# Bastion host on a public IP, a SQL managed instance with its public
# data endpoint on, and a node pool whose nodes take public IPs. An NSG
# association and a NAT gateway's public IP beside them name no endpoint
# of their own.
resource "azurerm_virtual_network" "ops" {
  name          = "ops"
  address_space = ["10.60.0.0/16"]
}

resource "azurerm_subnet" "bastion" {
  name                 = "AzureBastionSubnet"
  virtual_network_name = azurerm_virtual_network.ops.name
  address_prefixes     = ["10.60.1.0/26"]
}

resource "azurerm_subnet" "data" {
  name                 = "data"
  virtual_network_name = azurerm_virtual_network.ops.name
  address_prefixes     = ["10.60.2.0/24"]
}

resource "azurerm_network_security_group" "data" {
  name = "data"
}

resource "azurerm_subnet_network_security_group_association" "data" {
  subnet_id                 = azurerm_subnet.data.id
  network_security_group_id = azurerm_network_security_group.data.id
}

resource "azurerm_public_ip" "bastion" {
  name              = "bastion"
  allocation_method = "Static"
  sku               = "Standard"
}

resource "azurerm_bastion_host" "ops" {
  name = "ops"
  ip_configuration {
    name                 = "ip"
    subnet_id            = azurerm_subnet.bastion.id
    public_ip_address_id = azurerm_public_ip.bastion.id
  }
}

resource "azurerm_mssql_managed_instance" "ledger" {
  name                         = "ledger"
  subnet_id                    = azurerm_subnet.data.id
  public_data_endpoint_enabled = true
  license_type                 = "BasePrice"
  sku_name                     = "GP_Gen5"
  storage_size_in_gb           = 32
  vcores                       = 4
}

# In the network AKS makes for its cluster: not in the scanned code.
resource "azurerm_kubernetes_cluster_node_pool" "edge" {
  name                   = "edge"
  kubernetes_cluster_id  = "/subscriptions/0/resourceGroups/ops/providers/Microsoft.ContainerService/managedClusters/ops"
  vm_size                = "Standard_D2s_v5"
  node_public_ip_enabled = true
}

resource "azurerm_public_ip" "egress" {
  name              = "egress"
  allocation_method = "Static"
  sku               = "Standard"
}

resource "azurerm_nat_gateway" "egress" {
  name = "egress"
}

resource "azurerm_nat_gateway_public_ip_association" "egress" {
  nat_gateway_id       = azurerm_nat_gateway.egress.id
  public_ip_address_id = azurerm_public_ip.egress.id
}

# A Relay namespace says nothing of public network access, which Azure
# leaves on; an Event Hubs namespace turns it off.
resource "azurerm_relay_namespace" "orders" {
  name     = "orders"
  sku_name = "Standard"
}

resource "azurerm_eventhub_namespace" "closed" {
  name                          = "closed"
  sku                           = "Standard"
  public_network_access_enabled = false
}

# Resources written through the AzAPI provider: an NSG admitting RDP from
# everywhere and a public IP, whose ARM types the model reads only as
# azurerm resources, one whose type a variable gives, and an SSH key,
# which puts nothing in a network.
variable "arm_type" {
  type = string
}

resource "azapi_resource" "edge_rules" {
  type      = "Microsoft.Network/networkSecurityGroups@2023-11-01"
  name      = "edge-rules"
  parent_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops"
  location  = "northeurope"
  body = {
    properties = {
      securityRules = [{
        name = "remote-desktop"
        properties = {
          priority                 = 120
          direction                = "Inbound"
          access                   = "Allow"
          protocol                 = "Tcp"
          sourceAddressPrefix      = "*"
          sourcePortRange          = "*"
          destinationAddressPrefix = "*"
          destinationPortRange     = "3389"
        }
      }]
    }
  }
}

resource "azapi_resource" "edge_ip" {
  type      = "Microsoft.Network/publicIPAddresses@2023-11-01"
  name      = "edge-ip"
  parent_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops"
  location  = "northeurope"
  body = {
    properties = {
      publicIPAllocationMethod = "Static"
    }
  }
}

resource "azapi_resource" "anything" {
  type      = var.arm_type
  name      = "anything"
  parent_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops"
}

resource "azapi_resource" "ops_key" {
  type      = "Microsoft.Compute/sshPublicKeys@2022-11-01"
  name      = "ops-key"
  parent_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops"
  location  = "northeurope"
}

# A private DNS zone and its link to a network, through AzAPI: names, no
# endpoint.
resource "azapi_resource" "zone" {
  type      = "Microsoft.Network/privateDnsZones@2024-06-01"
  name      = "privatelink.ops.internal"
  parent_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops"
  location  = "global"
}

resource "azapi_resource" "zone_link" {
  type      = "Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01"
  name      = "ops"
  parent_id = azapi_resource.zone.id
  location  = "global"
}

# An AzAPI update that adds a rule to an NSG outside the scanned code.
resource "azapi_update_resource" "open_ssh" {
  type        = "Microsoft.Network/networkSecurityGroups/securityRules@2024-05-01"
  resource_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ops/providers/Microsoft.Network/networkSecurityGroups/legacy/securityRules/ssh"
  body = {
    properties = {
      access = "Allow"
    }
  }
}

resource "azurerm_app_configuration" "settings" {
  name = "settings"
  sku  = "standard"
}

resource "azurerm_automation_account" "runbooks" {
  name     = "runbooks"
  sku_name = "Basic"
}

resource "azurerm_app_configuration" "closed" {
  name                  = "closed"
  sku                   = "standard"
  public_network_access = "Disabled"
}
