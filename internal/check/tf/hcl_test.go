package tf

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func load(t *testing.T, files fstest.MapFS, opts Options, dir ...string) *Project {
	t.Helper()
	d := "."
	if len(dir) > 0 {
		d = dir[0]
	}
	p, err := LoadDir(files, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func byAddr(p *Project) map[string]Resource {
	m := map[string]Resource{}
	for _, r := range p.Resources {
		m[r.Address] = r
	}
	return m
}

func TestLoadDirEvaluates(t *testing.T) {
	files := fstest.MapFS{
		"main.tf": {Data: []byte(`
variable "cidr" {
  default = "10.0.0.0/16"
}
variable "azs" {}
variable "ports" {
  default = [22, 443]
}
locals {
  name   = "${local.prefix}-vpc"
  prefix = "prod"
}
resource "aws_vpc" "main" {
  cidr_block = var.cidr
  tags       = { Name = local.name }
}
resource "aws_subnet" "s" {
  count      = length(var.azs)
  vpc_id     = aws_vpc.main.id
  cidr_block = cidrsubnet(aws_vpc.main.cidr_block, 8, count.index)
}
resource "aws_security_group" "g" {
  for_each = toset(["a", "b"])
  vpc_id   = aws_vpc.main.id
  dynamic "ingress" {
    for_each = var.ports
    content {
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = [aws_subnet.s[0].cidr_block]
    }
  }
}
module "m" {
  source = "./mod"
  vpc    = aws_vpc.main.id
}
resource "aws_flow_log" "f" {
  vpc_id = module.m.vpc
}
`)},
		"terraform.tfvars": {Data: []byte(`azs = ["a", "b", "c"]` + "\n")},
		"extra.tfvars":     {Data: []byte(`cidr = "10.1.0.0/16"` + "\n")},
		"mod/main.tf": {Data: []byte(`
variable "vpc" {}
resource "aws_internet_gateway" "gw" {
  vpc_id = var.vpc
}
output "vpc" {
  value = aws_internet_gateway.gw.vpc_id
}
`)},
	}
	p := load(t, files, Options{VarFiles: []string{"extra.tfvars"}})
	if len(p.Notes) > 0 {
		t.Errorf("unexpected notes: %v", p.Notes)
	}
	r := byAddr(p)
	for addr, want := range map[string]map[string]any{
		"aws_vpc.main":                     {"cidr_block": "10.1.0.0/16"},
		"aws_subnet.s[2]":                  {"cidr_block": "10.1.2.0/24", "vpc_id": "aws_vpc.main"},
		"module.m.aws_internet_gateway.gw": {"vpc_id": "aws_vpc.main"},
		"aws_flow_log.f":                   {"vpc_id": "aws_vpc.main"},
	} {
		got, ok := r[addr]
		if !ok {
			t.Errorf("no resource %s among %d", addr, len(p.Resources))
			continue
		}
		for k, v := range want {
			if got.Values[k] != v {
				t.Errorf("%s.%s = %#v, want %#v", addr, k, got.Values[k], v)
			}
		}
	}
	if tags, _ := r["aws_vpc.main"].Values["tags"].(map[string]any); tags["Name"] != "prod-vpc" {
		t.Errorf("locals: tags = %v", r["aws_vpc.main"].Values["tags"])
	}
	g := r[`aws_security_group.g["b"]`]
	ing, _ := g.Values["ingress"].([]any)
	if len(ing) != 2 || ing[1].(map[string]any)["from_port"] != float64(443) {
		t.Errorf("dynamic ingress = %#v", g.Values["ingress"])
	}
	if g.Pos.File != "main.tf" || g.Pos.Line == 0 || g.End <= g.Pos.Line {
		t.Errorf("position %v end %d", g.Pos, g.End)
	}
}

func TestLoadDirReportsWhatItCannotEvaluate(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
variable "n" {}
resource "aws_instance" "a" {
  count = var.n
}
resource "aws_instance" "b" {
  ami = nosuchfunc("x")
}
resource "aws_instance" "c" {
  subnet_id = data.aws_subnet.x.id
}
variable "env" {
  default = "dev"
}
resource "random_id" "r" {
  byte_length = 4
}
resource "aws_s3_bucket" "d" {
  bucket = "logs-${var.env}-${random_id.r.hex}"
}
resource "terraform_data" "whole" {
  input = { size = var.n }
}
output "whole" {
  value = aws_s3_bucket.d
}
resource "aws_s3_bucket" "f" {
  bucket = aws_s3_bucket.misspelt.bucket
}
module "remote" {
  source = "terraform-aws-modules/vpc/aws"
}
resource "aws_instance" "g" {
  ami = filebase64("boot.sh")
}
`)}}, Options{})
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.String())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`main.tf:2: var.n: variable "n" has no value`,
		"main.tf:4: aws_instance.a: count is not known statically",
		"main.tf:7: aws_instance.b: cannot evaluate: Call to unknown function",
		"main.tf:10: aws_instance.c: value is not known statically (depends on data.aws_subnet.x.id)",
		`module.remote: module source "terraform-aws-modules/vpc/aws" is not local and terraform init has not run here`,
		// Only what the provider computes is named as such.
		"aws_s3_bucket.d: value is computed by the provider (random_id.r.hex), known only after apply",
		// A name the module does not declare is an error, not a value
		// to compute.
		"aws_s3_bucket.f: reference to undeclared resource aws_s3_bucket.misspelt: Terraform rejects the configuration",
		// An object is known, some of its attributes not.
		"terraform_data.whole: value is partly known: some of its attributes are not known statically (depends on var.n)",
		// A value that refers to nothing names the function not
		// computed here.
		"aws_instance.g: value is not known statically (depends on the result of filebase64(…), not computed here)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
	// An output only passes its unknowns on, to nothing at the root.
	if strings.Contains(all, "output.whole") {
		t.Errorf("a note on an output:\n%s", all)
	}
	if _, ok := byAddr(p)["aws_instance.a"]; !ok {
		t.Error("a resource with an unknown count must still be read (as one instance)")
	}
	if _, ok := byAddr(p)["aws_instance.c"].Values["subnet_id"].(Unknown); !ok {
		t.Error("an unknown value must read as Unknown")
	}
}

// TestModuleSourceNeitherLocalNorRemote: a module source written as a
// relative path without ./ ("modules/network") is no address Terraform
// accepts: init fails, so the plan does. It was noted as a remote module
// that terraform init had not fetched.
func TestModuleSourceNeitherLocalNorRemote(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
module "network" {
  source = "modules/network"
}
module "edge" {
  source = "tiers"
}
module "registry" {
  source = "example-corp/edge/aws"
}
module "pinned" {
  source = "git::https://git.example.com/infra/edge.git?ref=v2"
}
`)},
		"modules/network/main.tf": {Data: []byte(`resource "aws_vpc" "v" {}`)},
	}, Options{})
	got := map[string]Note{}
	for _, n := range p.Notes {
		got[n.Address] = n
	}
	for _, c := range []struct {
		addr, want string
		rejected   bool
	}{
		{"module.network", `module source "modules/network" is neither a local path (one starts ./ or ../) nor a registry or remote address: Terraform rejects it, so the plan fails (write "./modules/network" for the directory); the module's resources are not read`, true},
		{"module.edge", `module source "tiers" is neither a local path (one starts ./ or ../) nor a registry or remote address: Terraform rejects it, so the plan fails (write "./tiers" for the directory); the module's resources are not read`, true},
		{"module.registry", `module source "example-corp/edge/aws" is not local and terraform init has not run here`, false},
		{"module.pinned", `module source "git::https://git.example.com/infra/edge.git?ref=v2" is not local and terraform init has not run here`, false},
	} {
		n, ok := got[c.addr]
		if !ok || !strings.HasPrefix(n.Msg, c.want) || n.Rejected != c.rejected {
			t.Errorf("%s: note %+v, want %q (rejected %v)", c.addr, n, c.want, c.rejected)
		}
	}
}

