package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIManagementVNetMode: an API Management service whose
// virtual_network_type is Internal was noted as public by default; its
// gateway answers only inside its virtual network. External, None or
// unset leave it public; a mode not known statically is read as public,
// and the note says so.
func TestAPIManagementVNetMode(t *testing.T) {
	const unset = "it leaves public_network_access_enabled unset: on by default"
	for _, tc := range []struct {
		mode string // the virtual_network_type line, "" for none
		want string // in the note; "" for no note
	}{
		{`virtual_network_type = "Internal"`, ""},
		{`virtual_network_type = "External"`, unset},
		{`virtual_network_type = "None"`, unset},
		{``, unset},
		{`virtual_network_type = var.mode`, "virtual_network_type (not known statically): read as public"},
	} {
		dir := t.TempDir()
		src := `variable "mode" {}
resource "azurerm_api_management" "api" {
  name                = "api"
  location            = "westeurope"
  resource_group_name = "rg"
  publisher_name      = "p"
  publisher_email     = "p@example.com"
  sku_name            = "Developer_1"
  ` + tc.mode + `
}
`
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		msg, ok := notModelled(run(t, dir))["azurerm_api_management.api"]
		switch {
		case tc.want == "" && ok:
			t.Errorf("%q: noted as public: %s", tc.mode, msg)
		case tc.want != "" && !strings.Contains(msg, tc.want):
			t.Errorf("%q: note %q, want one saying %q", tc.mode, msg, tc.want)
		}
	}
}
