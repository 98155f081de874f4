package check

import (
	"encoding/json"
	"slices"

	"moat/internal/check/tf"
)

// batchEnvironments places the workers of a managed AWS Batch compute
// environment in its compute_resources subnets behind its
// security_group_ids (else its launch template's groups). EC2 and Spot
// workers get a public address as an auto scaling group's instances do:
// as the launch template says, else as the subnet maps them. A Fargate
// job gets one only when its job definition assigns one
// (networkConfiguration.assignPublicIp = "ENABLED"); with no Fargate job
// definition in the scanned code, or one whose container properties are
// not known statically, that is assumed, and said so.
func (m *Model) batchEnvironments(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	fargatePublic, fargateAssumed := batchFargatePublicIP(byType["aws_batch_job_definition"])
	for _, r := range byType["aws_batch_compute_environment"] {
		cr := block(r.Values, "compute_resources")
		if cr == nil {
			if unknown(r.Values, "compute_resources") {
				m.note(r, "compute_resources not known statically: its workers are not placed in the network model")
			}
			continue // unmanaged: its instances are launched elsewhere
		}
		e := &Endpoint{Addr: r.Address, Kind: "Batch workers", Res: r}
		e.Subnets = m.subnetsIn(e, cr, "subnets")
		switch typ := str(cr, "type"); {
		case unknown(cr, "type") || typ == "FARGATE" || typ == "FARGATE_SPOT":
			m.attachSGs(e, cr, "security_group_ids")
			if fargatePublic != "" {
				e.Public, e.PublicAssumed, e.Why = true, fargateAssumed, fargatePublic
			}
		default:
			t, known := m.launchTemplate(block(cr, "launch_template"))
			if has(cr, "security_group_ids") {
				m.attachSGs(e, cr, "security_group_ids")
			} else {
				m.templateSGs(e, t, known)
			}
			switch why, decided := templateDecides(t); {
			case !known:
				why, _, assumed := m.templateNotKnownPublicIP(cr, "subnets")
				e.Public, e.PublicAssumed, e.Why = why != "", assumed, why
			case decided:
				e.Public, e.Why = why != "", why
			default:
				why, assumed := m.subnetsPublicIP(cr, "subnets")
				e.Public, e.PublicAssumed, e.Why = why != "", assumed, why
			}
		}
		add(e)
	}
}

// batchFargatePublicIP says whether Fargate jobs may get public addresses
// from the job definitions defs: why is empty when none assigns one.
func batchFargatePublicIP(defs []*tf.Resource) (why string, assumed bool) {
	const elsewhere = "no Fargate job definition is in the scanned code: a job defined elsewhere may assign a public address (assignPublicIp), assumed"
	fargate := 0
	for _, d := range defs {
		caps, _ := strs(d.Values, "platform_capabilities")
		if !unknown(d.Values, "platform_capabilities") && !slices.Contains(caps, "FARGATE") {
			continue
		}
		fargate++
		if unknown(d.Values, "container_properties") {
			return d.Address + ": container_properties not known statically: assumed to assign a public address", true
		}
		var props struct {
			NetworkConfiguration struct {
				AssignPublicIP string `json:"assignPublicIp"`
			} `json:"networkConfiguration"`
		}
		if json.Unmarshal([]byte(str(d.Values, "container_properties")), &props) == nil && props.NetworkConfiguration.AssignPublicIP == "ENABLED" {
			return "job definition " + d.Address + " assigns a public address (assignPublicIp = ENABLED)", false
		}
	}
	if fargate == 0 {
		return elsewhere, true
	}
	return "", false
}
