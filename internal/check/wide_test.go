package check

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestWideRangesAreTheInternet checks that a public range wider than any
// one network holds (more than a /8 of IPv4) is judged as the internet by
// security groups, network ACLs, NSGs and database firewalls alike, and
// that a /8 or a private range is not.
func TestWideRangesAreTheInternet(t *testing.T) {
	aws := run(t, "testdata/aws/wide-ranges")
	if got := activeOn(aws, RuleWorldOpen, "aws_security_group.wide"); len(got) != 1 || got[0].Severity != Critical || !strings.Contains(got[0].Message, "128.0.0.0/1") {
		t.Errorf("%s on a group admitting 128.0.0.0/1 on SSH: %+v, want one critical naming the range", RuleWorldOpen, got)
	}
	if got := activeOn(aws, RuleWorldOpen, "aws_network_acl.public"); len(got) != 1 {
		t.Errorf("%s on an ACL admitting 128.0.0.0/1 on SSH: %+v, want one", RuleWorldOpen, got)
	}
	if got := activeOn(aws, RuleWorldOpen, "aws_security_group.private"); len(got) != 0 {
		t.Errorf("%s on a group admitting 10.0.0.0/8: %+v, want none", RuleWorldOpen, got)
	}
	az := run(t, "testdata/azure/wide-ranges")
	for _, addr := range []string{"azurerm_postgresql_flexible_server_firewall_rule.half", "azurerm_redis_firewall_rule.span"} {
		if got := activeOn(az, RuleAzFirewallOpen, addr); len(got) != 1 || got[0].Severity != Critical {
			t.Errorf("%s on %s: %+v, want one critical", RuleAzFirewallOpen, addr, got)
		}
	}
	if got := activeOn(az, RuleAzFirewallOpen, "azurerm_mssql_firewall_rule.one"); len(got) != 0 {
		t.Errorf("%s on a rule of one /8: %+v, want none", RuleAzFirewallOpen, got)
	}
	if got := activeOn(az, RuleNSGWorldOpen, "azurerm_network_security_group.wide"); len(got) != 1 || !strings.Contains(got[0].Message, "0.0.0.0/1") {
		t.Errorf("%s on an NSG admitting 0.0.0.0/1 on SSH: %+v, want one naming the range", RuleNSGWorldOpen, got)
	}
	if got := activeOn(az, RuleNSGWorldOpen, "azurerm_network_security_group.private"); len(got) != 0 {
		t.Errorf("%s on an NSG admitting 10.0.0.0/8: %+v, want none", RuleNSGWorldOpen, got)
	}
}

// TestRedisFirewallZeroAdmitsNoOne checks that a Redis firewall rule from
// 0.0.0.0 to 0.0.0.0 is not read as Azure SQL's "Azure services" rule:
// Azure Cache for Redis gives it no such meaning, and it admits no client,
// while the cache, having a rule, no longer admits every address.
func TestRedisFirewallZeroAdmitsNoOne(t *testing.T) {
	rep := run(t, "testdata/azure/wide-ranges")
	if got := activeOn(rep, RuleAzFirewallOpen, "azurerm_redis_firewall_rule.zero"); len(got) != 0 {
		t.Errorf("%s on a Redis rule 0.0.0.0-0.0.0.0: %+v, want none", RuleAzFirewallOpen, got)
	}
	if got := activeOn(rep, RuleAzServiceOpen, "azurerm_redis_cache.quiet"); len(got) != 0 {
		t.Errorf("%s on a cache with a firewall rule: %+v, want none", RuleAzServiceOpen, got)
	}
}

