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

// AWS provider configurations known to be one region of one account are
// named as one in Configs, by the first name: the same region known
// statically (a literal, a variable's default) and no argument saying
// another account. One assuming a role, using another profile, allowed
// other accounts alone (than those of the configurations it would join),
// or whose region is not known is its own.
func TestProviderConfigsSameRegion(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
variable "region" {
  default = "eu-west-1"
}
variable "other" {
  type = string
}
provider "aws" {
  region              = "eu-west-1"
  allowed_account_ids = ["111111111111"]
}
provider "aws" {
  alias               = "tags"
  region              = var.region
  allowed_account_ids = ["111111111111", "555555555555"]
}
provider "aws" {
  alias  = "audit"
  region = "eu-west-1"
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/audit"
  }
}
provider "aws" {
  alias               = "elsewhere"
  region              = "eu-west-1"
  allowed_account_ids = ["333333333333"]
}
provider "aws" {
  alias  = "same"
  region = "eu-west-1"
}
provider "aws" {
  alias   = "dev"
  region  = "eu-west-1"
  profile = "dev"
}
provider "aws" {
  alias  = "unknown"
  region = var.other
}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_vpc" "tags" {
  provider   = aws.tags
  cidr_block = "10.1.0.0/16"
}
resource "aws_vpc" "audit" {
  provider   = aws.audit
  cidr_block = "10.2.0.0/16"
}
resource "aws_vpc" "elsewhere" {
  provider   = aws.elsewhere
  cidr_block = "10.3.0.0/16"
}
resource "aws_vpc" "same" {
  provider   = aws.same
  cidr_block = "10.6.0.0/16"
}
resource "aws_vpc" "dev" {
  provider   = aws.dev
  cidr_block = "10.4.0.0/16"
}
resource "aws_vpc" "unknown" {
  provider   = aws.unknown
  cidr_block = "10.5.0.0/16"
}
`)},
	}, Options{})
	for addr, want := range map[string]string{
		"aws_vpc.main":      "aws",
		"aws_vpc.tags":      "aws",
		"aws_vpc.audit":     "aws.audit",
		"aws_vpc.elsewhere": "aws.elsewhere",
		"aws_vpc.same":      "aws",
		"aws_vpc.dev":       "aws.dev",
		"aws_vpc.unknown":   "aws.unknown",
	} {
		if got := p.Configs[addr]; got != want {
			t.Errorf("Configs[%s] = %q, want %q", addr, got, want)
		}
	}
}

// TestRequiredProvidersWithAliases checks that a required_providers entry
// that declares configuration_aliases, references to provider
// configurations that evaluate to nothing, still gives its version
// constraint; the whole entry failed to evaluate and the constraint was
// lost, so a provider pinned before a default changed was read as the
// newest.
func TestRequiredProvidersWithAliases(t *testing.T) {
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte(`
terraform {
  required_providers {
    azurerm = {
      source                = "hashicorp/azurerm"
      version               = "3.43.0"
      configuration_aliases = [azurerm.runtime]
    }
  }
}
`)},
	}, Options{})
	got := p.Providers["azurerm"].Constraints
	if len(got) != 1 || got[0] != "3.43.0" {
		t.Fatalf("azurerm constraints %q, want [3.43.0]", got)
	}
}
