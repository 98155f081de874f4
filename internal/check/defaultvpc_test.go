package check

import (
	"context"
	"strings"
	"testing"
)

// A project on the account's default VPC, found by lookups: what is
// placed in its subnets through aws_subnets, aws_subnet_ids or a default
// aws_subnet, directly, through a module's variable or one instance for
// each subnet (for_each over the IDs, each.value), and what names no
// subnet, is in a default subnet, public as AWS makes it (an internet
// gateway on the main route table, public addresses on launch, an ACL that
// allows all): a world-open port is proven reached, critical, along the
// VPC's path. A group that admits the VPC's own range (its cidr_block, now
// known) admits no internet address. Subnets picked by tag may be ones
// added to the VPC, and stay not proven.
func TestDefaultVPCLookups(t *testing.T) {
	rep := run(t, "testdata/aws/default-vpc-lookup")
	for addr, lookup := range map[string]string{
		"aws_instance.bastion":           "data.aws_subnets.default",
		"aws_instance.legacy":            "data.aws_subnet_ids.all",
		"aws_instance.zonal":             "data.aws_subnet.az_a",
		"aws_instance.worker":            "data.aws_vpc.default:default-subnet",
		"aws_instance.fleet":             "data.aws_subnets.default",
		"module.db.aws_db_instance.this": "data.aws_subnets.default",
	} {
		f := findingOn(rep, RuleExposedPort, addr)
		if f == nil {
			t.Errorf("%s: no %s", addr, RuleExposedPort)
			continue
		}
		if f.Severity != Critical || strings.Contains(f.Message, "may be") {
			t.Errorf("%s: %s %s, want critical and proven", addr, f.Severity, f.Message)
		}
		path := pathText(f.Path)
		if !strings.Contains(path, "data.aws_vpc.default:internet-gateway") || !strings.Contains(path, lookup) {
			t.Errorf("%s: path %s, want the default VPC's gateway and %s", addr, path, lookup)
		}
	}
	if f := findingOn(rep, RuleDataTierPublic, "module.db.aws_db_instance.this"); f == nil || f.Severity != High || len(f.Path) == 0 {
		t.Errorf("the database in the default subnets: %+v, want %s high with its path", f, RuleDataTierPublic)
	}
	if f := findingOn(rep, RuleExposedPort, "aws_instance.internal"); f != nil {
		t.Errorf("SSH from the default VPC's own range is reported: %s", f.Message)
	}
	if f := findingOn(rep, RuleExposedPort, "aws_db_instance.reporting"); f == nil || f.Severity != High || !strings.Contains(f.Message, "may be reachable") {
		t.Errorf("the database in subnets picked by tag: %+v, want high, not proven", f)
	}
}

// The default VPC the project adopts (aws_default_vpc) is where a
// database that names no subnet group is: behind the default security
// group, whose world-open rules let the internet reach it.
func TestDefaultVPCUnplacedDatabase(t *testing.T) {
	rep := checkSource(t, `
resource "aws_default_vpc" "default" {}

resource "aws_default_security_group" "default" {
  vpc_id = aws_default_vpc.default.id
  ingress {
    from_port   = 3306
    to_port     = 3306
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_db_instance" "db" {
  identifier                  = "db"
  engine                      = "mysql"
  instance_class              = "db.t3.micro"
  allocated_storage           = 20
  username                    = "app"
  manage_master_user_password = true
  storage_encrypted           = true
  publicly_accessible         = true
}
`)
	f := findingOn(rep, RuleExposedPort, "aws_db_instance.db")
	if f == nil || f.Severity != Critical || strings.Contains(f.Message, "may be") {
		t.Fatalf("the database in the adopted default VPC: %+v, want critical and proven", f)
	}
	if p := pathText(f.Path); !strings.Contains(p, "aws_default_security_group.default") {
		t.Errorf("path %s, want the default security group", p)
	}
}

