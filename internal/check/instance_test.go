package check

import (
	"strings"
	"testing"
)

// An instance gets a public address as EC2 decides it: an Elastic IP, its
// own associate_public_ip_address, an attached interface (none at launch),
// its launch template, its subnet's map_public_ip_on_launch, or the default
// VPC when it names no subnet.
func TestInstancePublicIP(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.1.0/24"
  map_public_ip_on_launch = true
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}

variable "subnet_id" {
  type = string
}

resource "aws_instance" "said_true" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.private.id
  associate_public_ip_address = true
}

resource "aws_instance" "said_false_in_public" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = false
}

resource "aws_instance" "in_public" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.public.id
}

resource "aws_instance" "in_private" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.private.id
}

resource "aws_instance" "default_vpc" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
}

resource "aws_instance" "subnet_elsewhere" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  subnet_id     = "subnet-0123456789abcdef0"
}

resource "aws_instance" "subnet_unknown" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  subnet_id     = var.subnet_id
}

resource "aws_instance" "with_eip" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.private.id
  associate_public_ip_address = false
}

resource "aws_eip" "web" {
  domain   = "vpc"
  instance = aws_instance.with_eip.id
}

resource "aws_network_interface" "attached" {
  subnet_id = aws_subnet.public.id
}

resource "aws_instance" "existing_eni" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
  network_interface {
    network_interface_id = aws_network_interface.attached.id
    device_index         = 0
  }
}

resource "aws_network_interface" "with_eip" {
  subnet_id = aws_subnet.private.id
}

resource "aws_network_interface" "loose" {
  subnet_id = aws_subnet.private.id
}

resource "aws_eip_association" "eni" {
  network_interface_id = aws_network_interface.with_eip.id
  allocation_id        = "eipalloc-0123456789abcdef0"
}

resource "aws_eip" "nat" {
  domain = "vpc"
}

resource "aws_nat_gateway" "nat" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
}
`)
	wantFindings(t, rep, RulePublicIP, map[string]bool{
		"aws_instance.said_true":            true,
		"aws_instance.said_false_in_public": false,
		"aws_instance.in_public":            true,
		"aws_instance.in_private":           false,
		"aws_instance.default_vpc":          true,
		"aws_instance.subnet_elsewhere":     false,
		"aws_instance.subnet_unknown":       false,
		"aws_instance.with_eip":             true,
		"aws_instance.existing_eni":         false,
		"aws_network_interface.attached":    false,
		"aws_network_interface.with_eip":    true,
		"aws_network_interface.loose":       false,
		"aws_eip.nat":                       false,
		"aws_nat_gateway.nat":               false,
		"aws_subnet.public":                 true,
		"aws_subnet.private":                false,
	})
	if f := findingOn(rep, RulePublicIP, "aws_instance.default_vpc"); f != nil && !strings.Contains(f.Message, "default VPC") {
		t.Errorf("default VPC instance: message %q does not say why", f.Message)
	}
}

// Launch templates decide for the instances and groups launched from them
// when they say anything of public addresses; otherwise the group's
// subnets do.
func TestLaunchTemplatePublicIP(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.1.0/24"
  map_public_ip_on_launch = true
}

resource "aws_subnet" "private" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.2.0/24"
}

resource "aws_launch_template" "public" {
  image_id = "ami-12345678"
  network_interfaces {
    associate_public_ip_address = "true"
    security_groups             = ["sg-0123456789abcdef0"]
  }
}

resource "aws_launch_template" "private" {
  image_id = "ami-12345678"
  network_interfaces {
    associate_public_ip_address = "false"
  }
}

resource "aws_launch_template" "silent" {
  image_id = "ami-12345678"
}

resource "aws_launch_configuration" "public" {
  image_id                    = "ami-12345678"
  instance_type               = "t3.micro"
  associate_public_ip_address = true
}

resource "aws_autoscaling_group" "from_public_template" {
  min_size            = 1
  max_size            = 1
  vpc_zone_identifier = [aws_subnet.private.id]
  launch_template {
    id = aws_launch_template.public.id
  }
}

resource "aws_autoscaling_group" "private_template_public_subnet" {
  min_size            = 1
  max_size            = 1
  vpc_zone_identifier = [aws_subnet.public.id]
  launch_template {
    id = aws_launch_template.private.id
  }
}

resource "aws_autoscaling_group" "silent_in_public" {
  min_size            = 1
  max_size            = 1
  vpc_zone_identifier = [aws_subnet.public.id]
  launch_template {
    id = aws_launch_template.silent.id
  }
}

resource "aws_autoscaling_group" "silent_in_private" {
  min_size            = 1
  max_size            = 1
  vpc_zone_identifier = [aws_subnet.private.id]
  mixed_instances_policy {
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.silent.id
      }
    }
  }
}

resource "aws_autoscaling_group" "silent_default_vpc" {
  min_size           = 1
  max_size           = 1
  availability_zones = ["eu-west-1a"]
  launch_template {
    name = aws_launch_template.silent.name
  }
}

resource "aws_instance" "from_private_template" {
  subnet_id = aws_subnet.public.id
  launch_template {
    id = aws_launch_template.private.id
  }
}

resource "aws_instance" "from_silent_template" {
  subnet_id = aws_subnet.public.id
  launch_template {
    id = aws_launch_template.silent.id
  }
}

resource "aws_instance" "from_outside_template" {
  launch_template {
    name = "made-elsewhere"
  }
}
`)
	wantFindings(t, rep, RulePublicIP, map[string]bool{
		"aws_launch_template.public":                           true,
		"aws_launch_template.private":                          false,
		"aws_launch_template.silent":                           false,
		"aws_launch_configuration.public":                      true,
		"aws_autoscaling_group.from_public_template":           false, // the template is reported
		"aws_autoscaling_group.private_template_public_subnet": false,
		"aws_autoscaling_group.silent_in_public":               true,
		"aws_autoscaling_group.silent_in_private":              false,
		"aws_autoscaling_group.silent_default_vpc":             true,
		"aws_instance.from_private_template":                   false,
		"aws_instance.from_silent_template":                    true,
		"aws_instance.from_outside_template":                   false,
	})
}

