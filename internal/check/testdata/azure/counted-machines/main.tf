# Machines, interfaces, public IPs and associations counted by a variable
# without a value: each names its peers by element(…, count.index), which
# is not known statically. The jump hosts take Standard public IPs opened
# for SSH by an NSG associated per interface; the workers have no public
# IP and take HTTPS through a public load balancer's pool.
variable "hosts" {
  type = number
}

resource "azurerm_virtual_network" "lab" {
  name          = "lab"
  address_space = ["10.30.0.0/16"]
}

resource "azurerm_subnet" "hosts" {
  name                 = "hosts"
  virtual_network_name = azurerm_virtual_network.lab.name
  address_prefixes     = ["10.30.1.0/24"]
}

resource "azurerm_network_security_group" "jump" {
  name = "jump"
  security_rule {
    name                       = "ssh"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}

resource "azurerm_network_security_group" "workers" {
  name = "workers"
  security_rule {
    name                       = "https"
    priority                   = 120
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "8443"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_public_ip" "jump" {
  count             = var.hosts
  name              = "jump-${count.index}"
  allocation_method = "Static"
  sku               = "Standard"
}

resource "azurerm_network_interface" "jump" {
  count = var.hosts
  name  = "jump-${count.index}"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.hosts.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = element(azurerm_public_ip.jump[*].id, count.index)
  }
}

resource "azurerm_network_interface_security_group_association" "jump" {
  count                     = var.hosts
  network_interface_id      = azurerm_network_interface.jump[count.index].id
  network_security_group_id = azurerm_network_security_group.jump.id
}

resource "azurerm_linux_virtual_machine" "jump" {
  count                 = var.hosts
  name                  = "jump-${count.index}"
  size                  = "Standard_B1s"
  network_interface_ids = [element(azurerm_network_interface.jump[*].id, count.index)]
}

resource "azurerm_public_ip" "front" {
  name              = "front"
  allocation_method = "Static"
  sku               = "Standard"
}

resource "azurerm_lb" "front" {
  name = "front"
  sku  = "Standard"
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.front.id
  }
}

resource "azurerm_lb_backend_address_pool" "workers" {
  name            = "workers"
  loadbalancer_id = azurerm_lb.front.id
}

resource "azurerm_lb_rule" "https" {
  name                           = "https"
  loadbalancer_id                = azurerm_lb.front.id
  protocol                       = "Tcp"
  frontend_port                  = 443
  backend_port                   = 8443
  frontend_ip_configuration_name = "public"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.workers.id]
}

resource "azurerm_network_interface" "worker" {
  count                     = var.hosts
  name                      = "worker-${count.index}"
  network_security_group_id = azurerm_network_security_group.workers.id
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.hosts.id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_network_interface_backend_address_pool_association" "worker" {
  count                   = var.hosts
  network_interface_id    = element(azurerm_network_interface.worker[*].id, count.index)
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.workers.id
}

resource "azurerm_linux_virtual_machine" "worker" {
  count                 = var.hosts
  name                  = "worker-${count.index}"
  size                  = "Standard_B1s"
  network_interface_ids = [azurerm_network_interface.worker[count.index].id]
}
