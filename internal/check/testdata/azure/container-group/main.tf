# Container groups (Azure Container Instances). A group's type defaults to
# Public: its address forwards the ports it exposes, and no NSG stands in
# the way.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.40.0.0/16"]
}
resource "azurerm_subnet" "aci" {
  name                 = "aci"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.40.1.0/24"]
}

# A web container on the default type: public on 80.
resource "azurerm_container_group" "site" {
  name     = "site"
  os_type  = "Linux"
  container {
    name   = "web"
    image  = "example.org/web:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port = 80
    }
  }
}

# A tools container that exposes SSH beside HTTPS.
resource "azurerm_container_group" "tools" {
  name            = "tools"
  os_type         = "Linux"
  ip_address_type = "Public"
  container {
    name   = "tools"
    image  = "example.org/tools:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port     = 443
      protocol = "TCP"
    }
    ports {
      port = 22
    }
  }
}

# Two containers declare ports, but the group exposes one of them.
resource "azurerm_container_group" "narrow" {
  name            = "narrow"
  os_type         = "Linux"
  ip_address_type = "Public"
  exposed_port {
    port = 8080
  }
  container {
    name   = "app"
    image  = "example.org/app:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port = 8080
    }
  }
  container {
    name   = "db"
    image  = "example.org/db:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port = 5432
    }
  }
}

# A port given by a variable without a value may be any.
variable "worker_port" {
  type = number
}
resource "azurerm_container_group" "worker" {
  name            = "worker"
  os_type         = "Linux"
  ip_address_type = "Public"
  container {
    name   = "worker"
    image  = "example.org/worker:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port = var.worker_port
    }
  }
}

# In the virtual network: no public address.
resource "azurerm_container_group" "inside" {
  name            = "inside"
  os_type         = "Linux"
  ip_address_type = "Private"
  subnet_ids      = [azurerm_subnet.aci.id]
  container {
    name   = "api"
    image  = "example.org/api:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port = 22
    }
  }
}
