# Web apps whose access restrictions allow the internet at large without
# a /0: half the IPv4 internet, two halves in one comma-separated entry,
# and two entries that span it; and one that allows an office alone.
resource "azurerm_linux_web_app" "half" {
  name       = "half"
  https_only = true
  site_config {
    ip_restriction_default_action     = "Deny"
    scm_ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction       = true
    ip_restriction {
      name       = "half"
      action     = "Allow"
      ip_address = "0.0.0.0/1"
    }
  }
}
resource "azurerm_linux_web_app" "listed" {
  name       = "listed"
  https_only = true
  site_config {
    ip_restriction_default_action     = "Deny"
    scm_ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction       = true
    ip_restriction {
      name       = "both"
      action     = "Allow"
      ip_address = "11.0.0.0/8,12.0.0.0/8"
    }
  }
}
resource "azurerm_linux_web_app" "split" {
  name       = "split"
  https_only = true
  site_config {
    ip_restriction_default_action     = "Deny"
    scm_ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction       = true
    ip_restriction {
      name       = "low"
      action     = "Allow"
      ip_address = "11.0.0.0/8"
    }
    ip_restriction {
      name       = "high"
      action     = "Allow"
      ip_address = "12.0.0.0/8"
    }
  }
}
resource "azurerm_linux_web_app" "office" {
  name       = "office"
  https_only = true
  site_config {
    ip_restriction_default_action     = "Deny"
    scm_ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction       = true
    ip_restriction {
      name       = "office"
      action     = "Allow"
      ip_address = "198.51.100.0/24"
    }
  }
}
