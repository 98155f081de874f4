package check

import (
	"context"
	"strings"
	"testing"
)

// TestEMRClusterNodes checks that an EMR cluster's master and core nodes
// are machines in its subnet behind their groups: the master, in a public
// subnet, is reached from the internet on SSH, and from the office on the
// port of a group named among additional_master_security_groups; the core
// nodes, whose group admits the VPC alone, are not reached from it.
func TestEMRClusterNodes(t *testing.T) {
	const dir = "testdata/aws/emr"
	rep := run(t, dir)
	got := activeOn(rep, RuleExposedPort, "aws_emr_cluster.spark")
	if len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "tcp 22 (SSH)") {
		t.Errorf("%s on the cluster: %+v, want one critical for SSH", RuleExposedPort, got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "aws_emr_cluster.spark"); len(got) != 0 {
		t.Errorf("the cluster is noted as not evaluated: %+v", got)
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_emr_cluster.spark.master")
	if err != nil {
		t.Fatal(err)
	}
	notebook := false
	for _, a := range acc {
		if a.Source == "internet" && a.Port == 8888 && strings.Contains(a.Range, "198.51.100.0/24") {
			notebook = true
		}
	}
	if !notebook {
		t.Errorf("the office does not reach the master's notebook port: %+v", acc)
	}
	core, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_emr_cluster.spark.core")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range core {
		if a.Source == "internet" {
			t.Errorf("the internet reaches the core nodes: %+v", a)
		}
	}
}