// TestQuotedTypeConstraint: Terraform 0.11 wrote a variable's type in
// quotes (type = "map"); Terraform now rejects it (Invalid quoted type
// constraints), so the plan fails. It was read as any type, unsaid. The
// value is still read as given.
func TestQuotedTypeConstraint(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
variable "ports" {
  type    = "list"
  default = [8443]
}
variable "zones" {
  type    = list(strin)
  default = []
}
variable "tags" {
  type    = map(string)
  default = {}
}
variable "labels" {
  type    = map
  default = {}
}
resource "aws_security_group" "g" {
  name = "g-${var.ports[0]}"
}
`)}}, Options{})
	got := map[string]Note{}
	for _, n := range p.Notes {
		got[n.Address] = n
	}
	for addr, want := range map[string]string{
		"var.ports": `type = "list" is a type constraint in quotes, as Terraform 0.11 wrote it: Terraform rejects it (Invalid quoted type constraints), so the plan fails (write list(string), without quotes); the variable is read as of any type`,
		"var.zones": `type is not a type constraint Terraform knows`,
	} {
		n, ok := got[addr]
		if !ok || !n.Rejected || !strings.HasPrefix(n.Msg, want) {
			t.Errorf("%s: note %+v, want a rejection %q", addr, n, want)
		}
	}
	// A bare list or map is list(any) or map(any) to Terraform.
	for _, addr := range []string{"var.tags", "var.labels"} {
		if n, ok := got[addr]; ok {
			t.Errorf("%s: note %+v, want none", addr, n)
		}
	}
	if v := byAddr(p)["aws_security_group.g"].Values["name"]; v != "g-8443" {
		t.Errorf("name %v, want the default read as given", v)
	}
}

// TestQuotedTypeConstraintBefore015: Terraform before 0.15 takes
// type = "string", "list" or "map" with a warning; a configuration whose
// required_version admits no later Terraform (in any module) runs there,
// so those are not rejections. Another word in quotes is refused there
// too, and a constraint without such an upper bound admits a Terraform
// that refuses them all.
func TestQuotedTypeConstraintBefore015(t *testing.T) {
	vars := `
variable "name" {
  type = "string"
}
variable "ports" {
  type    = "list"
  default = [8443]
}
variable "count_of" {
  type    = "number"
  default = 1
}
`
	for _, c := range []struct {
		version string
		legacy  bool
	}{{"~> 0.12.0", true}, {"< 0.15", true}, {">= 0.12, < 0.14", true}, {">= 0.12", false}, {"~> 0.12", false}} {
		p := load(t, fstest.MapFS{
			"versions.tf":   {Data: []byte(`terraform { required_version = "` + c.version + `" }`)},
			"main.tf":       {Data: []byte(`module "child" { source = "./child" }` + vars)},
			"child/main.tf": {Data: []byte(`variable "zone" { type = "string" }`)},
		}, Options{})
		got := map[string]Note{}
		for _, n := range p.Notes {
			if n.Rejected {
				got[n.Address] = n
			}
		}
		for _, addr := range []string{"var.name", "var.ports", "module.child.var.zone"} {
			if _, ok := got[addr]; ok == c.legacy {
				t.Errorf("required_version %q: %s rejected %v, want %v", c.version, addr, ok, !c.legacy)
			}
		}
		if _, ok := got["var.count_of"]; !ok {
			t.Errorf("required_version %q: type = \"number\" not rejected", c.version)
		}
	}
}

// TestUnreadModuleArguments: the arguments of a module call whose module
// is not read here (a registry module before terraform init) were not
// evaluated, so a reference in them to a module call, variable or local
// value the calling module does not declare went unsaid, though Terraform
// rejects it whether or not the module is fetched.
func TestUnreadModuleArguments(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
module "jump" {
  source          = "example-corp/jumphost/aws"
  security_groups = [module.jump_sg.id]
  subnet          = var.subnet
}
module "relay" {
  source = "example-corp/relay/aws"
  role   = aws_iam_role.relay.arn
}
variable "subnet" {
  default = "subnet-0a1b2c3d"
}
resource "aws_iam_role" "ops" {
  name = "ops"
}
`)}}, Options{})
	var got []string
	for _, n := range p.Notes {
		if n.Rejected {
			got = append(got, n.String())
		}
	}
	want := []string{
		"main.tf:4: module.jump: reference to undeclared module call module.jump_sg: Terraform rejects the configuration, so the plan fails",
		"main.tf:9: module.relay: reference to undeclared resource aws_iam_role.relay: Terraform rejects the configuration, so the plan fails",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rejections %q, want %q", got, want)
	}
}

