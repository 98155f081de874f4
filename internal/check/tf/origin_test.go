package tf

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// TestUnknownFrom checks which resources an unknown value is said to come
// from: the resources whose IDs its expression can only be (module-
// qualified, without instance keys), and none when some reference may
// bring a value of its own.
func TestUnknownFrom(t *testing.T) {
	exprs := []struct{ expr, from string }{
		{"aws_route_table.db[0].id", "module.net.aws_route_table.db"},
		{"element(aws_route_table.private[*].id, count.index)", "module.net.aws_route_table.private"},
		{"element(coalescelist(aws_route_table.db[*].id, aws_route_table.private[*].id), var.single ? 0 : count.index)",
			"module.net.aws_route_table.db module.net.aws_route_table.private"},
		{"var.table", ""},
		{`var.table != "" ? var.table : aws_route_table.db[0].id`, ""},
		{"aws_route_table.db[0].tags.peer", ""},
		{"data.aws_route_table.x.id", ""},
		{`"rtb-${var.n}"`, ""},
		{`"${aws_route_table.db[0].id}-peer"`, ""},
		{"local.db_ids[0]", "module.net.aws_route_table.db"},
		{"local.mixed_ids[1]", ""},
	}
	var routes strings.Builder
	for i, e := range exprs {
		fmt.Fprintf(&routes, `
resource "aws_route" "r%d" {
  count                  = var.n
  route_table_id         = %s
  destination_cidr_block = "0.0.0.0/0"
}
`, i, e.expr)
	}
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
variable "n" {}
variable "t" {}
module "net" {
  source = "./net"
  n      = var.n
  table  = var.t
}
resource "aws_route" "root" {
  route_table_id         = one(module.net.private_ids)
  destination_cidr_block = "0.0.0.0/0"
}
`)},
		"net/inner/main.tf": {Data: []byte(`
variable "tables" {}
resource "aws_route" "inner" {
  route_table_id         = var.tables[0]
  destination_cidr_block = "0.0.0.0/0"
}
`)},
		"net/main.tf": {Data: []byte(`
variable "n" {}
variable "table" {
  type = string
}
variable "known_ids" {
  default = ["rtb-0123"]
}
variable "single" {
  default = false
}
resource "aws_route_table" "db" {
  count  = var.n
  vpc_id = "vpc-1"
}
locals {
  db_ids    = aws_route_table.db[*].id
  mixed_ids = concat(var.known_ids, aws_route_table.db[*].id)
}
output "private_ids" {
  value = aws_route_table.private[*].id
}
module "inner" {
  source = "./inner"
  tables = aws_route_table.db[*].id
}
resource "aws_route_table" "private" {
  count  = var.n
  vpc_id = "vpc-1"
}
` + routes.String())},
	}, Options{})
	res := byAddr(p)
	// Through a module's output, and a variable given to a module.
	exprs = append(exprs, struct{ expr, from string }{"module.net.private_ids", "module.net.aws_route_table.private"},
		struct{ expr, from string }{"var.tables", "module.net.aws_route_table.db"})
	res["module.net.aws_route.r"+fmt.Sprint(len(exprs)-2)] = res["aws_route.root"]
	res["module.net.aws_route.r"+fmt.Sprint(len(exprs)-1)] = res["module.net.module.inner.aws_route.inner"]
	for i, e := range exprs {
		r, ok := res[fmt.Sprintf("module.net.aws_route.r%d", i)]
		if !ok {
			t.Fatalf("no route %d in %v", i, res)
		}
		u, ok := r.Values["route_table_id"].(Unknown)
		if !ok {
			t.Errorf("%s: route_table_id %#v is not unknown", e.expr, r.Values["route_table_id"])
			continue
		}
		if got := strings.Join(u.From, " "); got != e.from {
			t.Errorf("%s: from %q, want %q", e.expr, got, e.from)
		}
	}
}

// TestUnknownFromNested checks the same for an attribute of a nested block
// (CloudFront's origin { domain_name = aws_lb.web.dns_name }), and that an
// address or host name the provider computes names its resource; a block
// after a dynamic block of its type has no known index and keeps none.
func TestUnknownFromNested(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
variable "origins" {}
resource "aws_lb" "web" {}
resource "aws_instance" "app" {}
resource "aws_cloudfront_distribution" "cdn" {
  origin {
    domain_name = aws_lb.web.dns_name
    origin_id   = "web"
  }
  origin {
    domain_name = aws_instance.app.public_dns
    origin_id   = "app"
  }
  origin {
    domain_name = "${aws_lb.web.dns_name}.example"
    origin_id   = "templated"
  }
}
resource "aws_cloudfront_distribution" "dyn" {
  dynamic "origin" {
    for_each = var.origins
    content {
      domain_name = origin.value
      origin_id   = origin.key
    }
  }
  origin {
    domain_name = aws_lb.web.dns_name
    origin_id   = "web"
  }
}
`)}}, Options{})
	res := byAddr(p)
	for _, c := range []struct {
		addr string
		i    int
		from string
	}{
		{"aws_cloudfront_distribution.cdn", 0, "aws_lb.web"},
		{"aws_cloudfront_distribution.cdn", 1, "aws_instance.app"},
		{"aws_cloudfront_distribution.cdn", 2, ""},
		{"aws_cloudfront_distribution.dyn", 1, ""},
	} {
		os, _ := res[c.addr].Values["origin"].([]any)
		if len(os) <= c.i {
			t.Fatalf("%s: origins %#v", c.addr, res[c.addr].Values["origin"])
		}
		u, ok := os[c.i].(map[string]any)["domain_name"].(Unknown)
		if !ok {
			t.Errorf("%s origin %d: domain_name is not unknown", c.addr, c.i)
			continue
		}
		if got := strings.Join(u.From, " "); got != c.from {
			t.Errorf("%s origin %d: from %q, want %q", c.addr, c.i, got, c.from)
		}
	}
}

