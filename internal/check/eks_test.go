package check

import (
	"context"
	"strings"
	"testing"

	"moat/internal/check/tf"
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

// TestEKSClusterSecurityGroupByID: a plan of a cluster that exists gives
// its cluster group's own ID, which rules and templates name it by: that
// is the group EKS made, not one outside the scanned code, which would be
// read as admitting everything.
func TestEKSClusterSecurityGroupByID(t *testing.T) {
	const id = "sg-0123456789abcdef0"
	m := Build([]tf.Resource{
		{Address: "aws_vpc.main", Type: "aws_vpc", Values: map[string]any{"id": "vpc-1", "cidr_block": "10.40.0.0/16"}},
		{Address: "aws_subnet.private", Type: "aws_subnet", Values: map[string]any{"id": "subnet-1", "vpc_id": "vpc-1", "cidr_block": "10.40.11.0/24"}},
		{Address: "aws_security_group.bastion", Type: "aws_security_group", Values: map[string]any{"id": "sg-b", "vpc_id": "vpc-1"}},
		{Address: "aws_security_group.db", Type: "aws_security_group", Values: map[string]any{"id": "sg-d", "vpc_id": "vpc-1",
			"ingress": []any{map[string]any{"protocol": "tcp", "from_port": 5432.0, "to_port": 5432.0, "security_groups": []any{id}}}}},
		{Address: "aws_security_group_rule.bastion_kubelet", Type: "aws_security_group_rule", Values: map[string]any{"type": "ingress",
			"protocol": "tcp", "from_port": 10250.0, "to_port": 10250.0, "security_group_id": id, "source_security_group_id": "sg-b"}},
		{Address: "aws_eks_cluster.main", Type: "aws_eks_cluster", Values: map[string]any{"name": "main",
			"vpc_config": []any{map[string]any{"subnet_ids": []any{"subnet-1"}, "cluster_security_group_id": id,
				"endpoint_public_access": false, "endpoint_private_access": true}}}},
		{Address: "aws_eks_node_group.default", Type: "aws_eks_node_group", Values: map[string]any{"cluster_name": "main", "subnet_ids": []any{"subnet-1"}}},
		{Address: "aws_instance.db", Type: "aws_instance", Values: map[string]any{"subnet_id": "subnet-1", "vpc_security_group_ids": []any{"sg-d"}}},
	})
	priv := m.subnets["aws_subnet.private"]
	nodes := endpoint(t, m, "aws_eks_node_group.default")
	for _, tc := range []struct {
		to   *Endpoint
		src  Source
		port int
		want bool
	}{
		{nodes, m.SubnetSource(priv, "aws_security_group.bastion"), 10250, true},
		{nodes, m.SubnetSource(priv, "aws_security_group.bastion"), 22, false},
		{nodes, m.SubnetSource(priv), 10250, false},
		// The database's group admits the cluster group's members.
		{endpoint(t, m, "aws_instance.db"), m.SubnetSource(priv, "aws_eks_cluster.main:cluster-security-group"), 5432, true},
		{endpoint(t, m, "aws_instance.db"), m.SubnetSource(priv, "aws_security_group.bastion"), 5432, false},
	} {
		r := m.Reach(tc.src, tc.to, "tcp", tc.port)
		if r.Reachable != tc.want || len(r.Assumed) > 0 {
			t.Errorf("%s from %v on %d: reachable %v (assumed %v), want %v: %s", tc.to.Addr, tc.src.SGs, tc.port, r.Reachable, r.Assumed, tc.want, pathLine(r.Path))
		}
	}
}

// TestEKSPrivateAccessUnknown: private access not known statically beside
// public access is read as on, and a path through the interfaces says so.
func TestEKSPrivateAccessUnknown(t *testing.T) {
	m := buildHCL(t, `
variable "private" {
  type = bool
}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.11.0/24"
}
resource "aws_security_group" "bastion" {
  vpc_id = aws_vpc.main.id
}
resource "aws_security_group" "api" {
  vpc_id = aws_vpc.main.id
  ingress {
    protocol        = "tcp"
    from_port       = 443
    to_port         = 443
    security_groups = [aws_security_group.bastion.id]
  }
}
resource "aws_eks_cluster" "main" {
  name     = "main"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids              = [aws_subnet.private.id]
    endpoint_private_access = var.private
    security_group_ids      = [aws_security_group.api.id]
  }
}
`)
	r := m.Reach(m.SubnetSource(m.subnets["aws_subnet.private"], "aws_security_group.bastion"), endpoint(t, m, "aws_eks_cluster.main"), "tcp", 443)
	if !r.Reachable || len(r.Assumed) == 0 || !strings.Contains(r.Assumed[0], "endpoint_private_access not known statically: assumed true") {
		t.Errorf("reachable %v, assumed %q; want reachable, assuming private access", r.Reachable, r.Assumed)
	}
}

// TestRemoteAccessGroupWorldOpen: the group EKS makes for a node group's
// remote_access without source_security_group_ids admits SSH from every
// address; with the nodes in a private subnet nothing reported it, though
// a group of the code's own admitting the same is AWS-NET-003. It is
// reported at the node group, high (attached, no path proven), and says
// EKS makes it; a node group naming its sources is not.
func TestRemoteAccessGroupWorldOpen(t *testing.T) {
	rep := run(t, "testdata/aws/eks-remote-access")
	got := activeOn(rep, RuleWorldOpen, "aws_eks_node_group.open")
	if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, "tcp 22 (SSH)") || !strings.Contains(got[0].Message, "remote_access") {
		t.Errorf("%s on the node group: %+v, want one at high naming tcp 22 and remote_access", RuleWorldOpen, got)
	}
	if got := activeOn(rep, RuleWorldOpen, "aws_eks_node_group.scoped"); len(got) != 0 {
		t.Errorf("%s on the node group that names its sources: %+v", RuleWorldOpen, got)
	}
}
