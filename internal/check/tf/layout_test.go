package tf

import (
	"strings"
	"testing"
	"testing/fstest"
)

func notesText(p *Project) string {
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.String())
	}
	return strings.Join(msgs, "\n")
}

// A root module in a folder of its own calls modules above it and beside
// it, as the examples of published modules do (source = "../..").
func TestLoadDirModulesAnywhere(t *testing.T) {
	files := fstest.MapFS{
		"repo/main.tf": {Data: []byte(`
variable "cidr" {}
variable "subnets" {
  type = map(object({
    cidr   = string
    public = optional(bool, false)
  }))
}
resource "aws_vpc" "this" {
  cidr_block = var.cidr
}
module "subnet" {
  source   = "./modules/subnet"
  for_each = var.subnets
  vpc_id   = aws_vpc.this.id
  cidr     = each.value.cidr
  public   = each.value.public
}
output "subnet_ids" {
  value = { for k, m in module.subnet : k => m.id }
}
`)},
		"repo/modules/subnet/main.tf.json": {Data: []byte(`{
  "variable": {"vpc_id": {}, "cidr": {}, "public": {"default": false}},
  "resource": {
    "aws_subnet": {
      "this": {
        "vpc_id": "${var.vpc_id}",
        "cidr_block": "${var.cidr}",
        "map_public_ip_on_launch": "${var.public}",
        "tags": {"Name": "${lookup(var.tags_by_cidr, var.cidr, null)}"}
      }
    }
  },
  "locals": {"unused": 1},
  "output": {"id": {"value": "${aws_subnet.this.id}"}}
}`)},
		"repo/modules/subnet/vars.tf": {Data: []byte(`
variable "tags_by_cidr" {
  default = {}
}
`)},
		"repo/examples/two/main.tf": {Data: []byte(`
module "net" {
  source = "../.."
  cidr   = "10.1.0.0/16"
  subnets = {
    a = { cidr = cidrsubnets("10.1.0.0/16", 8, 8)[0], public = true }
    b = { cidr = cidrsubnets("10.1.0.0/16", 8, 8)[1] }
  }
}
resource "aws_instance" "web" {
  count     = 2
  subnet_id = module.net.subnet_ids["a"]
}
`)},
	}
	p := load(t, files, Options{}, "repo/examples/two")
	got := byAddr(p)
	for addr, want := range map[string]map[string]any{
		`module.net.aws_vpc.this`:                       {"cidr_block": "10.1.0.0/16"},
		`module.net.module.subnet["a"].aws_subnet.this`: {"cidr_block": "10.1.0.0/24", "map_public_ip_on_launch": true, "vpc_id": "module.net.aws_vpc.this"},
		`module.net.module.subnet["b"].aws_subnet.this`: {"cidr_block": "10.1.1.0/24", "map_public_ip_on_launch": false},
		`aws_instance.web[1]`:                           {"subnet_id": `module.net.module.subnet["a"].aws_subnet.this`},
	} {
		r, ok := got[addr]
		if !ok {
			t.Fatalf("no %s in %v\nnotes:\n%s", addr, keys(got), notesText(p))
		}
		for k, v := range want {
			if r.Values[k] != v {
				t.Errorf("%s.%s = %#v, want %#v", addr, k, r.Values[k], v)
			}
		}
	}
	if r := got[`module.net.module.subnet["a"].aws_subnet.this`]; r.Pos.File != "repo/modules/subnet/main.tf.json" || r.Pos.Line == 0 {
		t.Errorf("JSON resource position %v", r.Pos)
	}
	if tags, _ := got[`module.net.module.subnet["a"].aws_subnet.this`].Values["tags"].(map[string]any); tags == nil || tags["Name"] != nil {
		t.Errorf("lookup with a null default: tags = %#v", got[`module.net.module.subnet["a"].aws_subnet.this`].Values["tags"])
	}
	if len(p.Notes) != 0 {
		t.Errorf("notes for a fully static project:\n%s", notesText(p))
	}
}

func keys(m map[string]Resource) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Registry modules are read from where terraform init put them; without
// .terraform, a note says so.
func TestLoadDirRegistryModules(t *testing.T) {
	files := fstest.MapFS{
		"main.tf": {Data: []byte(`
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.0.0"
  cidr    = "10.9.0.0/16"
}
`)},
		".terraform/modules/modules.json": {Data: []byte(`{"Modules":[{"Key":"","Source":"","Dir":"."},
{"Key":"vpc","Source":"registry.terraform.io/terraform-aws-modules/vpc/aws","Version":"5.0.0","Dir":".terraform/modules/vpc"},
{"Key":"vpc.logs","Source":"git::https://example.com/logs.git//flow","Dir":".terraform/modules/vpc.logs/flow"}]}`)},
		".terraform/modules/vpc/main.tf": {Data: []byte(`
variable "cidr" {}
resource "aws_vpc" "this" { cidr_block = var.cidr }
module "logs" {
  source = "git::https://example.com/logs.git//flow"
  vpc_id = aws_vpc.this.id
}
`)},
		".terraform/modules/vpc.logs/flow/main.tf": {Data: []byte(`
variable "vpc_id" {}
resource "aws_flow_log" "this" { vpc_id = var.vpc_id }
`)},
	}
	p := load(t, files, Options{})
	got := byAddr(p)
	if got["module.vpc.aws_vpc.this"].Values["cidr_block"] != "10.9.0.0/16" {
		t.Errorf("registry module not read: %v\n%s", keys(got), notesText(p))
	}
	if got["module.vpc.module.logs.aws_flow_log.this"].Values["vpc_id"] != "module.vpc.aws_vpc.this" {
		t.Errorf("nested git module not read: %v\n%s", keys(got), notesText(p))
	}
	delete(files, ".terraform/modules/modules.json")
	p = load(t, files, Options{})
	if n := notesText(p); !strings.Contains(n, "terraform init has not run here") {
		t.Errorf("want a note on the missing terraform init, got:\n%s", n)
	}
}