// TestComputedNotedOnlyWhenUnresolved: a value that reads what the
// provider computes is noted as not evaluated only when it is not known
// after all: not the length of a list of such attributes, nor an address
// that can only be the resource's own (which Unknown.From names), nor
// the stand-in ID of the cluster group EKS makes. Each was noted.
func TestComputedNotedOnlyWhenUnresolved(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "aws_instance" "web" {
  count = 2
}
resource "aws_lb" "web" {
  name = "web"
}
resource "aws_eks_cluster" "main" {
  name = "main"
  vpc_config {
    subnet_ids = ["subnet-1"]
  }
}
resource "aws_cloudfront_distribution" "cdn" {
  origin {
    domain_name = aws_lb.web.dns_name
  }
}
resource "aws_security_group_rule" "nodes" {
  security_group_id = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
}
resource "aws_ssm_parameter" "ip" {
  value = "${aws_instance.web[0].private_ip}/32"
}
resource "aws_ssm_parameter" "api" {
  value = "${aws_eks_cluster.main.name} ${aws_eks_cluster.main.endpoint}"
}
`)}}, Options{})
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.String())
	}
	all := strings.Join(msgs, "\n")
	for _, addr := range []string{"aws_cloudfront_distribution.cdn", "aws_security_group_rule.nodes"} {
		if strings.Contains(all, addr+":") {
			t.Errorf("a note on %s, whose value is resolved:\n%s", addr, all)
		}
	}
	if want := "aws_ssm_parameter.ip: value is computed by the provider (aws_instance.web[…].private_ip)"; !strings.Contains(all, want) {
		t.Errorf("notes lack %q:\n%s", want, all)
	}
	// The cluster's name is the configuration's: only its endpoint is
	// the provider's.
	if want := "aws_ssm_parameter.api: value is computed by the provider (aws_eks_cluster.main.endpoint), known only after apply"; !strings.Contains(all, want) {
		t.Errorf("notes lack %q:\n%s", want, all)
	}
	r := byAddr(p)
	if got := r["aws_security_group_rule.nodes"].Values["security_group_id"]; got != EKSClusterSG("aws_eks_cluster.main") {
		t.Errorf("security_group_id = %#v, want %q", got, EKSClusterSG("aws_eks_cluster.main"))
	}
	if u, ok := r["aws_cloudfront_distribution.cdn"].Values["origin"].([]any)[0].(map[string]any)["domain_name"].(Unknown); !ok || len(u.From) != 1 || u.From[0] != "aws_lb.web" {
		t.Errorf("domain_name = %#v, want unknown from aws_lb.web", u)
	}
	p = load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "aws_lb" "web" {
  name = "web"
}
resource "aws_lb_target_group" "web" {
  port = length([aws_lb.web.zone_id, aws_lb.web.arn_suffix])
}
`)}}, Options{})
	if len(p.Notes) > 0 || fmt.Sprint(byAddr(p)["aws_lb_target_group.web"].Values["port"]) != "2" {
		t.Errorf("port = %#v with notes %v, want 2 and none", byAddr(p)["aws_lb_target_group.web"].Values["port"], p.Notes)
	}
}

func TestLoadDirErrors(t *testing.T) {
	for _, tc := range []struct {
		files fstest.MapFS
		want  string
	}{
		{fstest.MapFS{"main.tf": {Data: []byte("resource \"aws_vpc\" \"a\" {\n  cidr_block = \n}\n")}}, "main.tf:2"},
		{fstest.MapFS{"main.tf": {Data: []byte("resource \"aws_vpc\" {\n}\n")}}, "main.tf:1"},
		{fstest.MapFS{"main.tf": {Data: []byte("")}, "terraform.tfvars": {Data: []byte("a = \n")}}, "terraform.tfvars:1"},
		{fstest.MapFS{"main.tf": {Data: []byte("module \"x\" {\n  source = \"./missing\"\n}\n")}}, "missing"},
		{fstest.MapFS{"main.tf": {Data: []byte("module \"x\" {\n  source = \"./\"\n}\n")}}, "module calls itself"},
	} {
		_, err := LoadDir(tc.files, ".", Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadDir = %v, want an error containing %q", err, tc.want)
		}
	}
}