// An instance for each of the project's subnets, whose count is not known
// statically, is in one of them: private subnets with no route to the
// internet give it no public address, and no path is assumed through a
// subnet outside the scanned code.
func TestForEachOverSubnetsNotKnown(t *testing.T) {
	rep := checkSource(t, `
variable "n" {}

resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "private" {
  count      = var.n
  vpc_id     = aws_vpc.v.id
  cidr_block = cidrsubnet("10.0.0.0/16", 8, count.index)
}

resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.v.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "node" {
  for_each               = toset(aws_subnet.private[*].id)
  ami                    = "ami-0123456789abcdef0"
  instance_type          = "t3.micro"
  subnet_id              = each.value
  vpc_security_group_ids = [aws_security_group.ssh.id]
}
`)
	if f := findingOn(rep, RuleExposedPort, "aws_instance.node"); f != nil {
		t.Errorf("an instance in the private subnets is reported: %s", f.Message)
	}
	if f := findingOn(rep, RuleWorldOpen, "aws_security_group.ssh"); f == nil || !strings.Contains(f.Message, "no path from the internet to it is proven") {
		t.Errorf("the world-open group: %+v, want one attached with no path proven", f)
	}
}

// Each region's default VPC is a network of its own, whatever range they
// share: lookups made with another provider configuration, by a resource's
// provider argument or through a module call's providers, are another
// default VPC, whose instances do not reach a group that admits the first
// one's range; a module given the default configuration looks up the
// root's default VPC.
func TestDefaultVPCPerRegion(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/aws/default-vpc-regions"}}, "aws_db_instance.db")
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]bool{}
	for _, a := range acc {
		if a.Port == 5432 {
			from[a.Source] = true
		}
	}
	for src := range from {
		if strings.Contains(src, "west") {
			t.Errorf("the database in us-east-1 is reached from %s, in us-west-2's default VPC", src)
		}
	}
	if !from["module.east.aws_instance.this (in module.east.data.aws_subnets.default)"] {
		t.Errorf("the database is not reached from the instance of the module on the default provider: %v", from)
	}
}

// A default subnet whose mapping of public addresses the project turns off
// in one region says nothing of another region's default subnets: an
// instance there that names no subnet gets a public address, and SSH open
// to the world reaches it.
func TestDefaultSubnetPrivateInOtherRegion(t *testing.T) {
	rep := checkSource(t, `
provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "west"
  region = "us-west-2"
}

resource "aws_default_vpc" "east" {}

resource "aws_default_subnet" "east_a" {
  availability_zone       = "us-east-1a"
  map_public_ip_on_launch = false
}

resource "aws_default_vpc" "west" {
  provider = aws.west
}

resource "aws_security_group" "ssh" {
  provider = aws.west
  name     = "ssh"
  vpc_id   = aws_default_vpc.west.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "bastion" {
  provider               = aws.west
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.ssh.id]
}
`)
	f := findingOn(rep, RuleExposedPort, "aws_instance.bastion")
	if f == nil || f.Severity != Critical || !strings.Contains(pathText(f.Path), "aws_default_vpc.west:internet-gateway") {
		t.Fatalf("the bastion in us-west-2's default VPC: %+v, want %s critical through that VPC's gateway", f, RuleExposedPort)
	}
}

// An auto scaling group that names availability zones but no subnet
// launches its instances in those zones' default subnets, as an instance
// that names no subnet is: in the default VPC the project looks up, whose
// path is proven; it was read as in a subnet outside the scanned code.
func TestDefaultVPCAutoScalingGroupByZone(t *testing.T) {
	rep := checkSource(t, `
data "aws_vpc" "default" {
  default = true
}

resource "aws_security_group" "web" {
  vpc_id = data.aws_vpc.default.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_launch_template" "web" {
  image_id               = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.web.id]
}

resource "aws_autoscaling_group" "web" {
  availability_zones = ["us-east-1a", "us-east-1b"]
  min_size           = 1
  max_size           = 2
  launch_template {
    id = aws_launch_template.web.id
  }
}
`)
	f := findingOn(rep, RuleExposedPort, "aws_autoscaling_group.web")
	if f == nil || f.Severity != Critical || strings.Contains(f.Message, "may be") || !strings.Contains(pathText(f.Path), "data.aws_vpc.default:internet-gateway") {
		t.Errorf("the group in the default subnets: %+v, want %s critical through the default VPC's gateway", f, RuleExposedPort)
	}
}

