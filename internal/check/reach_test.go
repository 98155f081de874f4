package check

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"moat/internal/check/tf"
)

// network is a public subnet with an instance whose group admits SSH from
// anywhere; tests add an ACL or a peer.
const network = `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.1.0/24"
  map_public_ip_on_launch = true
}
resource "aws_route" "default" {
  route_table_id         = aws_vpc.main.main_route_table_id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0", "10.0.0.0/8"]
  }
}
resource "aws_instance" "host" {
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.ssh.id]
}
`

func buildHCL(t *testing.T, src string) *Model {
	t.Helper()
	p, err := tf.LoadDir(fstest.MapFS{"main.tf": {Data: []byte(src)}}, ".", tf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Build(p.Resources)
}

func acl(in, out string) string {
	return `
resource "aws_network_acl" "public" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.public.id]
` + in + out + `
}
`
}

func TestReachNACL(t *testing.T) {
	allowOut := `
  egress {
    rule_no    = 100
    action     = "allow"
    protocol   = "tcp"
    from_port  = 1024
    to_port    = 65535
    cidr_block = "0.0.0.0/0"
  }`
	for _, tc := range []struct {
		name, acl string
		reach     bool
		block     string
	}{
		{"no ACL: the main table's default route and the default ACL", "", true, ""},
		{"deny before allow", acl(`
  ingress {
    rule_no    = 200
    action     = "allow"
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidr_block = "0.0.0.0/0"
  }
  ingress {
    rule_no    = 100
    action     = "deny"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = "0.0.0.0/0"
  }`, allowOut), false, "rule 100 denies"},
		{"allow before deny", acl(`
  ingress {
    rule_no    = 100
    action     = "allow"
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidr_block = "0.0.0.0/0"
  }
  ingress {
    rule_no    = 200
    action     = "deny"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = "0.0.0.0/0"
  }`, allowOut), true, ""},
		{"stateless: no egress for the return traffic", acl(`
  ingress {
    rule_no    = 100
    action     = "allow"
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidr_block = "0.0.0.0/0"
  }`, ""), false, "outbound (return traffic"},
		{"a deny of half the internet leaves the other half", acl(`
  ingress {
    rule_no    = 100
    action     = "deny"
    protocol   = "tcp"
    from_port  = 22
    to_port    = 22
    cidr_block = "0.0.0.0/1"
  }
  ingress {
    rule_no    = 110
    action     = "allow"
    protocol   = "tcp"
    from_port  = 0
    to_port    = 65535
    cidr_block = "0.0.0.0/0"
  }`, allowOut), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := buildHCL(t, network+tc.acl)
			r := m.Reach(m.Internet(), m.Endpoints[0], "tcp", 22)
			if r.Reachable != tc.reach {
				t.Fatalf("reachable = %v, want %v; path %v", r.Reachable, tc.reach, r.Path)
			}
			if tc.block != "" && !strings.Contains(r.Path[len(r.Path)-1].Detail, tc.block) {
				t.Errorf("blocking hop %v, want %q", r.Path[len(r.Path)-1], tc.block)
			}
			if tc.name == "a deny of half the internet leaves the other half" && strings.Contains(m.describe(r.From), "0.0.0.0/1") {
				t.Errorf("denied half still among sources: %s", m.describe(r.From))
			}
		})
	}
}

func TestReachPeeredVPC(t *testing.T) {
	peer := `
resource "aws_vpc" "peer" {
  cidr_block = "10.9.0.0/16"
}
resource "aws_vpc_peering_connection" "p" {
  vpc_id      = aws_vpc.main.id
  peer_vpc_id = aws_vpc.peer.id
}
`
	m := buildHCL(t, network+peer)
	var pv *VPC
	for _, v := range m.VPCs {
		if v.Addr == "aws_vpc.peer" {
			pv = v
		}
	}
	r := m.Reach(m.VPCSource(pv), m.Endpoints[0], "tcp", 22)
	if r.Reachable || !strings.Contains(r.Path[len(r.Path)-1].Detail, "no return route") {
		t.Fatalf("without a route back the peer must not reach: %v", r.Path)
	}
	route := `
resource "aws_route" "to_peer" {
  route_table_id            = aws_vpc.main.main_route_table_id
  destination_cidr_block    = "10.9.0.0/16"
  vpc_peering_connection_id = aws_vpc_peering_connection.p.id
}
`
	m = buildHCL(t, network+peer+route)
	for _, v := range m.VPCs {
		if v.Addr == "aws_vpc.peer" {
			pv = v
		}
	}
	r = m.Reach(m.VPCSource(pv), m.Endpoints[0], "tcp", 22)
	if !r.Reachable {
		t.Fatalf("peer with a return route should reach 22 (admitted from 10.0.0.0/8): %v", r.Path)
	}
	if got := m.describe(r.From); got != "10.9.0.0/16" {
		t.Errorf("sources %s, want 10.9.0.0/16", got)
	}
}