func TestCIDRSubnet(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "x" "a" {
  a = cidrsubnet("10.0.0.0/16", 8, 255)
  b = cidrsubnet("fd00::/56", 8, 1)
  c = cidrsubnet("10.0.0.0/16", 8, 256)
}
`)}}, Options{})
	r := byAddr(p)["x.a"]
	if r.Values["a"] != "10.0.255.0/24" || r.Values["b"] != "fd00:0:0:1::/64" {
		t.Errorf("cidrsubnet = %v, %v", r.Values["a"], r.Values["b"])
	}
	if _, ok := r.Values["c"].(Unknown); !ok || len(p.Notes) != 1 {
		t.Errorf("an out-of-range netnum must be a note: %v %v", r.Values["c"], p.Notes)
	}
}

// FuzzLoadDir: any file content either loads or fails with an error naming
// the file; it never panics.
func FuzzLoadDir(f *testing.F) {
	f.Add([]byte(`resource "aws_vpc" "a" { cidr_block = "10.0.0.0/16" }`), []byte(`x = 1`))
	f.Add([]byte("variable \"v\" {}\nresource \"a\" \"b\" {\n  count = var.v\n  x = [for i in range(3) : i]\n}\n"), []byte(``))
	f.Add([]byte("locals {\n  a = local.b\n  b = local.a\n}\n"), []byte(`v = {}`))
	f.Add([]byte("resource \"a\" \"b\" {\n  for_each = {x = 1}\n  dynamic \"d\" {\n    for_each = [1]\n    content { y = d.value }\n  }\n}\n"), []byte(``))
	f.Add([]byte("module \"m\" {\n  source = \"./\"\n}\n"), []byte(``))
	f.Fuzz(func(t *testing.T, tfSrc, vars []byte) {
		_, err := LoadDir(fstest.MapFS{"main.tf": {Data: tfSrc}, "terraform.tfvars": {Data: vars}}, ".", Options{})
		if err != nil && !strings.Contains(err.Error(), "main.tf") && !strings.Contains(err.Error(), "terraform.tfvars") && !strings.Contains(err.Error(), "calls itself") {
			t.Errorf("error names no file: %v", err)
		}
	})
}

// TestDedupeOrder checks that the note kept for a resource's unknown values
// does not depend on the order its attributes were evaluated in (a map's):
// the first in the source stands for the others, whatever the order.
func TestDedupeOrder(t *testing.T) {
	a := Note{Pos: Pos{File: "main.tf", Line: 4}, Address: "aws_subnet.a", Msg: "value is not known statically (depends on var.azs)", kind: kindComputed}
	b := Note{Pos: Pos{File: "main.tf", Line: 7}, Address: "aws_subnet.a", Msg: "value is not known statically (depends on var.name)", kind: kindComputed}
	c := Note{Pos: Pos{File: "main.tf", Line: 7}, Address: "aws_subnet.a", Msg: "value is not known statically (depends on var.tags)", kind: kindComputed}
	want := "value is not known statically (depends on var.azs) (and 2 other expressions like it)"
	for _, order := range [][]Note{{a, b, c}, {c, b, a}, {b, a, c}} {
		got := dedupe(order)
		if len(got) != 1 || got[0].Msg != want || got[0].Pos.Line != 4 {
			t.Errorf("dedupe(%v) = %+v, want one note at line 4: %q", order, got, want)
		}
	}
}

// TestResourcePrefixedReference: resource.TYPE.NAME is Terraform's explicit
// form of a reference to a managed resource; it read as a variable named
// "resource" that does not exist, so the value was lost.
func TestResourcePrefixedReference(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "aws_subnet" "a" {
  cidr_block = "10.0.1.0/24"
}
resource "aws_instance" "x" {
  subnet_id = resource.aws_subnet.a.id
  tags = {
    net  = "${resource.aws_subnet.a.cidr_block}"
    nets = join(",", resource.aws_subnet.a[*].cidr_block)
  }
}
`)}}, Options{})
	x := byAddr(p)["aws_instance.x"]
	if got := x.Values["subnet_id"]; got != "aws_subnet.a" {
		t.Errorf("subnet_id = %#v, want the subnet's ID, aws_subnet.a", got)
	}
	tags, _ := x.Values["tags"].(map[string]any)
	if tags["net"] != "10.0.1.0/24" || tags["nets"] != "10.0.1.0/24" {
		t.Errorf("tags = %#v, want the subnet's range read through the prefix", tags)
	}
	for _, n := range p.Notes {
		t.Errorf("note on a valid reference: %s", n)
	}
}

// TestUndeclaredVariableRejected: a reference to an input variable the
// module does not declare is an error Terraform stops at, as a reference
// to an undeclared resource is; it read as a value merely not evaluated,
// or, beside a value the provider computes, as that value alone.
func TestUndeclaredVariableRejected(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
variable "env" {}
resource "random_id" "r" {
  byte_length = 4
}
resource "aws_s3_bucket" "a" {
  bucket = var.enviroment
}
resource "aws_s3_bucket" "b" {
  bucket = "${var.registry}${random_id.r.hex}"
}
resource "aws_s3_bucket" "c" {
  bucket = "${var.env}${random_id.r.hex}"
}
`)}}, Options{})
	rejected := map[string]string{}
	for _, n := range p.Notes {
		if n.Rejected {
			rejected[n.Address] = n.Msg
		}
	}
	for addr, name := range map[string]string{"aws_s3_bucket.a": "var.enviroment", "aws_s3_bucket.b": "var.registry"} {
		if msg := rejected[addr]; !strings.Contains(msg, "reference to undeclared input variable "+name) {
			t.Errorf("%s: rejected note %q, want one naming %s", addr, msg, name)
		}
	}
	if msg, ok := rejected["aws_s3_bucket.c"]; ok {
		t.Errorf("aws_s3_bucket.c, whose variable is declared, rejected: %s", msg)
	}
}

// TestUndeclaredNamesRejected: a local value, a data source or a resource of
// a type the module declares nothing of, referred to but not declared, is an
// error Terraform stops at, as an undeclared input variable is; each read as
// a value merely not evaluated. Names a for expression or a dynamic block
// binds are declared.
func TestUndeclaredNamesRejected(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
locals {
  ports = [22, 80]
}
data "aws_vpc" "main" {
  default = true
}
resource "aws_s3_bucket" "a" {
  bucket = "${random_string.prefix.result}-logs"
}
resource "aws_s3_bucket" "b" {
  bucket = local.bucket_name
}
resource "aws_s3_bucket" "c" {
  bucket = data.aws_vpc.other.id
}
resource "aws_s3_bucket" "d" {
  bucket = data.aws_caller_identity.me.account_id
}
resource "aws_security_group" "ok" {
  name   = join("-", [for a_port in local.ports : tostring(a_port)])
  vpc_id = data.aws_vpc.main.id
  dynamic "ingress" {
    for_each = local.ports
    iterator = the_port
    content {
      from_port   = the_port.value
      to_port     = the_port.value
      protocol    = "tcp"
      cidr_blocks = ["10.0.0.0/8"]
    }
  }
}
`)}}, Options{})
	rejected := map[string]string{}
	for _, n := range p.Notes {
		if n.Rejected {
			rejected[n.Address] = n.Msg
		}
	}
	for addr, name := range map[string]string{
		"aws_s3_bucket.a": "resource random_string.prefix",
		"aws_s3_bucket.b": "local value local.bucket_name",
		"aws_s3_bucket.c": "data source data.aws_vpc.other",
		"aws_s3_bucket.d": "data source data.aws_caller_identity.me",
	} {
		if msg := rejected[addr]; !strings.Contains(msg, "reference to undeclared "+name) {
			t.Errorf("%s: rejected note %q, want one naming %s", addr, msg, name)
		}
	}
	if msg, ok := rejected["aws_security_group.ok"]; ok {
		t.Errorf("aws_security_group.ok, whose names are all declared, rejected: %s", msg)
	}
}

