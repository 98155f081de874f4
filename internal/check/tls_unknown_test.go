package check

import (
	"strings"
	"testing"
)

// TestTLSVersionNotKnownStatically: a minimum TLS version or TLS policy
// given at apply time was read as safe (an Azure store's, a search
// domain's) or as unset (a listener's ssl_policy, "the default"). Each is
// now read at its worst, TLS 1.0, and the finding says it was not known.
func TestTLSVersionNotKnownStatically(t *testing.T) {
	for _, c := range []struct {
		dir, rule string
		addrs     []string
	}{
		{"testdata/aws/tls-unknown", RuleWeakTLS, []string{"aws_lb_listener.https", "aws_opensearch_domain.search"}},
		{"testdata/azure/tls-unknown", RuleAzWeakTLS, []string{"azurerm_storage_account.data", "azurerm_redis_cache.cache", "azurerm_mssql_server.sql", "azurerm_linux_web_app.app", "azurerm_postgresql_server.pg"}},
	} {
		rep := run(t, c.dir)
		for _, a := range c.addrs {
			got := activeOn(rep, c.rule, a)
			if len(got) != 1 || !strings.Contains(got[0].Message, "not known statically: read as") {
				t.Errorf("%s on %s: %+v, want one saying it is not known statically", c.rule, a, got)
			}
		}
	}
}
