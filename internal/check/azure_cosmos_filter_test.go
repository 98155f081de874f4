package check

import (
	"strings"
	"testing"
)

// TestAzureCosmosFilterInvalid checks that an ip_range_filter entry that
// is neither an address nor a CIDR range ("office", a first-last range,
// a /33) is said to be rejected (CHECK-003), naming it, and read at its
// worst: the account admits every address (AZ-NET-006), and the finding
// says why. It was dropped in silence, so a filter of such an entry alone
// was read as admitting nothing.
func TestAzureCosmosFilterInvalid(t *testing.T) {
	for _, tc := range []struct{ name, filter, bad string }{
		{"a name, as a list", `["office"]`, "office"},
		{"a first-last range beside an office", `["203.0.113.0/24", "198.51.100.1-198.51.100.9"]`, "198.51.100.1-198.51.100.9"},
		{"a prefix too long, in a 3.x string", `"203.0.113.0/24,10.0.0.0/33"`, "10.0.0.0/33"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, "resource \"azurerm_cosmosdb_account\" \"c\" {\n  name = \"c\"\n  ip_range_filter = "+tc.filter+"\n}\n")
			rej := activeOn(rep, RuleRejected, "azurerm_cosmosdb_account.c")
			if len(rej) != 1 || !strings.Contains(rej[0].Message, `"`+tc.bad+`"`) || !strings.Contains(rej[0].Message, "ip_range_filter") {
				t.Errorf("want one %s naming ip_range_filter %q, got %+v", RuleRejected, tc.bad, rej)
			}
			got := activeOn(rep, RuleAzServiceOpen, "azurerm_cosmosdb_account.c")
			want := `ip_range_filter holds "` + tc.bad + `", which is not an address or a CIDR range (CHECK-003): read as admitting every address`
			if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, want) {
				t.Errorf("want one medium %s saying %q, got %+v", RuleAzServiceOpen, want, got)
			}
		})
	}
}
