package check

import (
	"strings"
	"testing"
)

// TestBastionLinks checks AZ-NET-007 beyond its rule projects: a value not
// known statically is read as links on, and a private-only Bastion, which
// takes no connection from the internet, is not reported.
func TestBastionLinks(t *testing.T) {
	const host = `
variable "links" { type = bool }
resource "azurerm_bastion_host" "ops" {
  name                   = "ops"
  sku                    = "Premium"
  shareable_link_enabled = %s
  private_only_enabled   = %s
}
`
	for _, tc := range []struct {
		links, private string
		want           string // "" for no finding
	}{
		{"var.links", "false", "not known statically"},
		{"true", "false", "shareable_link_enabled = true"},
		{"true", "true", ""},
		{"false", "false", ""},
	} {
		src := strings.Replace(strings.Replace(host, "%s", tc.links, 1), "%s", tc.private, 1)
		got := activeOn(checkSource(t, src), RuleAzBastionLink, "azurerm_bastion_host.ops")
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("links %s, private only %s: reported: %s", tc.links, tc.private, got[0].Message)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0].Message, tc.want)):
			t.Errorf("links %s, private only %s: %q, want one saying %q", tc.links, tc.private, messages(got), tc.want)
		}
	}
}
