# AKS node pools in a subnet of the configuration: the default pool's
# nodes have public addresses, and the subnet's NSG admits the internet to
# the kubelet and the NodePort range; a user pool has none. A machine in
# another subnet of the network reaches the nodes' kubelet.
resource "azurerm_virtual_network" "main" {
  name          = "vnet-main"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "nodes" {
  name                 = "snet-nodes"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_subnet" "ops" {
  name                 = "snet-ops"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.0.2.0/24"]
}
resource "azurerm_network_security_group" "nodes" {
  name = "nsg-nodes"
  security_rule {
    name                       = "kubelet-and-nodeports"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["10250", "30000-32767"]
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "nodes" {
  subnet_id                 = azurerm_subnet.nodes.id
  network_security_group_id = azurerm_network_security_group.nodes.id
}
resource "azurerm_kubernetes_cluster" "main" {
  name                    = "aks-main"
  dns_prefix              = "main"
  private_cluster_enabled = true
  default_node_pool {
    name                   = "system"
    node_count             = 2
    vm_size                = "Standard_D2s_v3"
    vnet_subnet_id         = azurerm_subnet.nodes.id
    node_public_ip_enabled = true
  }
}
resource "azurerm_kubernetes_cluster_node_pool" "user" {
  name                  = "user"
  kubernetes_cluster_id = azurerm_kubernetes_cluster.main.id
  vm_size               = "Standard_D2s_v3"
  vnet_subnet_id        = azurerm_subnet.nodes.id
}
