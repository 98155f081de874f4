# Two NSGs whose rules a variable without a value gives whole: one as the
# security_rule attribute, one as an AzAPI body's securityRules. Either may
# admit anything.
variable "inbound" {
  type = any
}
resource "azurerm_network_security_group" "given" {
  name          = "given"
  security_rule = var.inbound
}
resource "azapi_resource" "given" {
  type      = "Microsoft.Network/networkSecurityGroups@2024-05-01"
  name      = "given-arm"
  parent_id = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/edge"
  location  = "uksouth"
  body = {
    properties = {
      securityRules = var.inbound
    }
  }
}
