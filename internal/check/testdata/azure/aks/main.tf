# Three clusters: one with a public API server open to every address, one
# whose API server admits an office range only, and a private one.
resource "azurerm_kubernetes_cluster" "open" {
  name       = "open"
  dns_prefix = "open"
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
resource "azurerm_kubernetes_cluster" "office" {
  name       = "office"
  dns_prefix = "office"
  api_server_access_profile {
    authorized_ip_ranges = ["198.51.100.0/24"]
  }
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
resource "azurerm_kubernetes_cluster" "private" {
  name                    = "private"
  dns_prefix              = "private"
  private_cluster_enabled = true
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
# An office range and a vendor's, given by a variable without a value: the
# vendor's may be any range.
variable "vendor_cidr" {
  type = string
}
resource "azurerm_kubernetes_cluster" "vendor" {
  name       = "vendor"
  dns_prefix = "vendor"
  api_server_access_profile {
    authorized_ip_ranges = ["198.51.100.0/24", var.vendor_cidr]
  }
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
# An admin's address written without a prefix length, and one the http data
# source finds at plan time, written "<address>/32".
resource "azurerm_kubernetes_cluster" "admin" {
  name       = "admin"
  dns_prefix = "admin"
  api_server_access_profile {
    authorized_ip_ranges = ["10.0.0.0/24", "203.0.113.7"]
  }
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
data "http" "myip" {
  url = "https://ifconfig.me/ip"
}
resource "azurerm_kubernetes_cluster" "mine" {
  name       = "mine"
  dns_prefix = "mine"
  api_server_access_profile {
    authorized_ip_ranges = ["${chomp(data.http.myip.response_body)}/32"]
  }
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