// IMDSv1 answers unless the instance, its launch template, the account's
// metadata defaults or its AMI require tokens, or the service is off.
func TestIMDSv2(t *testing.T) {
	rep := checkSource(t, `
resource "aws_ami" "v2" {
  name                = "v2"
  imds_support        = "v2.0"
  root_device_name    = "/dev/xvda"
  virtualization_type = "hvm"
}

resource "aws_instance" "required" {
  ami = "ami-12345678"
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_instance" "optional" {
  ami = "ami-12345678"
  metadata_options {
    http_tokens = "optional"
  }
}

resource "aws_instance" "unset" {
  ami = "ami-12345678"
}

resource "aws_instance" "hop_limit_only" {
  ami = "ami-12345678"
  metadata_options {
    http_put_response_hop_limit = 1
  }
}

resource "aws_instance" "disabled" {
  ami = "ami-12345678"
  metadata_options {
    http_endpoint = "disabled"
  }
}

resource "aws_instance" "v2_ami" {
  ami = aws_ami.v2.id
}

resource "aws_instance" "v2_ami_but_optional" {
  ami = aws_ami.v2.id
  metadata_options {
    http_tokens = "optional"
  }
}

resource "aws_launch_template" "required" {
  image_id = "ami-12345678"
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_launch_template" "unset" {
  image_id = "ami-12345678"
}

resource "aws_launch_template" "v2_ami" {
  image_id = aws_ami.v2.id
}

resource "aws_launch_configuration" "optional" {
  image_id      = "ami-12345678"
  instance_type = "t3.micro"
  metadata_options {
    http_tokens = "optional"
  }
}

resource "aws_launch_configuration" "required" {
  image_id      = "ami-12345678"
  instance_type = "t3.micro"
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_instance" "from_required_template" {
  launch_template {
    id = aws_launch_template.required.id
  }
}

resource "aws_instance" "overrides_template" {
  launch_template {
    id = aws_launch_template.required.id
  }
  metadata_options {
    http_tokens = "optional"
  }
}

resource "aws_instance" "from_outside_template" {
  launch_template {
    name = "made-elsewhere"
  }
}

resource "aws_spot_instance_request" "unset" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
}
`)
	wantFindings(t, rep, RuleIMDSv1, map[string]bool{
		"aws_instance.required":               false,
		"aws_instance.optional":               true,
		"aws_instance.unset":                  true,
		"aws_instance.hop_limit_only":         true,
		"aws_instance.disabled":               false,
		"aws_instance.v2_ami":                 false,
		"aws_instance.v2_ami_but_optional":    true,
		"aws_launch_template.required":        false,
		"aws_launch_template.unset":           true,
		"aws_launch_template.v2_ami":          false,
		"aws_launch_configuration.optional":   true,
		"aws_launch_configuration.required":   false,
		"aws_instance.from_required_template": false,
		"aws_instance.overrides_template":     true,
		"aws_instance.from_outside_template":  false,
		"aws_spot_instance_request.unset":     true,
	})
}

