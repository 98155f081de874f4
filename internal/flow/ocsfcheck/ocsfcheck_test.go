package ocsfcheck

import (
	"strings"
	"testing"
)

const goodNetwork = `{"class_uid":4001,"class_name":"Network Activity","category_uid":4,"activity_id":2,"activity_name":"Close","type_uid":400102,` +
	`"time":1796416497200,"severity_id":1,"severity":"Informational","action_id":1,"action":"Allowed","disposition_id":1,"disposition":"Allowed",` +
	`"metadata":{"version":"1.3.0","uid":"25dfab","profiles":["security_control"],"product":{"name":"moat-mesh","vendor_name":"moat"}},` +
	`"src_endpoint":{"ip":"127.0.0.1","port":51852,"uid":"spiffe://example.org/svc/client","svc_name":"client"},` +
	`"dst_endpoint":{"ip":"127.0.0.1","port":45263,"uid":"spiffe://example.org/svc/web","svc_name":"web"},` +
	`"connection_info":{"uid":"c1","protocol_name":"tcp","protocol_num":6,"direction_id":1,"direction":"Inbound"},` +
	`"traffic":{"bytes_in":1206,"bytes_out":5138,"bytes":6344},"start_time":1796416497196,"end_time":1796416497200,"duration":4,` +
	`"tls":{"version":"TLSv1.3"},"firewall_rule":{"name":"client-to-web"},"unmapped":{"verdict":"allow","node":"n1"}}`

const goodHTTP = `{"class_uid":4002,"category_uid":4,"activity_id":3,"type_uid":400203,"time":1796416497200,"severity_id":3,` +
	`"action_id":2,"disposition_id":2,"metadata":{"version":"1.3.0","profiles":["security_control"],"product":{"vendor_name":"moat"}},` +
	`"src_endpoint":{"ip":"198.51.100.7"},"dst_endpoint":{"ip":"127.0.0.1","port":8443,"hostname":"shop.example.org"},` +
	`"http_request":{"http_method":"GET","url":{"path":"/","scheme":"https"},"uid":"r1"},"http_response":{"code":403},` +
	`"firewall_rule":{"name":"owasp-crs","uid":"942100"}}`

const goodFinding = `{"class_uid":2004,"category_uid":2,"activity_id":1,"type_uid":200401,"time":1796416497200,"severity_id":4,` +
	`"metadata":{"version":"1.3.0","product":{"name":"moat-detect","vendor_name":"moat"}},` +
	`"finding_info":{"uid":"moat/scan/x","title":"scan","types":["scan"],"analytic":{"uid":"scan","name":"scan","type_id":1,"type":"Rule"}}}`

func TestGoodRecords(t *testing.T) {
	for _, rec := range []string{goodNetwork, goodHTTP, goodFinding} {
		if err := Check([]byte(rec)); err != nil {
			t.Errorf("%v\n%s", err, rec)
		}
	}
}

// TestCheckRefuses mutates good records and expects the exact complaint.
func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, rec, from, to, want string
	}{
		{"required endpoint", goodNetwork, `"dst_endpoint":{"ip":"127.0.0.1","port":45263,"uid":"spiffe://example.org/svc/web","svc_name":"web"},`, ``, "network_activity.dst_endpoint: required, missing"},
		{"profile not declared", goodNetwork, `"profiles":["security_control"],`, ``, "network_activity.action_id: belongs to the security_control profile"},
		{"enum", goodNetwork, `"activity_id":2,"activity_name"`, `"activity_id":9,"activity_name"`, "activity_id: 9 is not one of the defined values"},
		{"type_uid", goodNetwork, `"type_uid":400102`, `"type_uid":400101`, "type_uid: 400101, want class_uid*100+activity_id = 400102"},
		{"seconds for milliseconds", goodNetwork, `"time":1796416497200`, `"time":1796416497`, "time: 1796416497 is not a time in milliseconds"},
		{"unknown attribute", goodNetwork, `"duration":4,`, `"duration":4,"bytes":9,`, "network_activity.bytes: not an attribute of network_activity"},
		{"object attribute type", goodNetwork, `"port":45263`, `"port":"45263"`, "dst_endpoint.port: want an integer"},
		{"object required", goodNetwork, `"tls":{"version":"TLSv1.3"}`, `"tls":{"cipher":"x"}`, "tls.version: required, missing"},
		{"direction enum", goodNetwork, `"direction_id":1,`, `"direction_id":7,`, "direction_id: 7 is not one of the defined values"},
		{"category", goodNetwork, `"category_uid":4`, `"category_uid":2`, "category_uid: 2, want 4"},
		{"schema version", goodNetwork, `"version":"1.3.0"`, `"version":"1.1.0"`, `metadata.version: "1.1.0", want "1.3.0"`},
		{"http response required", goodHTTP, `"http_response":{"code":403},`, ``, "http_activity.http_response: required, missing"},
		{"finding has no endpoints", goodFinding, `"finding_info"`, `"src_endpoint":{"ip":"1.2.3.4"},"finding_info"`, "detection_finding.src_endpoint: not an attribute of detection_finding"},
		{"finding_info required", goodFinding, `"finding_info":{"uid":"moat/scan/x",`, `"finding_infos":{"uid":"moat/scan/x",`, "finding_info: required, missing"},
		{"unknown class", goodFinding, `"class_uid":2004`, `"class_uid":2001`, "class_uid 2001 is not a class moat writes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := strings.Replace(tc.rec, tc.from, tc.to, 1)
			if rec == tc.rec {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			err := Check([]byte(rec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
