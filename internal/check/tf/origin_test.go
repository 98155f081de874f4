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
`)},
		"net/main.tf": {Data: []byte(`
variable "n" {}
variable "table" {
  type = string
}
variable "single" {
  default = false
}
resource "aws_route_table" "db" {
  count  = var.n
  vpc_id = "vpc-1"
}
resource "aws_route_table" "private" {
  count  = var.n
  vpc_id = "vpc-1"
}
` + routes.String())},
	}, Options{})
	res := byAddr(p)
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