// The account's metadata defaults fill the options instances leave unset,
// never those they set.
func TestIMDSAccountDefaults(t *testing.T) {
	rep := checkSource(t, `
resource "aws_ec2_instance_metadata_defaults" "this" {
  http_tokens                 = "required"
  http_put_response_hop_limit = 1
}

resource "aws_instance" "unset" {
  ami = "ami-12345678"
}

resource "aws_instance" "optional" {
  ami = "ami-12345678"
  metadata_options {
    http_tokens = "optional"
  }
}

resource "aws_launch_template" "unset" {
  image_id = "ami-12345678"
}
`)
	wantFindings(t, rep, RuleIMDSv1, map[string]bool{
		"aws_instance.unset":        false,
		"aws_instance.optional":     true,
		"aws_launch_template.unset": false,
	})
	rep = checkSource(t, `
resource "aws_ec2_instance_metadata_defaults" "this" {
  http_tokens = "no-preference"
}

resource "aws_instance" "unset" {
  ami = "ami-12345678"
}
`)
	wantFindings(t, rep, RuleIMDSv1, map[string]bool{"aws_instance.unset": true})
	rep = checkSource(t, `
resource "aws_ec2_instance_metadata_defaults" "this" {
  http_endpoint = "disabled"
}

resource "aws_instance" "unset" {
  ami = "ami-12345678"
}

resource "aws_instance" "enabled" {
  ami = "ami-12345678"
  metadata_options {
    http_endpoint = "enabled"
  }
}
`)
	wantFindings(t, rep, RuleIMDSv1, map[string]bool{"aws_instance.unset": false, "aws_instance.enabled": true})
}

// Amazon Linux 2023 AMIs are registered with imds_support = "v2.0": an
// instance launched from a lookup that can only find them requires tokens.
// A lookup that may find other images is not known to.
func TestIMDSAmazonLinux2023(t *testing.T) {
	rep := checkSource(t, `
data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

data "aws_ssm_parameter" "al2" {
  name = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"
}

data "aws_ami" "al2023_regex" {
  most_recent = true
  owners      = ["amazon"]
  name_regex  = "^al2023-ami-2023.*-x86_64"
}

data "aws_ami" "al2023_filter" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-arm64"]
  }
}

data "aws_ami" "al2023_anyone" {
  most_recent = true
  owners      = ["111122223333"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-arm64"]
  }
}

data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"]
  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]
  }
}

resource "aws_instance" "ssm_al2023" {
  ami = data.aws_ssm_parameter.al2023.value
}

resource "aws_instance" "ssm_al2" {
  ami = data.aws_ssm_parameter.al2.value
}

resource "aws_instance" "regex_al2023" {
  ami = data.aws_ami.al2023_regex.id
}

resource "aws_launch_template" "filter_al2023" {
  image_id = data.aws_ami.al2023_filter.id
}

resource "aws_instance" "someone_elses_al2023" {
  ami = data.aws_ami.al2023_anyone.id
}

resource "aws_instance" "ubuntu" {
  ami = data.aws_ami.ubuntu.id
}

resource "aws_instance" "al2023_but_optional" {
  ami = data.aws_ssm_parameter.al2023.value
  metadata_options {
    http_tokens = "optional"
  }
}
`)
	wantFindings(t, rep, RuleIMDSv1, map[string]bool{
		"aws_instance.ssm_al2023":           false,
		"aws_instance.ssm_al2":              true,
		"aws_instance.regex_al2023":         false,
		"aws_launch_template.filter_al2023": false,
		"aws_instance.someone_elses_al2023": true,
		"aws_instance.ubuntu":               true,
		"aws_instance.al2023_but_optional":  true,
	})
	for _, f := range rep.Findings {
		if f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, "Unsupported attribute") {
			t.Errorf("note: %s", f.Message)
		}
	}
}

// An auto scaling group whose launch configuration (or mixed instances
// policy's template) gives public addresses is an endpoint on the
// internet: its groups are the configuration's, and an open SSH port on it
// is a path from the internet.
func TestASGPathThroughLaunchConfiguration(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}

