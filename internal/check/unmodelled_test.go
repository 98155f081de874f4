package check

import (
	"strings"
	"testing"
)

// notModelled returns the notes a report gives on resources the network
// model does not read, by address.
func notModelled(rep *Report) map[string]string {
	out := map[string]string{}
	for _, f := range rep.Findings {
		if f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, "is not in the network model") {
			out[f.Address] = f.Message
		}
	}
	return out
}

// TestUnmodelledResourcesNoted: a resource that puts something in the
// network (groups it attaches, a public address or public access it turns
// on) but whose type the model does not read was passed over in silence: a
// public SFTP endpoint, an Airflow web server on the internet, a SQL
// managed instance's public data endpoint. Each is now a note saying what
// is not evaluated; what the model reads, or what takes no connection (a
// Lambda function's interfaces, a NAT gateway), is not.
func TestUnmodelledResourcesNoted(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want map[string]string // address → the attribute the note names
		none []string
	}{
		{"testdata/aws/not-modelled", map[string]string{
			"aws_transfer_server.drop":       "endpoint_type = PUBLIC",
			"aws_db_proxy.orders":            "vpc_security_group_ids",
			"aws_mwaa_environment.pipelines": "security_group_ids, webserver_access_mode = PUBLIC_ONLY",
		}, []string{"aws_lambda_function.loader", "aws_nat_gateway.out", "aws_security_group.proxy"}},
		{"testdata/azure/not-modelled", map[string]string{
			"azurerm_bastion_host.ops":                  "ip_configuration.subnet_id, public_ip_address_id",
			"azurerm_mssql_managed_instance.ledger":     "public_data_endpoint_enabled = true",
			"azurerm_kubernetes_cluster_node_pool.edge": "node_public_ip_enabled = true",
		}, []string{"azurerm_subnet_network_security_group_association.data", "azurerm_public_ip.bastion"}},
	} {
		got := notModelled(run(t, tc.dir))
		for addr, attrs := range tc.want {
			if msg, ok := got[addr]; !ok || !strings.Contains(msg, "(it sets "+attrs+")") {
				t.Errorf("%s: note on %s: %q, want one naming %s", tc.dir, addr, msg, attrs)
			}
		}
		for _, addr := range tc.none {
			if msg, ok := got[addr]; ok {
				t.Errorf("%s: %s, which the model accounts for, noted: %s", tc.dir, addr, msg)
			}
		}
	}
}