// TestDuplicatesAndUndeclaredOutputsRejected: a module that defines an
// output (or any block) twice, a reference to an output the called module
// does not declare, and a bare name in a template that is no reference
// Terraform knows are each an error Terraform stops at; the first two were
// read without a word, the third as a value merely not evaluated.
func TestDuplicatesAndUndeclaredOutputsRejected(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
module "net" {
  source = "./net"
}
resource "aws_instance" "a" {
  ami       = "ami-1"
  subnet_id = module.net.public_subnet_id
}
resource "aws_instance" "c" {
  ami       = "ami-1"
  user_data = "hostname ${hostname}"
}
resource "aws_instance" "b" {
  ami       = "ami-1"
  subnet_id = module.net.subnet_id
}
`)},
		"net/main.tf": {Data: []byte(`
resource "aws_subnet" "s" {
  vpc_id     = "vpc-1"
  cidr_block = "10.0.1.0/24"
}
output "subnet_id" {
  value = aws_subnet.s.id
}
`)},
		"net/outputs.tf": {Data: []byte(`
output "subnet_id" {
  value = aws_subnet.s.id
}
`)},
	}, Options{})
	var rejected []string
	for _, n := range p.Notes {
		if n.Rejected {
			rejected = append(rejected, n.Address+": "+n.Msg)
		}
	}
	all := strings.Join(rejected, "\n")
	for _, want := range []string{
		"module.net.output.subnet_id: duplicate output definition (first at main.tf:6)",
		"aws_instance.a: reference to undeclared output module.net.public_subnet_id",
		"aws_instance.c: reference to undeclared name hostname",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no rejected note %q; rejected:\n%s", want, all)
		}
	}
	if strings.Contains(all, "aws_instance.b") {
		t.Errorf("aws_instance.b, whose output is declared, rejected:\n%s", all)
	}
}

// TestNestedBlockAsArgumentRejected: a key vault's network_acls written as
// an argument (network_acls = {…}) is one Terraform rejects (Unsupported
// argument); it read as the block it imitates, and so as closing the vault.
// It is now rejected and read as not set. An AWS security group's ingress,
// which the provider takes either way, is read as written.
func TestNestedBlockAsArgumentRejected(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "azurerm_key_vault" "kv" {
  name     = "kv"
  sku_name = "standard"
  network_acls = {
    default_action = "Deny"
    bypass         = "AzureServices"
  }
}
resource "azurerm_key_vault" "ok" {
  name     = "ok"
  sku_name = "standard"
  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
  }
}
resource "aws_security_group" "sg" {
  ingress = [{
    from_port        = 443
    to_port          = 443
    protocol         = "tcp"
    cidr_blocks      = ["10.0.0.0/8"]
    ipv6_cidr_blocks = []
    prefix_list_ids  = []
    security_groups  = []
    self             = false
    description      = ""
  }]
}
`)}}, Options{})
	rejected := map[string]string{}
	for _, n := range p.Notes {
		if n.Rejected {
			rejected[n.Address] = n.Msg
		}
	}
	if msg := rejected["azurerm_key_vault.kv"]; !strings.Contains(msg, "network_acls is a nested block of azurerm_key_vault") {
		t.Errorf("azurerm_key_vault.kv: rejected note %q, want one naming network_acls", msg)
	}
	for _, addr := range []string{"azurerm_key_vault.ok", "aws_security_group.sg"} {
		if msg, ok := rejected[addr]; ok {
			t.Errorf("%s, written as the provider takes it, rejected: %s", addr, msg)
		}
	}
	for _, r := range p.Resources {
		switch r.Address {
		case "azurerm_key_vault.kv":
			if _, ok := r.Values["network_acls"]; ok {
				t.Errorf("%s: network_acls read as set: %v", r.Address, r.Values["network_acls"])
			}
		case "azurerm_key_vault.ok", "aws_security_group.sg":
			if len(r.Values) == 0 || (r.Values["network_acls"] == nil && r.Values["ingress"] == nil) {
				t.Errorf("%s: its block was not read: %v", r.Address, r.Values)
			}
		}
	}
}

// TestArgumentAsBlockRejected: what Terraform refuses to plan, in code
// written for Terraform 0.11, is reported where it is written as refused,
// not evaluated as if Terraform took it: an argument written as a block
// (tags { … }, cidr_blocks { … } in a rule; Unsupported block type), a
// block that only a block may set written as an argument (an EKS cluster's
// vpc_config = { … }; Unsupported argument), and the list and map
// functions Terraform removed. Each is read as not set (what is built
// from list() as not known statically). Blocks the provider takes either
// way (a security group's ingress) are read as written.
func TestArgumentAsBlockRejected(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`resource "aws_instance" "web" {
  ami = "ami-1"
  tags {
    Name = "web"
  }
}
resource "aws_security_group" "sg" {
  ingress {
    from_port = 22
    to_port   = 22
    protocol  = "tcp"
    cidr_blocks {
      x = "10.0.0.0/8"
    }
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = list("10.0.0.0/8")
  }
}
resource "aws_eks_cluster" "k" {
  vpc_config = {
    endpoint_public_access = false
  }
}
locals {
  m = map("a", "b")
}
resource "azurerm_firewall_application_rule_collection" "web" {
  name                = "web"
  azure_firewall_name = "fw"
  resource_group_name = "rg"
  priority            = 100
  action              = "Allow"
  rule {
    name             = "web"
    source_addresses = ["10.0.0.0/24"]
    target_fqdns     = ["www.example.com"]
    protocol {
      port = "443"
      type = "Https"
    }
  }
}
`)}}, Options{})
	want := map[string]string{
		"main.tf:3":  "tags is an argument of aws_instance, written here as a block",
		"main.tf:12": "cidr_blocks is an argument of aws_security_group, written here as a block",
		"main.tf:20": `the "list" function was removed in Terraform v0.15`,
		"main.tf:24": "vpc_config is a nested block of aws_eks_cluster",
		"main.tf:29": `the "map" function was removed in Terraform v0.15`,
	}
	for at, msg := range want {
		found := false
		for _, n := range p.Notes {
			found = found || n.Rejected && n.Pos.String() == at && strings.Contains(n.Msg, msg)
		}
		if !found {
			t.Errorf("no rejected note at %s saying %q: %v", at, msg, p.Notes)
		}
	}
	for _, n := range p.Notes {
		if n.Rejected && want[n.Pos.String()] == "" {
			t.Errorf("rejected, though Terraform takes it: %v", n)
		}
	}
	rs := byAddr(p)
	if v, ok := rs["aws_instance.web"].Values["tags"]; ok {
		t.Errorf("aws_instance.web: tags read as set: %v", v)
	}
	rule := rs["azurerm_firewall_application_rule_collection.web"].Values["rule"].([]any)[0].(map[string]any)
	if pr, _ := rule["protocol"].([]any); len(pr) != 1 || pr[0].(map[string]any)["port"] != "443" {
		t.Errorf("an application rule's protocol block: %v, want it read", rule["protocol"])
	}
	sg := rs["aws_security_group.sg"].Values
	in := sg["ingress"].([]any)[0].(map[string]any)
	if _, ok := in["cidr_blocks"]; ok || in["from_port"] != 22.0 {
		t.Errorf("ingress = %v: want the rule read, its cidr_blocks block as not set", in)
	}
	if v := sg["egress"].([]any)[0].(map[string]any)["cidr_blocks"]; !isUnknown(v) {
		t.Errorf("egress cidr_blocks = %v, want it not known statically", v)
	}
	if v, ok := rs["aws_eks_cluster.k"].Values["vpc_config"]; ok {
		t.Errorf("aws_eks_cluster.k: vpc_config read as set: %v", v)
	}
}