// TestCIDRBlocksGivenAString checks that a list attribute of a security
// group rule given one string, which Terraform refuses, is reported so.
func TestCIDRBlocksGivenAString(t *testing.T) {
	rep := run(t, "testdata/aws/cidr-string")
	for _, c := range []struct{ addr, attr string }{{"aws_security_group.web", "cidr_blocks"}, {"aws_security_group_rule.db", "ipv6_cidr_blocks"}} {
		got := activeOn(rep, RuleRejected, c.addr)
		if len(got) != 1 || !strings.Contains(got[0].Message, c.attr) {
			t.Errorf("%s on %s: %+v, want one naming %s", RuleRejected, c.addr, got, c.attr)
		}
	}
}

// TestPeeringWithoutNetworkAccess checks that a peering that turns
// allow_virtual_network_access off leaves the remote network out of the
// local one's VirtualNetwork tag: an NSG admitting the tag alone does not
// admit it, while a peer whose peering leaves it on is admitted.
func TestPeeringWithoutNetworkAccess(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/azure/peering-no-access"}}, "azurerm_postgresql_flexible_server.orders")
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]bool{}
	for _, a := range acc {
		if a.Port == 5432 {
			from[a.Source] = true
		}
	}
	if from["azurerm_subnet.app"] || from["azurerm_virtual_network.app"] {
		t.Errorf("the app network reaches the server through a peering without network access: %+v", acc)
	}
	if !from["azurerm_subnet.ops"] && !from["azurerm_virtual_network.ops"] {
		t.Errorf("the ops network does not reach the server through a peering with network access: %+v", acc)
	}
}

// TestTransitGatewayRouteTables checks that a transit gateway's route
// tables are read: VPCs attached to one gateway whose tables do not route
// between them do not reach each other through it, and when a table is
// not known statically every attached VPC reaches every other, the path
// and a note saying so.
func TestTransitGatewayRouteTables(t *testing.T) {
	reaches := func(dir string) (bool, string) {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.orders")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acc {
			if (a.Source == "aws_subnet.a" || a.Source == "aws_vpc.a") && a.Port == 5432 {
				return true, fmt.Sprint(a.Path)
			}
		}
		return false, ""
	}
	if ok, path := reaches("testdata/aws/tgw-default-table"); !ok || !strings.Contains(path, "route tables routing") {
		t.Errorf("VPC a through a transit gateway's default table: reached %v, path %q, want reached through its tables", ok, path)
	}
	if ok, path := reaches("testdata/aws/tgw-route-tables"); ok {
		t.Errorf("VPC a reaches the database through a transit gateway whose tables do not route to it: %s", path)
	}
	ok, path := reaches("testdata/aws/tgw-route-tables-unknown")
	if !ok || !strings.Contains(path, "route tables not read") {
		t.Errorf("VPC a through a transit gateway whose table is not known statically: reached %v, path %q, want reached and the path saying the tables are not read", ok, path)
	}
	wantNotes(t, run(t, "testdata/aws/tgw-route-tables-unknown"), "route tables not read")
	if got := activeOn(run(t, "testdata/aws/tgw-route-tables"), RuleNotEvaluated, "aws_ec2_transit_gateway.hub"); len(got) != 0 {
		t.Errorf("notes on a gateway whose tables are read: %+v", got)
	}
}

// TestAppRestrictionsWide checks that App Service access restrictions are
// judged by the one measure of the internet at large: an allow of half
// the internet, of a comma-separated list or of entries that together
// span more than a /8 admits it; an office's range does not.
func TestAppRestrictionsWide(t *testing.T) {
	rep := run(t, "testdata/azure/app-wide-restrictions")
	for _, addr := range []string{"azurerm_linux_web_app.half", "azurerm_linux_web_app.listed", "azurerm_linux_web_app.split"} {
		if got := activeOn(rep, RuleAzAppOpen, addr); len(got) != 1 || !strings.Contains(got[0].Message, "internet at large") {
			t.Errorf("%s on %s: %+v, want one naming the internet at large", RuleAzAppOpen, addr, got)
		}
	}
	if got := activeOn(rep, RuleAzAppOpen, "azurerm_linux_web_app.office"); len(got) != 0 {
		t.Errorf("%s on an app allowing an office: %+v, want none", RuleAzAppOpen, got)
	}
}

