package check

import (
	"context"
	"strings"
	"testing"
)

// Azure Managed Redis is read as the other Azure data stores are: public
// network access on (its default, or not known statically) with no IP
// firewall to narrow it is AZ-NET-006 at medium, saying whether access keys
// open it besides Entra ID; public access off is not reported; a database
// whose client protocol is Plaintext is AZ-TLS-001; a private endpoint to
// one puts its port, 10000, in the endpoint's subnet for --reach.
func TestManagedRedis(t *testing.T) {
	const dir = "testdata/azure/managed-redis"
	rep := run(t, dir)
	for addr, want := range map[string]string{
		"azurerm_managed_redis.sessions": "access_keys_authentication_enabled = true",
		"azurerm_managed_redis.features": "public_network_access is not known statically: read as Enabled",
	} {
		f := findingOn(rep, RuleAzServiceOpen, addr)
		if f == nil || f.Severity != Medium || !strings.Contains(f.Message, want) || !strings.Contains(f.Message, "no IP firewall") {
			t.Errorf("%s: %+v, want %s medium saying %q", addr, f, RuleAzServiceOpen, want)
		}
	}
	if f := findingOn(rep, RuleAzServiceOpen, "azurerm_managed_redis.features"); f != nil && !strings.Contains(f.Message, "only Entra ID") {
		t.Errorf("access keys off by default: %s", f.Message)
	}
	if f := findingOn(rep, RuleAzServiceOpen, "azurerm_managed_redis.jobs"); f != nil {
		t.Errorf("public access off is reported: %s", f.Message)
	}
	if f := findingOn(rep, RuleAzWeakTLS, "azurerm_managed_redis.jobs"); f == nil || !strings.Contains(f.Message, "Plaintext") {
		t.Errorf("plaintext protocol: %+v, want %s", f, RuleAzWeakTLS)
	}
	for _, addr := range []string{"azurerm_managed_redis.sessions", "azurerm_managed_redis.features"} {
		if f := findingOn(rep, RuleAzWeakTLS, addr); f != nil {
			t.Errorf("%s: TLS by default, reported: %s", addr, f.Message)
		}
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_managed_redis.jobs")
	if err != nil {
		t.Fatal(err)
	}
	if len(acc) == 0 || acc[0].Port != 10000 || !strings.Contains(pathText(acc[0].Path), "azurerm_private_endpoint.jobs") {
		t.Errorf("--reach through the private endpoint: %+v", acc)
	}
}