func TestReachTransitGateway(t *testing.T) {
	base := network + `
resource "aws_vpc" "peer" {
  cidr_block = "10.9.0.0/16"
}
resource "aws_ec2_transit_gateway" "t" {}
resource "aws_ec2_transit_gateway_vpc_attachment" "main" {
  transit_gateway_id = aws_ec2_transit_gateway.t.id
  vpc_id             = aws_vpc.main.id
}
resource "aws_route" "to_peer" {
  route_table_id         = aws_vpc.main.main_route_table_id
  destination_cidr_block = "10.9.0.0/16"
  transit_gateway_id     = aws_ec2_transit_gateway.t.id
}
`
	attach := `
resource "aws_ec2_transit_gateway_vpc_attachment" "peer" {
  transit_gateway_id = aws_ec2_transit_gateway.t.id
  vpc_id             = aws_vpc.peer.id
}
`
	for _, tc := range []struct {
		name  string
		src   string
		reach bool
	}{
		{"peer VPC not attached", base, false},
		{"both attached", base + attach, true},
	} {
		m := buildHCL(t, tc.src)
		var pv *VPC
		for _, v := range m.VPCs {
			if v.Addr == "aws_vpc.peer" {
				pv = v
			}
		}
		if r := m.Reach(m.VPCSource(pv), m.Endpoints[0], "tcp", 22); r.Reachable != tc.reach {
			t.Errorf("%s: reachable = %v, want %v: %v", tc.name, r.Reachable, tc.reach, r.Path)
		}
	}
}

func TestWorldOpenNACL(t *testing.T) {
	rule := func(no int, action string, from, to int) string {
		return fmt.Sprintf(`
  ingress {
    rule_no    = %d
    action     = "%s"
    protocol   = "tcp"
    from_port  = %d
    to_port    = %d
    cidr_block = "0.0.0.0/0"
  }`, no, action, from, to)
	}
	for _, tc := range []struct {
		name, in string
		want     string
	}{
		{"everything open", rule(100, "allow", 0, 65535), "tcp 0-79"},
		{"only web and ephemeral", rule(100, "allow", 443, 443) + rule(110, "allow", 1024, 65535), ""},
		{"SSH denied first, then all allowed", rule(90, "deny", 0, 1023) + rule(100, "allow", 0, 65535), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := buildHCL(t, network+acl(tc.in, ""))
			fs := newFindings()
			m.worldOpen(fs)
			var got []string
			for _, f := range fs.list {
				if f.Address == "aws_network_acl.public" {
					got = append(got, f.Message)
				}
			}
			if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
				t.Errorf("ACL findings %q, want one containing %q", got, tc.want)
			}
		})
	}
}

// TestWriteAccessGroupsPorts checks that --reach prints on one line the
// ports of one protocol that a source reaches from the same addresses by
// the same path under the same assumptions, and keeps apart a port reached
// by another path, another protocol, or under an assumption.
func TestWriteAccessGroupsPorts(t *testing.T) {
	direct := []Hop{{Kind: "source", Detail: "subnet a"}, {Addr: "vm"}}
	other := []Hop{{Kind: "source", Detail: "subnet a"}, {Addr: "lb"}, {Addr: "vm"}}
	acc := []Access{
		{Source: "internet", Range: "every IPv4 internet address", Proto: "tcp", Port: 22, Path: direct},
		{Source: "subnet a", Range: "10.0.1.0/24", Proto: "all", Path: direct},
		{Source: "subnet a", Range: "10.0.1.0/24", Proto: "tcp", Port: 22, Path: direct},
		{Source: "subnet a", Range: "10.0.1.0/24", Proto: "tcp", Port: 80, Path: other},
		{Source: "subnet a", Range: "10.0.1.0/24", Proto: "tcp", Port: 3389, Path: direct},
		{Source: "subnet a", Range: "10.0.1.0/24", Proto: "tcp", Port: 5432, Path: direct, Assumed: []string{"x not known statically"}},
		{Source: "subnet a", Range: "10.0.1.0/24", Proto: "udp", Port: 53, Path: direct},
	}
	var b strings.Builder
	if err := WriteAccess(&b, "vm", acc, "text"); err != nil {
		t.Fatal(err)
	}
	want := `vm is reachable from:

  internet
    tcp 22 (SSH) from every IPv4 internet address
      path: subnet a → vm

  subnet a
    all traffic (every protocol and port) from 10.0.1.0/24
      path: subnet a → vm
    tcp 22 (SSH), 3389 (RDP) from 10.0.1.0/24
      path: subnet a → vm
    tcp 80 from 10.0.1.0/24
      path: subnet a → lb → vm
    tcp 5432 (PostgreSQL) from 10.0.1.0/24
      path: subnet a → vm
      assumed: x not known statically
    udp 53 from 10.0.1.0/24
      path: subnet a → vm
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
