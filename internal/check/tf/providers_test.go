package tf

import (
	"testing"
	"testing/fstest"

	goversion "github.com/hashicorp/go-version"
)

// Below reads a version constraint's upper bound as Terraform does.
func TestConstraintBelow(t *testing.T) {
	limit := goversion.Must(goversion.NewVersion("3.0.0"))
	for c, want := range map[string]bool{
		"~> 2.46": true, "~> 2.46.0": true, "~> 3.0": false, "~> 2": false, "< 3.0": true, "< 3.0.1": false,
		"<= 2.99.0": true, "<= 3.0.0": false, "= 2.99.0": true, "2.99.0": true, "3.1.0": false, ">= 2.0": false,
		"!= 3.0.0": false, "> 2.0": false, "not a version": false,
	} {
		if got := Below(c, limit); got != want {
			t.Errorf("Below(%q, 3.0.0) = %v, want %v", c, got, want)
		}
	}
}

// Configs names the provider configuration of each resource and data
// source as the root module names it: a provider argument, a module
// call's providers (through nested calls), or the caller's default
// configuration a call passes on by not naming it.
func TestProviderConfigs(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
provider "aws" {
  region = "us-east-1"
}
provider "aws" {
  alias  = "west"
  region = "us-west-2"
}
resource "aws_vpc" "east" {
  cidr_block = "10.0.0.0/16"
}
data "aws_vpc" "west" {
  provider = aws.west
  default  = true
}
module "west" {
  source    = "./mod"
  providers = { aws = aws.west }
}
module "inherited" {
  source = "./mod"
}
`)},
		"mod/main.tf": {Data: []byte(`
resource "aws_vpc" "this" {
  cidr_block = "10.1.0.0/16"
}
module "inner" {
  source = "./inner"
}
`)},
		"mod/inner/main.tf": {Data: []byte(`
resource "aws_subnet" "this" {
  vpc_id     = "vpc-1"
  cidr_block = "10.1.1.0/24"
}
`)},
	}, Options{})
	for addr, want := range map[string]string{
		"aws_vpc.east":                                  "aws",
		"data.aws_vpc.west":                             "aws.west",
		"module.west.aws_vpc.this":                      "aws.west",
		"module.west.module.inner.aws_subnet.this":      "aws.west",
		"module.inherited.aws_vpc.this":                 "aws",
		"module.inherited.module.inner.aws_subnet.this": "aws",
	} {
		if got, ok := p.Configs[addr]; !ok || got != want {
			t.Errorf("Configs[%s] = %q, want %q", addr, got, want)
		}
	}
}