// TestPlanUnknownFrom checks the same for a plan: a route table ID that
// the plan leaves unknown and whose configuration expression selects among
// a counted resource's instances (element(…[*].id, count.index)) comes
// from that resource; one that also references a variable may be anything.
func TestPlanUnknownFrom(t *testing.T) {
	p, err := ReadPlan("plan.json", []byte(`{
  "format_version": "1.2",
  "planned_values": {"root_module": {"child_modules": [{"address": "module.net", "resources": [
    {"address": "module.net.aws_route_table.private[0]", "mode": "managed", "type": "aws_route_table", "name": "private", "index": 0, "values": {}},
    {"address": "module.net.aws_route_table.private[1]", "mode": "managed", "type": "aws_route_table", "name": "private", "index": 1, "values": {}},
    {"address": "module.net.aws_route.nat[0]", "mode": "managed", "type": "aws_route", "name": "nat", "index": 0, "values": {"destination_cidr_block": "0.0.0.0/0"}},
    {"address": "module.net.aws_route.other", "mode": "managed", "type": "aws_route", "name": "other", "values": {"destination_cidr_block": "0.0.0.0/0"}}
  ]}]}},
  "resource_changes": [
    {"address": "module.net.aws_route.nat[0]", "change": {"after_unknown": {"route_table_id": true}}},
    {"address": "module.net.aws_route.other", "change": {"after_unknown": {"route_table_id": true}}}
  ],
  "configuration": {"root_module": {"module_calls": {"net": {"source": "./net", "module": {"resources": [
    {"address": "aws_route.nat", "mode": "managed", "expressions": {
      "route_table_id": {"references": ["aws_route_table.private", "count.index"]}}},
    {"address": "aws_route.other", "mode": "managed", "expressions": {
      "route_table_id": {"references": ["var.table", "aws_route_table.private[0].id", "aws_route_table.private[0]"]}}}
  ]}}}}}
}`))
	if err != nil {
		t.Fatal(err)
	}
	r := byAddr(p)
	for addr, want := range map[string]string{
		"module.net.aws_route.nat[0]": "module.net.aws_route_table.private",
		"module.net.aws_route.other":  "",
	} {
		u, ok := r[addr].Values["route_table_id"].(Unknown)
		if !ok {
			t.Errorf("%s: route_table_id %#v is not unknown", addr, r[addr].Values["route_table_id"])
			continue
		}
		if got := strings.Join(u.From, " "); got != want {
			t.Errorf("%s: from %q, want %q", addr, got, want)
		}
	}
}