// TestWideIPv6RangesAreTheInternet checks that IPv6 has its own measure of
// the internet at large: ranges holding more than a /13, the most any one
// network holds (one registry's /12, a /13 and a /14 between them), admit
// it; a network's /32 and a /13 alone do not.
func TestWideIPv6RangesAreTheInternet(t *testing.T) {
	rep := run(t, "testdata/aws/wide-ranges-ipv6")
	for _, c := range []struct{ addr, rng string }{{"aws_security_group.registry", "2600::/12"}, {"aws_vpc_security_group_ingress_rule.halves", "2a00::-2a0b:"}} {
		if got := activeOn(rep, RuleWorldOpen, c.addr); len(got) != 1 || !strings.Contains(got[0].Message, c.rng) || !strings.Contains(got[0].Message, "a /13 of IPv6") {
			t.Errorf("%s on %s: %+v, want one naming %s as more than a /13 of IPv6", RuleWorldOpen, c.addr, got, c.rng)
		}
	}
	for _, addr := range []string{"aws_security_group.one_network", "aws_security_group.largest_network"} {
		if got := activeOn(rep, RuleWorldOpen, addr); len(got) != 0 {
			t.Errorf("%s on %s: %+v, want none", RuleWorldOpen, addr, got)
		}
	}
}

// TestFirewallOfServerNotKnownToBePublic checks that a firewall rule
// admitting the whole internet to a server outside the scanned code, or to
// one whose public network access is not known statically, is high, not
// critical: that the server takes public connections rests on an
// assumption, which the finding names.
func TestFirewallOfServerNotKnownToBePublic(t *testing.T) {
	rep := run(t, "testdata/azure/firewall-server-unknown")
	for _, c := range []struct{ addr, why string }{{"azurerm_synapse_firewall_rule.elsewhere", "not in the scanned code"}, {"azurerm_mssql_firewall_rule.maybe", "not known statically"}} {
		if got := activeOn(rep, RuleAzFirewallOpen, c.addr); len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, c.why) {
			t.Errorf("%s on %s: %+v, want one high saying %q", RuleAzFirewallOpen, c.addr, got, c.why)
		}
	}
}

// TestListAttributeGivenAString checks that one string where the AWS
// provider takes a list of groups or subnets (a launch template
// interface's security_groups, an instance's vpc_security_group_ids), which
// Terraform refuses, is CHECK-003 naming the attribute, and that the list
// written as one is not.
func TestListAttributeGivenAString(t *testing.T) {
	rep := checkSource(t, `
resource "aws_security_group" "web" {
  vpc_id = "vpc-12345678"
}
resource "aws_launch_template" "web" {
  image_id = "ami-12345678"
  network_interfaces {
    associate_public_ip_address = true
    security_groups             = aws_security_group.web.id
  }
}
resource "aws_instance" "web" {
  ami                    = "ami-12345678"
  subnet_id              = "subnet-12345678"
  vpc_security_group_ids = aws_security_group.web.id
}
resource "aws_instance" "ok" {
  ami                    = "ami-12345678"
  subnet_id              = "subnet-12345678"
  vpc_security_group_ids = [aws_security_group.web.id]
}
`)
	for addr, attr := range map[string]string{"aws_launch_template.web": "security_groups", "aws_instance.web": "vpc_security_group_ids"} {
		if got := activeOn(rep, RuleRejected, addr); len(got) != 1 || !strings.Contains(got[0].Message, attr) {
			t.Errorf("%s on %s: %+v, want one naming %s", RuleRejected, addr, got, attr)
		}
	}
	if got := activeOn(rep, RuleRejected, "aws_instance.ok"); len(got) != 0 {
		t.Errorf("%s on a list written as one: %+v", RuleRejected, got)
	}
}