// Terraform's own function semantics, where go-cty's library differs.
func TestTerraformFunctions(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
locals {
  m = { a = "x" }
}
resource "aws_x" "f" {
  lookup_null = lookup(local.m, "b", null)
  lookup_hit  = lookup(local.m, "a", null)
  coalesce    = coalesce("", null, "y")
  subnets     = cidrsubnets("10.0.0.0/16", 4, 8, 4)
  host        = cidrhost("10.0.0.0/24", -2)
  mask        = cidrnetmask("10.0.0.0/20")
  replace     = replace("a-b_c", "/[-_]/", ".")
  strlen      = length("héllo")
  one         = one(["z"])
  product     = length(setproduct(["a", "b"], [1, 2, 3]))
  objlen      = length({ a = 1, b = "x" })
  emptyobj    = length({})
  zip         = zipmap(["k"], ["v"])
  element     = element(["a", "b"], 3)
  flat        = flatten([["a"], [["b"]]])
  distinct    = distinct(concat(["a"], ["a", "b"]))
  compact     = compact(["a", "", null])
  merged      = merge({ a = 1 }, null, { b = 2 })
  try         = try(local.m.nope, "fallback")
  can         = can(local.m.nope)
  starts      = startswith("arn:aws", "arn:")
  nonsens     = nonsensitive(sensitive("s"))
  stamp       = timestamp()
}
`)}}, Options{})
	v := byAddr(p)["aws_x.f"].Values
	for k, want := range map[string]any{
		"lookup_null": nil, "lookup_hit": "x", "coalesce": "y",
		"host": "10.0.0.254", "mask": "255.255.240.0", "replace": "a.b.c", "strlen": 5.0, "one": "z",
		"product": 6.0, "objlen": 2.0, "emptyobj": 0.0, "element": "b", "try": "fallback", "can": false, "starts": true, "nonsens": "s",
	} {
		if v[k] != want {
			t.Errorf("%s = %#v, want %#v", k, v[k], want)
		}
	}
	eq := func(k string, want ...any) {
		got, _ := v[k].([]any)
		if len(got) != len(want) {
			t.Errorf("%s = %#v, want %v", k, v[k], want)
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s = %#v, want %v", k, v[k], want)
			}
		}
	}
	eq("subnets", "10.0.0.0/20", "10.0.16.0/24", "10.0.32.0/20")
	eq("flat", "a", "b")
	eq("distinct", "a", "b")
	eq("compact", "a")
	if m, _ := v["merged"].(map[string]any); len(m) != 2 {
		t.Errorf("merged = %#v", v["merged"])
	}
	if _, ok := v["stamp"].(Unknown); !ok {
		t.Errorf("timestamp() = %#v, want unknown", v["stamp"])
	}
	if n := notesText(p); !strings.Contains(n, "aws_x.f: value is not known statically") || strings.Count(n, "\n") > 0 {
		t.Errorf("want exactly one note (timestamp), got:\n%s", n)
	}
}

// One note per kind of construct per resource, however many expressions.
func TestNotesOnePerKind(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "aws_instance" "a" {
  subnet_id = data.x.y.id
  ami       = data.x.y.ami
  tags      = { Name = data.x.y.name }
}
`)}}, Options{})
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0].Msg, "(and 2 other expressions like it)") {
		t.Errorf("notes:\n%s", notesText(p))
	}
}

// A count or for_each that cannot be known still yields the resource, read
// once with an unknown key, and its body's values where they do not depend
// on the key.
func TestUnknownCountReadsOneInstance(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
data "aws_availability_zones" "az" {}
resource "aws_security_group_rule" "r" {
  count       = length(data.aws_availability_zones.az.names)
  type        = "ingress"
  from_port   = 22
  to_port     = 22
  protocol    = "tcp"
  cidr_blocks = [element(["0.0.0.0/0"], count.index)]
}
module "m" {
  for_each = data.aws_availability_zones.az.names
  source   = "./m"
  az       = each.value
}
`)}, "m/main.tf": {Data: []byte(`
variable "az" {}
resource "aws_subnet" "s" { availability_zone = var.az }
`)}}, Options{})
	got := byAddr(p)
	r, ok := got["aws_security_group_rule.r"]
	if !ok || r.Values["from_port"] != 22.0 {
		t.Fatalf("rule under unknown count: %#v", r)
	}
	if _, ok := got["module.m.aws_subnet.s"]; !ok {
		t.Errorf("module under unknown for_each not read: %v", keys(got))
	}
	n := notesText(p)
	if !strings.Contains(n, "count is not known statically") || !strings.Contains(n, "for_each is not known statically") {
		t.Errorf("notes:\n%s", n)
	}
}
