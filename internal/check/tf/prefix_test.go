package tf

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// TestUnknownPrefixLen checks the prefix length said of an address range
// that is not known statically: a template ending in "/N" after what it
// interpolates is one range of N bits wherever it is, through lists,
// conditionals, gathering functions, locals, module variables and dynamic
// blocks; anything that may rewrite the string, or mix in a value that may
// be any range, fixes none (Bits 0: any range).
func TestUnknownPrefixLen(t *testing.T) {
	cases := []struct {
		expr string
		bits []int // of each unknown element, in order
	}{
		{`["${chomp(data.http.myip.response_body)}/32"]`, []int{32}},
		{`"${data.http.myip.response_body}/32"`, []int{32}},
		{`["10.0.0.0/8", "${var.ip}/32"]`, []int{32}},
		{`[local.my_cidr]`, []int{32}},
		{`local.my_cidrs`, []int{32}},
		{`concat(["10.0.0.0/8"], [local.my_cidr])`, []int{0}},
		{`concat(["198.51.100.0/32"], [local.my_cidr])`, []int{32}},
		{`[var.office == "" ? local.my_cidr : "${var.office}/24"]`, []int{0}},
		{`[var.office == "" ? local.my_cidr : "${var.office}/32"]`, []int{32}},
		{`[var.office != "" ? var.office : local.my_cidr]`, []int{0}},
		{`["10.${var.n}.0.0/16"]`, []int{16}},
		{`["${var.ip}/${var.len}"]`, []int{0}},
		{`[var.ip]`, []int{0}},
		{`[replace(local.my_cidr, "/32", "/0")]`, []int{0}},
		{`["${var.ip}/32-x"]`, []int{0}},
		{`[cidrsubnet("${var.ip}/16", 8, 1)]`, []int{0}},
		{`"${format("%s/32", var.ip)}"`, []int{32}},
		{`[var.ip == "" ? "0.0.0.0/0" : "${var.ip}/32"]`, []int{0}},
		{`[var.ip == "" ? "198.51.100.7/32" : "${var.ip}/32"]`, []int{32}},
		{`compact(["0.0.0.0/0", "${var.ip}/32"])`, []int{0}},
		{`compact(["198.51.100.0/32", "${var.ip}/32"])`, []int{0}},
		{`coalesce("${var.ip}/32", "0.0.0.0/0")`, []int{0}},
		{`format("%s/%s", var.ip, var.len)`, []int{0}},
		{`format(var.f, var.ip)`, []int{0}},
		{`[aws_vpc.main.cidr_block]`, []int{16}},
		{`[data.aws_vpc.peer.cidr_block]`, []int{16}},
		{`[aws_subnet.app[0].cidr_block, data.aws_subnet.ops.cidr_block]`, []int{16, 16}},
		{`aws_subnet.app[*].cidr_block`, []int{16, 16}},
		{`[aws_vpc.main.cidr_block == "" ? "0.0.0.0/0" : aws_vpc.main.cidr_block]`, []int{0}},
		{`[aws_instance.box.private_ip]`, []int{0}},
		{`[data.aws_vpc.peer.ipv6_cidr_block]`, []int{0}},
	}
	var rules strings.Builder
	for i, c := range cases {
		fmt.Fprintf(&rules, "resource \"aws_security_group_rule\" \"r%d\" {\n  cidr_blocks = %s\n}\n", i, c.expr)
	}
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
variable "ip" {}
variable "n" {}
variable "len" {}
variable "office" {}
variable "f" {}
variable "vpc_cidr" {}
resource "aws_vpc" "main" {
  cidr_block = var.vpc_cidr
}
resource "aws_subnet" "app" {
  count      = 2
  vpc_id     = aws_vpc.main.id
  cidr_block = cidrsubnet(var.vpc_cidr, 8, count.index)
}
data "aws_vpc" "peer" {
  id = var.f
}
data "aws_subnet" "ops" {
  id = var.f
}
resource "aws_instance" "box" {
  subnet_id = aws_subnet.app[0].id
}
data "http" "myip" {
  url = "https://checkip.amazonaws.com"
}
locals {
  my_cidr  = "${chomp(data.http.myip.response_body)}/32"
  my_cidrs = [local.my_cidr]
}
module "office" {
  source = "./office"
  admins = "${var.ip}/32"
}
resource "azurerm_network_security_group" "nsg" {
  dynamic "security_rule" {
    for_each = var.office
    content {
      source_address_prefix = "${security_rule.value}/32"
    }
  }
}
` + rules.String())},
		"office/main.tf": {Data: []byte(`
variable "admins" {}
resource "aws_security_group_rule" "admins" {
  cidr_blocks = [var.admins]
}
`)},
	}, Options{})
	res := byAddr(p)
	check := func(name string, v any, want []int) {
		t.Helper()
		var got []int
		switch v := v.(type) {
		case Unknown:
			got = append(got, v.Bits)
		case []any:
			for _, e := range v {
				if u, ok := e.(Unknown); ok {
					got = append(got, u.Bits)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: prefix lengths of the unknown elements %v, want %v (value %#v)", name, got, want, v)
		}
	}
	for i, c := range cases {
		check(c.expr, res[fmt.Sprintf("aws_security_group_rule.r%d", i)].Values["cidr_blocks"], c.bits)
	}
	check("a module variable", res["module.office.aws_security_group_rule.admins"].Values["cidr_blocks"], []int{32})
	rules0 := blocksOf(res["azurerm_network_security_group.nsg"].Values["security_rule"])
	if len(rules0) != 1 {
		t.Fatalf("security_rule %#v: want one block", res["azurerm_network_security_group.nsg"].Values["security_rule"])
	}
	check("a dynamic block", rules0[0]["source_address_prefix"], []int{32})
}

func blocksOf(v any) []map[string]any {
	var out []map[string]any
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}
