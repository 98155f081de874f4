package check

import (
	"context"
	"strings"
	"testing"
)

// Azure Cache for Redis Enterprise has no IP firewall and no public
// network access switch: a cluster no private endpoint reaches answers
// every address, AZ-NET-006 at medium; one reached through a private
// endpoint is reached there alone, on port 10000; a database speaking
// Plaintext and a cluster taking TLS 1.0 are AZ-TLS-001.
func TestRedisEnterprise(t *testing.T) {
	const dir = "testdata/azure/redis-enterprise"
	rep := run(t, dir)
	for _, addr := range []string{"azurerm_redis_enterprise_cluster.sessions", "azurerm_redis_enterprise_cluster.legacy"} {
		f := findingOn(rep, RuleAzServiceOpen, addr)
		if f == nil || f.Severity != Medium || !strings.Contains(f.Message, "no IP firewall") {
			t.Errorf("%s: %+v, want %s medium saying it has no IP firewall", addr, f, RuleAzServiceOpen)
		}
	}
	if f := findingOn(rep, RuleAzServiceOpen, "azurerm_redis_enterprise_cluster.queue"); f != nil {
		t.Errorf("a cluster reached through a private endpoint is reported: %s", f.Message)
	}
	if f := findingOn(rep, RuleAzWeakTLS, "azurerm_redis_enterprise_database.legacy"); f == nil || !strings.Contains(f.Message, "Plaintext") {
		t.Errorf("plaintext protocol: %+v, want %s", f, RuleAzWeakTLS)
	}
	if f := findingOn(rep, RuleAzWeakTLS, "azurerm_redis_enterprise_cluster.legacy"); f == nil || !strings.Contains(f.Message, "minimum_tls_version is 1.0") {
		t.Errorf("TLS 1.0: %+v, want %s", f, RuleAzWeakTLS)
	}
	for _, addr := range []string{"azurerm_redis_enterprise_database.sessions", "azurerm_redis_enterprise_database.queue", "azurerm_redis_enterprise_cluster.sessions"} {
		if f := findingOn(rep, RuleAzWeakTLS, addr); f != nil {
			t.Errorf("%s: TLS by default, reported: %s", addr, f.Message)
		}
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "azurerm_redis_enterprise_cluster.queue")
	if err != nil {
		t.Fatal(err)
	}
	if len(acc) == 0 || acc[0].Port != 10000 || !strings.Contains(pathText(acc[0].Path), "azurerm_private_endpoint.queue") {
		t.Errorf("--reach through the private endpoint: %+v", acc)
	}
}