// TestTryOverComputed: an attribute of a resource that the configuration
// does not set is computed by the provider, known only after apply, so
// try and can do not take their fallback over it, as at plan time: a
// module output try(aws_vpc.this[0].cidr_block, null) is the VPC's range
// once the VPC is read (it read as null, the fallback, when the output was
// read before the VPC), and try over an attribute the provider computes is
// not known statically.
func TestTryOverComputed(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`module "vpc" {
  source = "./m"
  cidr   = "10.0.0.0/16"
}
resource "aws_security_group" "rds" {
  ingress {
    cidr_blocks = [module.vpc.vpc_cidr_block]
  }
  egress {
    cidr_blocks = [module.vpc.ipv6]
    self        = module.vpc.can
  }
}
`)},
		"m/main.tf": {Data: []byte(`variable "cidr" {}
resource "aws_vpc" "this" {
  count      = 1
  cidr_block = var.cidr
}
output "vpc_cidr_block" {
  value = try(aws_vpc.this[0].cidr_block, null)
}
output "ipv6" {
  value = try(aws_vpc.this[0].ipv6_cidr_block, "::/0")
}
output "can" {
  value = can(aws_vpc.this[0].ipv6_cidr_block)
}
`)}}, Options{})
	v := byAddr(p)["aws_security_group.rds"].Values
	in := v["ingress"].([]any)[0].(map[string]any)
	if l, ok := in["cidr_blocks"].([]any); !ok || len(l) != 1 || l[0] != "10.0.0.0/16" {
		t.Errorf("ingress cidr_blocks = %v, want [10.0.0.0/16]", in["cidr_blocks"])
	}
	eg := v["egress"].([]any)[0].(map[string]any)
	if l, ok := eg["cidr_blocks"].([]any); !isUnknown(eg["cidr_blocks"]) && (!ok || len(l) != 1 || !isUnknown(l[0])) {
		t.Errorf("egress cidr_blocks = %v, want it not known statically", eg["cidr_blocks"])
	}
	if !isUnknown(eg["self"]) {
		t.Errorf("can over a computed attribute = %v, want it not known statically", eg["self"])
	}
}

// TestMissingFileNote: a file() of a file the checked tree does not hold
// was noted with the system call that failed ("statat key.pub: no such
// file or directory"); the note names the file and what is wrong with it.
func TestMissingFileNote(t *testing.T) {
	dir := t.TempDir()
	src := "resource \"aws_key_pair\" \"ops\" {\n  public_key = file(\"keys/ops.pub\")\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	p, err := LoadDir(root.FS(), ".", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.Msg)
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "keys/ops.pub: no such file") || strings.Contains(all, "statat") {
		t.Errorf("notes %q: want one naming keys/ops.pub as missing, without the system call", all)
	}
}

// TestForEachMapWithUnknownValues checks that a resource's for_each over a
// map whose keys are known but some of whose values are not (a name from a
// module not read) makes one instance a key, each with what is known of
// its value, as Terraform does, rather than one instance where nothing is
// known.
func TestForEachMapWithUnknownValues(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`variable "suffix" {}
locals {
  rules = {
    web = { name = "web-${var.suffix}", port = "443", source = "*" }
    ssh = { name = "ssh-${var.suffix}", port = "22", source = "203.0.113.0/24" }
  }
}
resource "azurerm_network_security_rule" "r" {
  for_each                = local.rules
  name                    = each.value.name
  destination_port_range  = each.value.port
  source_address_prefix   = each.value.source
}
`)}}, Options{})
	m := byAddr(p)
	ssh, ok := m[`azurerm_network_security_rule.r["ssh"]`]
	if !ok {
		t.Fatalf("no instance for key ssh: %v", slices.Collect(maps.Keys(m)))
	}
	if ssh.Values["source_address_prefix"] != "203.0.113.0/24" || ssh.Values["destination_port_range"] != "22" {
		t.Errorf("ssh instance values = %v, want its known port and source", ssh.Values)
	}
	if !isUnknown(ssh.Values["name"]) {
		t.Errorf("ssh instance name = %v, want it not known statically", ssh.Values["name"])
	}
	for _, n := range p.Notes {
		if strings.Contains(n.Msg, "for_each is not known statically") {
			t.Errorf("note %q, want none: the keys are known", n.Msg)
		}
	}
}