// A classic load balancer that names availability zones but no subnet is
// in those zones' default subnets, as an auto scaling group by zone is: in
// the default VPC the project looks up, so the internet's path through it
// to its instance is proven; it was read as in a subnet outside the
// scanned code, an assumption.
func TestDefaultVPCClassicLoadBalancerByZone(t *testing.T) {
	dir := writeProject(t, `
data "aws_vpc" "default" {
  default = true
}

resource "aws_security_group" "app" {
  vpc_id = data.aws_vpc.default.id
  ingress {
    from_port   = 8080
    to_port     = 8080
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.default.cidr_block]
  }
}

resource "aws_instance" "app" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  associate_public_ip_address = false
  vpc_security_group_ids      = [aws_security_group.app.id]
}

resource "aws_elb" "app" {
  availability_zones = ["us-east-1a", "us-east-1b"]
  instances          = [aws_instance.app.id]
  listener {
    lb_port           = 80
    lb_protocol       = "http"
    instance_port     = 8080
    instance_protocol = "http"
  }
}
`)
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_instance.app")
	if err != nil {
		t.Fatal(err)
	}
	var inet *Access
	for i := range acc {
		if acc[i].Source == "internet" && acc[i].Port == 8080 {
			inet = &acc[i]
		}
	}
	if inet == nil || len(inet.Assumed) > 0 || !strings.Contains(pathText(inet.Path), "data.aws_vpc.default:internet-gateway") {
		t.Fatalf("the internet through the balancer: %+v, want a proven path through the default VPC's gateway", inet)
	}
}

// Two provider configurations of one region, neither saying another
// account, are one default VPC: an instance on the aliased one that names
// no subnet is in the default VPC the project adopts on the other, so the
// internet's path to its open SSH is proven, critical; they were read as
// two default VPCs, the instance's outside the scanned code, the path
// assumed. A configuration assuming a role in another account keeps a
// default VPC of its own.
func TestDefaultVPCOneRegionTwoConfigurations(t *testing.T) {
	rep := checkSource(t, `
provider "aws" {
  region = "us-east-1"
}

provider "aws" {
  alias  = "apps"
  region = "us-east-1"
}

provider "aws" {
  alias  = "partner"
  region = "us-east-1"
  assume_role {
    role_arn = "arn:aws:iam::999999999999:role/deploy"
  }
}

resource "aws_default_vpc" "this" {}

resource "aws_security_group" "ssh" {
  provider = aws.apps
  name     = "ssh"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "app" {
  provider               = aws.apps
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.ssh.id]
}

resource "aws_security_group" "partner" {
  provider = aws.partner
  name     = "ssh"
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "partner" {
  provider               = aws.partner
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.partner.id]
}
`)
	f := findingOn(rep, RuleExposedPort, "aws_instance.app")
	if f == nil || f.Severity != Critical || strings.Contains(f.Message, "may be") || !strings.Contains(pathText(f.Path), "aws_default_vpc.this:internet-gateway") {
		t.Errorf("the instance in the region's one default VPC: %+v, want %s critical through its gateway", f, RuleExposedPort)
	}
	f = findingOn(rep, RuleExposedPort, "aws_instance.partner")
	if f == nil || strings.Contains(pathText(f.Path), "aws_default_vpc.this") {
		t.Errorf("the instance in another account's default VPC: %+v, want %s not through the project's default VPC", f, RuleExposedPort)
	}
}
