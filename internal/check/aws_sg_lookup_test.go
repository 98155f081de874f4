package check

import (
	"strings"
	"testing"
)

// A security group the project makes and looks up again by its name (the
// name argument, or a group-name filter) is that group: an instance given
// the lookup's ID is behind that group's rules, which admit HTTPS alone,
// and the group is used. A lookup of a name no group of the project has
// stays a group made elsewhere.
func TestSecurityGroupLookedUpByName(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "v" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_internet_gateway" "g" {
  vpc_id = aws_vpc.v.id
}

resource "aws_subnet" "a" {
  vpc_id                  = aws_vpc.v.id
  cidr_block              = "10.0.1.0/24"
  map_public_ip_on_launch = true
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.v.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.g.id
  }
}

resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = aws_vpc.v.id
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

data "aws_security_group" "by_name" {
  name       = "web"
  vpc_id     = aws_vpc.v.id
  depends_on = [aws_security_group.web]
}

data "aws_security_group" "by_filter" {
  filter {
    name   = "group-name"
    values = ["web"]
  }
  depends_on = [aws_security_group.web]
}

data "aws_security_group" "other" {
  name = "made-elsewhere"
}

resource "aws_instance" "named" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [data.aws_security_group.by_name.id]
}

resource "aws_instance" "filtered" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [data.aws_security_group.by_filter.id]
}

resource "aws_instance" "elsewhere" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [data.aws_security_group.other.id]
}
`)
	for _, addr := range []string{"aws_instance.named", "aws_instance.filtered"} {
		if f := findingOn(rep, RuleExposedPort, addr); f != nil {
			t.Errorf("%s: %s", addr, f.Message)
		}
		if f := findingOn(rep, RuleNotEvaluated, addr); f != nil {
			t.Errorf("%s noted: %s", addr, f.Message)
		}
	}
	if f := findingOn(rep, RuleUnusedSG, "aws_security_group.web"); f != nil {
		t.Errorf("the group looked up is read as not used: %s", f.Message)
	}
	if f := findingOn(rep, RuleExposedPort, "aws_instance.elsewhere"); f == nil || !strings.Contains(f.Message, "may be reachable") {
		t.Errorf("the instance behind a group made elsewhere: %+v, want a finding not proven", f)
	}
}

// A VPC, subnet or security group looked up by its ID (data "aws_subnet"
// { id = ... }) is the one of that ID: a module given the project's
// subnet, VPC and group by ID and looking them up places its instance in
// that subnet behind that group, a proven path; it was read as a subnet
// and groups not known statically. A group looked up by an ID written
// in the code is that ID, a group made elsewhere, not a value not known.
func TestLookedUpByID(t *testing.T) {
	rep := run(t, "testdata/aws/lookup-by-id")
	f := findingOn(rep, RuleExposedPort, "module.app.aws_instance.this")
	if f == nil || f.Severity != Critical || strings.Contains(f.Message, "may be") {
		if f != nil {
			t.Fatalf("the module's instance: %s %s, want %s critical", f.Severity, f.Message, RuleExposedPort)
		}
		t.Fatalf("the module's instance: no %s", RuleExposedPort)
	}
	for _, want := range []string{"tcp 22 (SSH)", "3389 (RDP)"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("%s does not name %s: %s", RuleExposedPort, want, f.Message)
		}
	}
	rdp := false
	for _, pp := range f.Paths {
		if pp.Ports != "tcp 3389 (RDP)" {
			continue
		}
		rdp = true
		if p := pathText(pp.Path); !strings.Contains(p, "aws_subnet.public") || !strings.Contains(p, "aws_security_group.ops") {
			t.Errorf("RDP's path %s does not go through aws_subnet.public and aws_security_group.ops", p)
		}
	}
	if !rdp {
		t.Errorf("no path for RDP: %+v", f.Paths)
	}
	if f := findingOn(rep, RuleUnusedSG, "aws_security_group.ops"); f != nil {
		t.Errorf("the group the module looks up is read as unused: %s", f.Message)
	}
	for _, f := range rep.Findings {
		if f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, "depends on data.") {
			t.Errorf("a lookup by ID is read as not known statically: %s: %s", f.Address, f.Message)
		}
	}
}

// Lookups by ID with count or for_each (data "aws_subnet" { count =
// length(var.ids); id = var.ids[count.index] }, or for_each =
// toset(var.ids) with id = each.value) have an instance each, the one of
// its ID: a module given the project's subnets by ID places its
// instances in them, by an instance's index, a splat or a for
// expression, a proven path; the lookups were read as subnets not known
// statically. One whose IDs are not given stays so, read at its worst.
func TestLookedUpByIDRepeated(t *testing.T) {
	rep := run(t, "testdata/aws/lookup-by-id-count")
	for addr, subnet := range map[string]string{
		"module.app.aws_instance.first":                        "aws_subnet.public[0]",
		`module.app.aws_instance.each["aws_subnet.public[0]"]`: "aws_subnet.public[0]",
		`module.app.aws_instance.each["aws_subnet.public[1]"]`: "aws_subnet.public[1]",
		"module.app.aws_instance.splat":                        "aws_subnet.public[1]",
		"module.app.aws_instance.listed":                       "aws_subnet.public[0]",
	} {
		f := findingOn(rep, RuleExposedPort, addr)
		if f == nil {
			t.Errorf("%s: no %s", addr, RuleExposedPort)
			continue
		}
		if f.Severity != Critical || strings.Contains(f.Message, "may be") {
			t.Errorf("%s: %s %s, want %s critical", addr, f.Severity, f.Message, RuleExposedPort)
			continue
		}
		if p := pathText(f.Path); !strings.Contains(p, "→ "+subnet+":") {
			t.Errorf("%s: path %s, want one through %s", addr, p, subnet)
		}
	}
	f := findingOn(rep, RuleExposedPort, "aws_instance.legacy")
	if f == nil || f.Severity != High || !strings.Contains(f.Message, "may be") {
		t.Errorf("the instance in a subnet whose ID is not given: %+v, want a finding not proven", f)
	}
}