// TestNameMadeAtApplyNotNoted: a resource's name made of what the
// provider computes (a random_pet's or random_id's), directly or through
// local values, is fixed only at apply: nothing can name the resource by
// a string of its own, only by referring to it, which the model follows,
// so the name is not noted; a name from a variable without a value, which
// another resource may repeat, is, and so is any other attribute made of
// such values.
func TestNameMadeAtApplyNotNoted(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
variable "prefix" {}
resource "random_pet" "this" {
  length = 1
}
resource "random_id" "this" {
  byte_length = 1
}
resource "random_integer" "net" {
  min = 10
  max = 250
}
locals {
  base = "${random_pet.this.id}-${random_id.this.dec}"
  vm   = "${local.base}-vm"
}
resource "azurerm_network_security_group" "direct" {
  name = "nsg-${random_id.this.hex}"
}
resource "azurerm_network_interface" "local" {
  name = local.vm
}
resource "azurerm_virtual_network" "given" {
  name = "${var.prefix}-vnet"
}
resource "azurerm_resource_group" "main" {
  name = "${var.prefix}-rg"
}
resource "azurerm_subnet" "range" {
  name                = local.vm
  resource_group_name = azurerm_resource_group.main.name
  address_prefixes    = [cidrsubnet("10.0.0.0/8", 8, random_integer.net.result)]
}
`)}}, Options{})
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.String())
	}
	all := strings.Join(msgs, "\n")
	for _, addr := range []string{"azurerm_network_security_group.direct", "azurerm_network_interface.local", "azurerm_subnet.range: value is not known statically"} {
		if strings.Contains(all, addr) {
			t.Errorf("a note on %s, whose name is made at apply:\n%s", addr, all)
		}
	}
	for _, want := range []string{"azurerm_virtual_network.given: value is not known statically (depends on var.prefix)", "azurerm_resource_group.main: value is not known statically (depends on var.prefix)", "azurerm_subnet.range: value is computed by the provider (random_integer.net.result)"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
}

// TestWorkspaceChosenAtRun: terraform.workspace is the workspace selected
// when Terraform runs, not known statically: a map keyed by workspaces
// without "default" is read as any of its values, not refused, and a name
// made of the workspace is not noted (nothing names the resource by it but
// by referring to it).
func TestWorkspaceChosenAtRun(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
locals {
  by_workspace = {
    prod = { cidr = "10.1.0.0/16" }
    test = { cidr = "10.2.0.0/16" }
  }
  settings = local.by_workspace[terraform.workspace]
}
resource "aws_vpc" "main" {
  cidr_block = local.settings.cidr
  tags       = { Name = "vpc-${terraform.workspace}" }
}
resource "azurerm_virtual_network" "main" {
  name = "vnet-${terraform.workspace}"
}
`)}}, Options{})
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.String())
	}
	all := strings.Join(msgs, "\n")
	if strings.Contains(all, "cannot evaluate") || strings.Contains(all, "azurerm_virtual_network.main") {
		t.Errorf("notes on a map keyed by workspace or a name made of it:\n%s", all)
	}
	if _, ok := byAddr(p)["aws_vpc.main"].Values["cidr_block"].(Unknown); !ok {
		t.Errorf("the VPC's range, chosen by workspace, is %v, want not known statically", byAddr(p)["aws_vpc.main"].Values["cidr_block"])
	}
}

// TestDuplicateProviderRejected: two configurations of one provider with
// the same alias (or none) in one module are one Terraform refuses
// (Duplicate provider configuration); an aliased one beside the default
// is not.
func TestDuplicateProviderRejected(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
provider "aws" {
  region = "us-east-1"
}
provider "aws" {
  alias  = "west"
  region = "us-west-2"
}
provider "azurerm" {
  features {}
}
`)},
		"other.tf": {Data: []byte(`
provider "aws" {
  region = "us-east-2"
}
provider "aws" {
  alias  = "west"
  region = "us-west-1"
}
`)},
		"more.tf.json": {Data: []byte(`{"provider": {"azurerm": [{"alias": "hub", "features": {}}, {"alias": "spoke", "features": {}}]}}`)},
	}, Options{})
	var rejected []string
	for _, n := range p.Notes {
		if n.Rejected {
			rejected = append(rejected, n.String())
		}
	}
	all := strings.Join(rejected, "\n")
	for _, want := range []string{
		"other.tf:2: provider.aws: duplicate provider configuration definition (first at main.tf:2)",
		"other.tf:5: provider.aws.west: duplicate provider configuration definition (first at main.tf:5)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no rejected note %q; rejected:\n%s", want, all)
		}
	}
	if strings.Contains(all, "azurerm") || len(rejected) != 2 {
		t.Errorf("rejected notes besides the two duplicates:\n%s", all)
	}
}

// TestEphemeralAndResourceGroupLookup: an ephemeral resource (Terraform
// 1.10) is declared, not an undeclared name, its values known only when
// Terraform runs; a resource group looked up by name is that name, so what
// is placed in it by that name is not noted.
func TestEphemeralAndResourceGroupLookup(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
ephemeral "random_password" "db" {
  length = 20
}
data "azurerm_resource_group" "rg" {
  name = "rg-apps"
}
resource "azurerm_virtual_network" "main" {
  name                = "vnet-apps"
  resource_group_name = data.azurerm_resource_group.rg.name
  location            = data.azurerm_resource_group.rg.location
  address_space       = ["10.0.0.0/16"]
}
resource "azurerm_postgresql_flexible_server" "db" {
  name                      = "psql-apps"
  resource_group_name       = data.azurerm_resource_group.rg.name
  administrator_password_wo = ephemeral.random_password.db.result
}
`)}}, Options{})
	var msgs []string
	for _, n := range p.Notes {
		msgs = append(msgs, n.String())
	}
	all := strings.Join(msgs, "\n")
	if strings.Contains(all, "undeclared name ephemeral") || strings.Contains(all, "data.azurerm_resource_group.rg.name") {
		t.Errorf("notes on an ephemeral reference or a resource group looked up by name:\n%s", all)
	}
	if got := byAddr(p)["azurerm_virtual_network.main"].Values["resource_group_name"]; got != "rg-apps" {
		t.Errorf("resource_group_name = %v, want the name looked up", got)
	}
}

