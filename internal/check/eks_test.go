package check

import (
	"context"
	"strings"
	"testing"
)

// TestEKSPublicAndPrivateEndpoint: a cluster whose API has public and
// private access answers the internet by its allow-list and its own
// network on interfaces in its subnets, behind the groups vpc_config names
// and the cluster group. It was read as public alone, so nothing in the
// VPC reached it, not even the bastion its group admits.
func TestEKSPublicAndPrivateEndpoint(t *testing.T) {
	m := model(t, "testdata/aws/eks-cluster")
	cluster := endpoint(t, m, "aws_eks_cluster.main")
	pub := m.subnets["aws_subnet.public"]
	for _, tc := range []struct {
		name string
		src  Source
		port int
		want bool
	}{
		{"bastion", m.SubnetSource(pub, "aws_security_group.bastion"), 443, true},
		{"no group", m.SubnetSource(pub), 443, false},
		{"bastion on SSH", m.SubnetSource(pub, "aws_security_group.bastion"), 22, false},
		// A member of the cluster group: all traffic, on 443 alone
		// since the API listens there only.
		{"cluster group", m.SubnetSource(pub, "aws_eks_cluster.main:cluster-security-group"), 443, true},
	} {
		r := m.Reach(tc.src, cluster, "tcp", tc.port)
		if r.Reachable != tc.want || len(r.Assumed) > 0 {
			t.Errorf("%s on %d: reachable %v (assumed %v), want %v: %s", tc.name, tc.port, r.Reachable, r.Assumed, tc.want, pathLine(r.Path))
		}
	}
	r := m.Reach(m.Internet(), cluster, "tcp", 443)
	if !r.Reachable || m.describe(r.From) != "198.51.100.0/24" {
		t.Errorf("internet: reachable %v from %v, want public_access_cidrs alone: %s", r.Reachable, r.From, pathLine(r.Path))
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/aws/eks-cluster"}}, "aws_eks_cluster.main")
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, a := range acc {
		srcs = append(srcs, a.Source)
	}
	// The nodes of the group on EKS's launch template are members of
	// the cluster group; those whose template names a group are not.
	want := "internet aws_eks_node_group.default (in aws_subnet.private)"
	if got := strings.Join(srcs, " "); got != want {
		t.Errorf("--reach sources: %s, want %s", got, want)
	}
	// A public API listens on 443 alone: no other port is reachable,
	// which --reach listed for every port it probes.
	acc, err = Reachability(context.Background(), Config{Paths: []string{"testdata/aws/eks-cluster"}}, "aws_eks_cluster.public")
	if err != nil {
		t.Fatal(err)
	}
	if len(acc) != 1 || acc[0].Source != "internet" || acc[0].Port != 443 {
		t.Errorf("public cluster: --reach lists %+v, want the internet on 443 alone", acc)
	}
}

// TestEKSClusterSecurityGroup: the nodes of a managed node group whose
// launch template names no group are in the group EKS makes for the
// cluster, which admits all traffic from its members and what the
// project's rules add to it (the bastion, on the kubelet); they were in
// no group at all, so nothing reached them. Nodes whose template names a
// group are in that one alone.
func TestEKSClusterSecurityGroup(t *testing.T) {
	m := model(t, "testdata/aws/eks-cluster")
	pub := m.subnets["aws_subnet.public"]
	priv := m.subnets["aws_subnet.private"]
	sg := "aws_eks_cluster.main:cluster-security-group"
	for _, tc := range []struct {
		group string
		src   Source
		proto string
		port  int
		want  bool
	}{
		{"aws_eks_node_group.default", m.SubnetSource(pub, "aws_security_group.bastion"), "tcp", 10250, true},
		{"aws_eks_node_group.default", m.SubnetSource(pub, "aws_security_group.bastion"), "tcp", 22, false},
		{"aws_eks_node_group.default", m.SubnetSource(priv, sg), "udp", 53, true},
		{"aws_eks_node_group.default", m.SubnetSource(priv, "aws_security_group.workers"), "tcp", 10250, false},
		{"aws_eks_node_group.own", m.SubnetSource(priv, sg), "tcp", 10250, false},
		{"aws_eks_node_group.own", m.SubnetSource(pub, "aws_security_group.bastion"), "tcp", 10250, false},
		{"aws_eks_node_group.own", m.SubnetSource(priv, "aws_security_group.workers"), "tcp", 10250, true},
	} {
		r := m.Reach(tc.src, endpoint(t, m, tc.group), tc.proto, tc.port)
		if r.Reachable != tc.want || len(r.Assumed) > 0 {
			t.Errorf("%s from %v on %s %d: reachable %v (assumed %v), want %v: %s", tc.group, tc.src.SGs, tc.proto, tc.port, r.Reachable, r.Assumed, tc.want, pathLine(r.Path))
		}
	}
	// The rule naming the group by cluster_security_group_id is read
	// from the code, not noted as computed after apply.
	rep := run(t, "testdata/aws/eks-cluster")
	for _, f := range rep.Findings {
		if f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, "cluster_security_group_id") {
			t.Errorf("%s", f.Message)
		}
	}
}