resource "aws_route_table_association" "a" {
  subnet_id      = aws_subnet.a.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_launch_configuration" "public" {
  image_id                    = "ami-12345678"
  instance_type               = "t3.micro"
  associate_public_ip_address = true
  security_groups             = [aws_security_group.ssh.id]
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "lc" {
  min_size             = 1
  max_size             = 1
  vpc_zone_identifier  = [aws_subnet.a.id]
  launch_configuration = aws_launch_configuration.public.name
}

resource "aws_launch_template" "public" {
  image_id = "ami-12345678"
  network_interfaces {
    associate_public_ip_address = "true"
    security_groups             = [aws_security_group.ssh.id]
  }
  metadata_options {
    http_tokens = "required"
  }
}

resource "aws_autoscaling_group" "mixed" {
  min_size            = 1
  max_size            = 1
  vpc_zone_identifier = [aws_subnet.a.id]
  mixed_instances_policy {
    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.public.id
      }
    }
  }
}
`)
	for _, a := range []string{"aws_autoscaling_group.lc", "aws_autoscaling_group.mixed"} {
		f := findingOn(rep, RuleExposedPort, a)
		if f == nil || !strings.Contains(f.Message, "tcp 22") {
			t.Errorf("%s: no SSH path from the internet: %+v", a, rep.Findings)
		}
	}
}

// A project that manages a default subnet and turns its public mapping off
// may launch an instance that names no subnet there: the default VPC is
// not assumed to give it an address. A default subnet that maps them is
// reported as a subnet is.
func TestDefaultSubnets(t *testing.T) {
	rep := checkSource(t, `
resource "aws_default_subnet" "a" {
  availability_zone       = "eu-west-1a"
  map_public_ip_on_launch = false
}

resource "aws_instance" "no_subnet" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
}
`)
	wantFindings(t, rep, RulePublicIP, map[string]bool{"aws_instance.no_subnet": false, "aws_default_subnet.a": false})
	rep = checkSource(t, `
resource "aws_default_subnet" "a" {
  availability_zone       = "eu-west-1a"
  map_public_ip_on_launch = true
}

resource "aws_instance" "no_subnet" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"
}
`)
	wantFindings(t, rep, RulePublicIP, map[string]bool{"aws_instance.no_subnet": true, "aws_default_subnet.a": true})
}

// A default subnet the project keeps from mapping public addresses speaks
// for its own zone alone: an instance that names no subnet but another
// zone lands in that zone's default subnet as AWS made it, public, so SSH
// open to the world reaches it; one in the managed zone gets no address,
// and one that names no zone may land in either, and is assumed public,
// on the path of the default VPC the project adopts.
func TestDefaultSubnetOfAnotherZone(t *testing.T) {
	src := func(az string) string {
		return `
resource "aws_default_vpc" "default" {}

resource "aws_default_subnet" "a" {
  availability_zone       = "eu-west-1a"
  map_public_ip_on_launch = false
}

resource "aws_security_group" "ssh" {
  vpc_id = aws_default_vpc.default.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "bastion" {
  ami                    = "ami-12345678"
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.ssh.id]
` + az + `
}
`
	}
	f := findingOn(checkSource(t, src(`availability_zone = "eu-west-1b"`)), RuleExposedPort, "aws_instance.bastion")
	if f == nil || f.Severity != Critical || strings.Contains(f.Message, "may be") {
		t.Errorf("the bastion in eu-west-1b's default subnet: %+v, want %s critical and proven", f, RuleExposedPort)
	}
	if f := findingOn(checkSource(t, src(`availability_zone = "eu-west-1a"`)), RuleExposedPort, "aws_instance.bastion"); f != nil {
		t.Errorf("the bastion in the default subnet that maps no address: %s", f.Message)
	}
	f = findingOn(checkSource(t, src("")), RuleExposedPort, "aws_instance.bastion")
	if f == nil || !strings.Contains(f.Message, "may be reachable") || !strings.Contains(f.Message, "keeps only some default subnets from mapping public addresses") {
		t.Fatalf("the bastion in a zone AWS picks: %+v, want %s, not proven", f, RuleExposedPort)
	}
	// The default VPC the project adopts is on the path, not one assumed
	// outside the scanned code.
	if p := pathText(f.Path); !strings.Contains(p, "aws_default_vpc.default:internet-gateway") || strings.Contains(f.Message, "not in the scanned code") {
		t.Errorf("the bastion in a zone AWS picks: path %s, message %s; want the adopted default VPC's", p, f.Message)
	}
}