// TestImportBlocks: an import block gives the resource it names (an
// instance of it, by key) the ID of the object it adopts; in a module,
// where Terraform takes none, it is rejected.
func TestImportBlocks(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
variable "group_id" {
  default = "sg-0123"
}
import {
  id = var.group_id
  to = aws_security_group.web["a"]
}
import {
  id = "i-0456"
  to = aws_instance.web[1]
}
resource "aws_security_group" "web" {
  for_each = toset(["a", "b"])
}
resource "aws_instance" "web" {
  count = 2
}
module "net" {
  source = "./net"
}
`)},
		"net/main.tf": {Data: []byte(`
import {
  id = "vpc-0789"
  to = aws_vpc.main
}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
`)},
	}, Options{})
	want := map[string]string{`aws_security_group.web["a"]`: "sg-0123", `aws_security_group.web["b"]`: "", "aws_instance.web[0]": "", "aws_instance.web[1]": "i-0456", "module.net.aws_vpc.main": ""}
	for addr, id := range want {
		if r, ok := byAddr(p)[addr]; !ok || r.ImportID != id {
			t.Errorf("%s: import ID %q, want %q", addr, r.ImportID, id)
		}
	}
	var rejected []string
	for _, n := range p.Notes {
		if n.Rejected {
			rejected = append(rejected, n.String())
		}
	}
	if len(rejected) != 1 || !strings.Contains(rejected[0], "module.net.import") {
		t.Errorf("rejected: %q, want the module's import block alone", rejected)
	}
}

// TestSecurityGroupRuleObjectsComplete: a security group's ingress or
// egress written as an attribute (ingress = [{…}]) takes every field of
// the rule in each object, null where unused; one left out is a value
// Terraform refuses. The block form, and an object naming every field,
// are not.
func TestSecurityGroupRuleObjectsComplete(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "aws_security_group" "short" {
  ingress = [
    {
      from_port   = 443
      to_port     = 443
      protocol    = "tcp"
      cidr_blocks = ["10.0.0.0/16"]
    }
  ]
}
resource "aws_security_group" "full" {
  egress = [{
    "cidr_blocks": ["0.0.0.0/0"],
    "description": "",
    "from_port": 0,
    "ipv6_cidr_blocks": [],
    "prefix_list_ids": [],
    "protocol": "-1",
    "security_groups": [],
    "self": false,
    "to_port": 0
  }]
}
resource "aws_security_group" "blocks" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}
`)}}, Options{})
	var rejected []string
	for _, n := range p.Notes {
		if n.Rejected {
			rejected = append(rejected, n.String())
		}
	}
	if len(rejected) != 1 || !strings.Contains(rejected[0], "aws_security_group.short") || !strings.Contains(rejected[0], "description, ipv6_cidr_blocks, prefix_list_ids, security_groups, self") {
		t.Errorf("rejected: %q, want the short group's ingress naming the fields it leaves out", rejected)
	}
}

// TestSyntaxErrorSaidOnce: a line with two characters HCL does not take
// is one error of that line, said once, not once per character.
func TestSyntaxErrorSaidOnce(t *testing.T) {
	_, err := LoadDir(fstest.MapFS{"main.tf": {Data: []byte(`
resource "azurerm_subnet" "s" {
  count = 3
  name  = ${var.rg}-subnet-${count.index+1}
}
`)}}, ".", Options{})
	if err == nil {
		t.Fatal("no error for a line HCL does not parse")
	}
	if n := strings.Count(err.Error(), "main.tf:4: Invalid character"); n != 1 {
		t.Errorf("error %q says the invalid character %d times, want once", err, n)
	}
}

// TestUnexpectedTopLevelBlockRejected: a block Terraform does not take at
// the top level of a file (a security group's ingress written outside
// its resource), or an argument there, was passed over in silence, the
// rule it meant to add read as not written. Terraform rejects both
// (Unsupported block type, Unsupported argument); the blocks it takes
// there (terraform, moved, removed, check …) are not noted.
func TestUnexpectedTopLevelBlockRejected(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
terraform {
  required_version = ">= 1.5"
}
resource "aws_security_group" "workers" {
  name = "workers"
}
ingress {
  from_port = 22
  to_port   = 22
  protocol  = "tcp"
}
region = "us-east-1"
moved {
  from = aws_security_group.old
  to   = aws_security_group.workers
}
removed {
  from = aws_instance.gone
  lifecycle {
    destroy = false
  }
}
check "up" {
  assert {
    condition     = true
    error_message = "down"
  }
}
`)}}, Options{})
	var rejected []string
	for _, n := range p.Notes {
		if n.Rejected {
			rejected = append(rejected, n.Msg)
		}
	}
	joined := strings.Join(rejected, "\n")
	if len(rejected) != 2 || !strings.Contains(joined, `block "ingress"`) || !strings.Contains(joined, `argument "region"`) {
		t.Errorf("rejected notes %q, want two, on the ingress block and the region argument", rejected)
	}
}

// TestUndeclaredVariableInPolicyDocument: a policy document, read quietly
// for the statements it builds, dropped the note on a reference to an
// input variable the module does not declare (var.region, its declaration
// misspelt), which Terraform rejects there as anywhere.
func TestUndeclaredVariableInPolicyDocument(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
variable "domain" {
  default = "search"
}
data "aws_iam_policy_document" "search" {
  statement {
    actions   = ["es:*"]
    resources = ["arn:aws:es:${var.region}:111122223333:domain/${var.domain}/*"]
  }
}
resource "aws_opensearch_domain" "search" {
  domain_name     = var.domain
  access_policies = data.aws_iam_policy_document.search.json
}
`)}}, Options{})
	var rejected []string
	for _, n := range p.Notes {
		if n.Rejected {
			rejected = append(rejected, n.Address+": "+n.Msg)
		}
	}
	// The document is read more than once; the one expression is one.
	if len(rejected) != 1 || !strings.Contains(rejected[0], "reference to undeclared input variable var.region") || strings.Contains(rejected[0], "other expression") {
		t.Errorf("rejected notes %q, want one on var.region, of one expression", rejected)
	}
}
