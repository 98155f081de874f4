package check

import (
	"strings"
	"testing"
)

// wantMessages fails t unless the unsuppressed findings of rule on each
// address are exactly one whose message holds the text given ("" for
// none).
func wantMessages(t *testing.T, rep *Report, rule string, want map[string]string) {
	t.Helper()
	for addr, w := range want {
		got := activeOn(rep, rule, addr)
		switch {
		case w == "" && len(got) > 0:
			t.Errorf("%s on %s: %+v, want none", rule, addr, got)
		case w != "" && (len(got) != 1 || !strings.Contains(got[0].Message, w)):
			t.Errorf("%s on %s: %+v, want one saying %q", rule, addr, got, w)
		}
	}
}

// TestSageMakerNotebookInternet: a notebook instance with direct internet
// access (the provider's default) reaches and is reached from the
// internet outside its VPC's controls, and one that names no subnet runs
// in SageMaker's own network, which has internet access whatever the
// setting. A value not known statically is read as Enabled and said so;
// one in a case the provider refuses, and Disabled without a subnet, which
// SageMaker refuses, are CHECK-003.
func TestSageMakerNotebookInternet(t *testing.T) {
	rep := run(t, "testdata/aws/sagemaker-notebook")
	wantMessages(t, rep, RuleNotebookInternet, map[string]string{
		"aws_sagemaker_notebook_instance.default":     "SageMaker's own network",
		"aws_sagemaker_notebook_instance.vpc_enabled": "direct_internet_access = \"Enabled\"",
		"aws_sagemaker_notebook_instance.no_subnet":   "",
		"aws_sagemaker_notebook_instance.unknown":     "not known statically",
		"aws_sagemaker_notebook_instance.lower_case":  "",
		"aws_sagemaker_notebook_instance.closed":      "",
	})
	if f := findingOn(rep, RuleNotebookInternet, "aws_sagemaker_notebook_instance.unknown"); f != nil && f.Severity != High {
		t.Errorf("assumed finding at %v, want high", f.Severity)
	}
	wantMessages(t, rep, RuleRejected, map[string]string{
		"aws_sagemaker_notebook_instance.lower_case": "\"disabled\"",
		"aws_sagemaker_notebook_instance.no_subnet":  "without a subnet_id",
		"aws_sagemaker_notebook_instance.closed":     "",
	})
}

// TestTransitPlain: MSK clusters that take plaintext from clients or
// between brokers, Redis replication groups without transit encryption
// (unset is off) or in preferred mode, ElastiCache clusters outside a
// replication group without it (unset is off; serverless caches take TLS
// alone), and MemoryDB clusters with TLS off
// are AWS-ENC-003; their TLS peers are not. A client_broker not known
// statically is read as PLAINTEXT and said so; one in a case the provider
// refuses is CHECK-003.
func TestTransitPlain(t *testing.T) {
	rep := run(t, "testdata/aws/transit-plain")
	wantMessages(t, rep, RuleTransitPlain, map[string]string{
		"aws_msk_cluster.mixed":                       "TLS_PLAINTEXT",
		"aws_msk_cluster.plaintext":                   "\"PLAINTEXT\"",
		"aws_msk_cluster.in_cluster_plain":            "in_cluster = false",
		"aws_msk_cluster.unknown":                     "not known statically",
		"aws_msk_cluster.lower_case":                  "",
		"aws_msk_cluster.tls":                         "",
		"aws_elasticache_replication_group.unset":     "transit_encryption_enabled is not set",
		"aws_elasticache_replication_group.off":       "transit_encryption_enabled = false",
		"aws_elasticache_replication_group.preferred": "preferred",
		"aws_elasticache_replication_group.tls":       "",
		"aws_elasticache_cluster.single_memcached":    "transit_encryption_enabled is not set",
		"aws_elasticache_cluster.single_redis":        "transit_encryption_enabled is not set",
		"aws_elasticache_cluster.single_tls":          "",
		"aws_elasticache_cluster.member":              "",
		"aws_elasticache_serverless_cache.serverless": "",
		"aws_memorydb_cluster.plain":                  "tls_enabled = false",
		"aws_memorydb_cluster.tls":                    "",
	})
	wantMessages(t, rep, RuleRejected, map[string]string{
		"aws_msk_cluster.lower_case": "\"tls\"",
	})
}

// TestDocDBTLSParameter: a DocumentDB cluster whose cluster parameter
// group sets tls = disabled takes plaintext from clients; it was not
// reported. AWS's default groups, and a group that leaves tls alone,
// require TLS. A group named outside the scanned code, or whose tls is not
// known statically, is read as disabling it, and the finding says so.
func TestDocDBTLSParameter(t *testing.T) {
	rep := run(t, "testdata/aws/docdb-tls")
	wantMessages(t, rep, RuleTransitPlain, map[string]string{
		"aws_docdb_cluster.plain":         "tls = \"disabled\"",
		"aws_docdb_cluster.by_name":       "aws_docdb_cluster_parameter_group.plain",
		"aws_docdb_cluster.tls":           "",
		"aws_docdb_cluster.audit":         "",
		"aws_docdb_cluster.default_group": "",
		"aws_docdb_cluster.unset":         "",
		"aws_docdb_cluster.elsewhere":     "not in the scanned code",
		"aws_docdb_cluster.input":         "not known statically",
	})
}

// TestPrivateAPIOpen: a private REST API whose resource policy, inline or
// in aws_api_gateway_rest_api_policy, allows every principal without an
// aws:SourceVpce or aws:SourceVpc condition is reached through any VPC
// endpoint of any account. A condition on the endpoint or network, or a
// deny of every other one, bounds it; a regional API is not judged here,
// and one whose endpoint type is not known statically is read as private.
func TestPrivateAPIOpen(t *testing.T) {
	rep := run(t, "testdata/aws/private-api-open")
	wantMessages(t, rep, RulePrivateAPIOpen, map[string]string{
		"aws_api_gateway_rest_api.open":         "any VPC endpoint",
		"aws_api_gateway_rest_api.by_ip":        "aws_api_gateway_rest_api_policy.by_ip",
		"aws_api_gateway_rest_api.by_document":  "\"Everyone\"",
		"aws_api_gateway_rest_api.vpce":         "",
		"aws_api_gateway_rest_api.denied":       "",
		"aws_api_gateway_rest_api.regional":     "",
		"aws_api_gateway_rest_api.type_unknown": "read as PRIVATE",
	})
	if f := findingOn(rep, RulePrivateAPIOpen, "aws_api_gateway_rest_api.by_ip"); f != nil && !strings.Contains(f.Message, "not known statically") {
		t.Errorf("a policy read in part: %q does not say so", f.Message)
	}
}
