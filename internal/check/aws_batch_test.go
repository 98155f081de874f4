package check

import (
	"strings"
	"testing"
)

// TestBatchComputeEnvironments checks that the workers of AWS Batch
// compute environments are endpoints: EC2 workers behind a group open to
// SSH in a subnet that maps public addresses were only noted as outside
// the model. Fargate jobs get a public address only when a job definition
// assigns one; the project's only definition does not.
func TestBatchComputeEnvironments(t *testing.T) {
	rep := run(t, "testdata/aws/batch-compute")
	ec2 := activeOn(rep, RuleExposedPort, "aws_batch_compute_environment.ec2")
	if len(ec2) != 1 || ec2[0].Severity != Critical || !strings.Contains(ec2[0].Message, "tcp 22 (SSH) is reachable") {
		t.Errorf("EC2 workers with SSH open on public addresses: %+v, want one critical", ec2)
	}
	if got := activeOn(rep, RuleExposedPort, "aws_batch_compute_environment.fargate"); len(got) > 0 {
		t.Errorf("Fargate jobs without public addresses: %+v, want none", got)
	}
	for _, f := range active(rep, RuleNotEvaluated) {
		if strings.Contains(f.Message, "not in the network model") {
			t.Errorf("compute environment left outside the model: %s: %s", f.Address, f.Message)
		}
	}
}

// TestBatchFargatePublicJobs checks that Fargate jobs whose job
// definition assigns public addresses are reached from the internet
// through their compute environment's group.
func TestBatchFargatePublicJobs(t *testing.T) {
	rep := run(t, "testdata/aws/batch-fargate-public")
	got := activeOn(rep, RuleExposedPort, "aws_batch_compute_environment.fargate")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH) is reachable") {
		t.Errorf("Fargate jobs with public addresses and SSH open: %+v, want one critical", got)
	}
}
