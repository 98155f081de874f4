package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failClosedAWS is a PostgreSQL database in a subnet whose route to the
// internet, network ACL or security group the tests make unknowable (a
// variable without a value).
const failClosedAWS = `
variable "unknown" {}
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_route" "default" {
  route_table_id         = ROUTE_TABLE
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = ROUTE_TARGET
}
resource "aws_network_acl" "public" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.public.id]
  ingress {
    rule_no    = 100
    action     = ACL_ACTION
    protocol   = "tcp"
    from_port  = 0
    to_port    = 65535
    cidr_block = ACL_RANGE
  }
  egress {
    rule_no    = 100
    action     = "allow"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = "0.0.0.0/0"
  }
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [SG_SOURCE]
  }
}
resource "aws_db_subnet_group" "db" {
  subnet_ids = [aws_subnet.public.id]
}
resource "aws_db_instance" "pg" {
  engine                 = "postgres"
  instance_class         = "db.t3.micro"
  publicly_accessible    = true
  storage_encrypted      = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
}
`

// TestFailClosed checks that a route, network ACL entry or security group
// rule that cannot be evaluated is read at its most permissive: the public
// database is still reported, as high (the path rests on an assumption, not
// a proof), and the finding says what was assumed and why; each assumption
// is also a note on its resource. With everything known, the path is proven
// and the finding critical.
func TestFailClosed(t *testing.T) {
	const db = "aws_db_instance.pg"
	known := map[string]string{
		"ROUTE_TABLE":  "aws_vpc.main.main_route_table_id",
		"ROUTE_TARGET": "aws_internet_gateway.main.id",
		"ACL_ACTION":   `"allow"`,
		"ACL_RANGE":    `"0.0.0.0/0"`,
		"SG_SOURCE":    `"0.0.0.0/0"`,
	}
	for _, tc := range []struct {
		name    string
		unknown []string
		assumed []string // in the finding
		notes   []string // CHECK-001 notes
	}{
		{"everything known", nil, nil, nil},
		// Only gateway_id can name an internet gateway, so only an
		// unknown gateway_id is read as one (an unknown nat_gateway_id is
		// some NAT gateway: TestUnknownRoutes); the reading says which
		// attribute it rests on.
		{"route target", []string{"ROUTE_TARGET"},
			[]string{"aws_route.default: target not known statically (gateway_id): assumed to be the VPC's internet gateway"},
			[]string{"route target not known statically (gateway_id): assumed to be the VPC's internet gateway"}},
		// A table from an expression that references no route table may
		// be any, the VPC's implicit main table included.
		{"route table", []string{"ROUTE_TABLE"},
			[]string{"aws_route.default: route table not known statically: assumed to be in every route table"},
			[]string{"route table not known statically: the route is assumed to be in every route table"}},
		{"ACL action", []string{"ACL_ACTION"},
			[]string{"(action not known statically: assumed to allow)"},
			[]string{"ingress[0]: action not known statically: assumed to allow"}},
		{"ACL range", []string{"ACL_RANGE"},
			[]string{"(range not known statically: assumed to be every address)"},
			[]string{"ingress[0]: range not known statically: assumed to be every address"}},
		{"ACL action and range", []string{"ACL_ACTION", "ACL_RANGE"},
			[]string{"(action not known statically: assumed to allow; range not known statically: assumed to be every address)"},
			[]string{"action not known statically", "range not known statically"}},
		{"security group source", []string{"SG_SOURCE"},
			[]string{"a source is not known statically: assumed to admit every address"},
			[]string{"ingress[0]: a source is not known statically: assumed to admit every address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := failClosedAWS
			for k, v := range known {
				for _, u := range tc.unknown {
					if u == k {
						v = "var.unknown"
					}
				}
				src = strings.ReplaceAll(src, k, v)
			}
			rep := checkSource(t, src)
			got := activeOn(rep, RuleExposedPort, db)
			if len(got) != 1 {
				t.Fatalf("want one %s on %s, got %+v", RuleExposedPort, db, got)
			}
			f := got[0]
			if !strings.Contains(f.Message, "tcp 5432") {
				t.Errorf("finding %q does not name the port", f.Message)
			}
			if want := map[bool]Severity{true: Critical, false: High}[len(tc.unknown) == 0]; f.Severity != want {
				t.Errorf("severity %s, want %s", f.Severity, want)
			}
			if p := pathLine(f.Path); !strings.HasPrefix(p, "internet → aws_internet_gateway.main → ") || !strings.HasSuffix(p, "aws_security_group.db → "+db) {
				t.Errorf("path %q", p)
			}
			for _, a := range tc.assumed {
				if !strings.Contains(f.Message, a) {
					t.Errorf("finding %q does not say %q", f.Message, a)
				}
			}
			wantNotes(t, rep, tc.notes...)
		})
	}
}

// TestSourceNotARange: a security group source that is no address range
// and no string Terraform would pass to the provider (a number that is
// not finite, a list in the list) is not dropped: it is read as admitting
// every address, and the finding and a note say which value and why (a
// list in the list, which Terraform refuses, is reported as rejected). A
// finite number is the text Terraform makes of it, which the provider
// rejects as it rejects any other text that is not a range.
func TestSourceNotARange(t *testing.T) {
	const db = "aws_db_instance.pg"
	src := strings.NewReplacer("ROUTE_TABLE", "aws_vpc.main.main_route_table_id", "ROUTE_TARGET", "aws_internet_gateway.main.id",
		"ACL_ACTION", `"allow"`, "ACL_RANGE", `"0.0.0.0/0"`).Replace(failClosedAWS)
	for _, tc := range []struct{ name, source, assumed string }{
		{"infinite", `tonumber("+Inf")`, "cidr_blocks holds +Inf, which is not an address range: assumed to admit every address"},
		{"negative infinite", `-tonumber("Inf")`, "cidr_blocks holds -Inf, which is not an address range: assumed to admit every address"},
		{"list", `["10.0.0.0/8"]`, "cidr_blocks holds a list, which is not an address range: assumed to admit every address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, strings.Replace(src, "SG_SOURCE", tc.source, 1))
			got := activeOn(rep, RuleExposedPort, db)
			if len(got) != 1 || got[0].Severity != High || !strings.Contains(got[0].Message, tc.assumed) {
				t.Fatalf("want one high %s on %s saying %q, got %+v", RuleExposedPort, db, tc.assumed, got)
			}
			if tc.name == "list" {
				// A list in the list: Terraform refuses the value, said
				// so rather than noted as not evaluated.
				if rej := active(rep, RuleRejected); len(rej) != 1 || !strings.Contains(rej[0].Message, "ingress[0]: cidr_blocks holds a list, where the provider takes address ranges") {
					t.Errorf("want one %s for the list in the list, got %+v", RuleRejected, rej)
				}
				return
			}
			wantNotes(t, rep, "ingress[0]: "+tc.assumed)
		})
	}
	rep := checkSource(t, strings.Replace(src, "SG_SOURCE", "10", 1))
	if got := activeOn(rep, RuleExposedPort, db); len(got) != 0 {
		t.Errorf("cidr_blocks = [10]: want no %s (the provider rejects \"10\"), got %+v", RuleExposedPort, got)
	}
	if rej := active(rep, RuleRejected); len(rej) != 1 || !strings.Contains(rej[0].Message, `cidr_blocks "10" is not a CIDR block`) {
		t.Errorf("cidr_blocks = [10]: want it rejected (%s), got %+v", RuleRejected, rej)
	}
}

// TestFailClosedAzure checks the same for NSG rules: an allow whose source
// or ports cannot be evaluated, or whose service tag is not modelled, is
// read as admitting every address or port, and says so; a deny that cannot
// be evaluated denies nothing.
func TestFailClosedAzure(t *testing.T) {
	const vm = "azurerm_linux_virtual_machine.vm"
	nsg := func(rules string) string {
		return azureBase + `
variable "unknown" {}
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
` + rules
	}
	for _, tc := range []struct {
		name, rules, assumed string
	}{
		{"source unknown", nsgRule("ssh", 100, "Allow", "22", "var.unknown"),
			"address prefix not known statically: assumed to be every address"},
		{"ports unknown", strings.Replace(nsgRule("ssh", 100, "Allow", "22", `"Internet"`), `"22"`, "var.unknown", 1),
			"destination ports not known statically: assumed to be every port"},
		{"service tag not modelled", nsgRule("ssh", 100, "Allow", "22", `"AzureCloud"`),
			`service tag "AzureCloud" is not modelled: assumed to be every address`},
		{"regional service tag not modelled", nsgRule("ssh", 100, "Allow", "22", `"Storage.WestEurope"`),
			`service tag "Storage.WestEurope" is not modelled: assumed to be every address`},
		{"placeholder source", nsgRule("ssh", 100, "Allow", "22", `"my-local-ip"`),
			`"my-local-ip" is not an address or a service tag Azure takes (CHECK-003): assumed to be every address`},
		{"deny not known", nsgRule("deny", 100, "Deny", "*", "var.unknown") + nsgRule("ssh", 200, "Allow", "22", `"Internet"`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSource(t, nsg(tc.rules))
			got := activeOn(rep, RuleAzExposedPort, vm)
			if len(got) != 1 || !strings.Contains(got[0].Message, "tcp 22") {
				t.Fatalf("want one %s on SSH, got %+v", RuleAzExposedPort, got)
			}
			if tc.assumed == "" {
				if got[0].Severity != Critical {
					t.Errorf("severity %s, want critical: the deny that cannot be evaluated denies nothing, the allow is known", got[0].Severity)
				}
				return
			}
			if got[0].Severity != High || !strings.Contains(got[0].Message, tc.assumed) {
				t.Errorf("want a high finding saying %q, got %s %q", tc.assumed, got[0].Severity, got[0].Message)
			}
			// A value that cannot be a service tag is one Azure rejects;
			// a tag moat does not know is not.
			rejected := active(rep, RuleRejected)
			if placeholder := strings.Contains(tc.assumed, "CHECK-003"); placeholder != (len(rejected) == 1) ||
				placeholder && (rejected[0].Address != "azurerm_network_security_rule.ssh" || !strings.Contains(rejected[0].Message, `source_address_prefix "my-local-ip"`)) {
				t.Errorf("placeholder %v: %s findings %+v", placeholder, RuleRejected, rejected)
			}
		})
	}
}

// TestWorldOpenSeverityLadder checks the severity of a world-open ingress
// rule by what is proven: critical with a path from the internet to a
// listener behind it, high when attached but no path is proven (a private
// subnet), medium when nothing in the scanned code attaches it; for IPv4,
// IPv6 and a split range that together covers the internet, and for an
// Azure NSG the same way.
func TestWorldOpenSeverityLadder(t *testing.T) {
	instance := func(subnet string) string {
		return `
resource "aws_instance" "host" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.` + subnet + `.id
  associate_public_ip_address = true
  ipv6_address_count          = 1
  vpc_security_group_ids      = [aws_security_group.ssh.id]
}
`
	}
	for _, src := range []struct{ name, cidrs string }{
		{"IPv4", `cidr_blocks = ["0.0.0.0/0"]`},
		{"IPv6", `ipv6_cidr_blocks = ["::/0"]`},
		{"split range", `cidr_blocks = ["0.0.0.0/1", "128.0.0.0/1"]`},
	} {
		group := `
resource "aws_security_group" "ssh" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port = 22
    to_port   = 22
    protocol  = "tcp"
    ` + src.cidrs + `
  }
}
`
		for _, tc := range []struct {
			name, extra string
			want        Severity
		}{
			{"reached", instance("public"), Critical},
			{"attached, private subnet", instance("private"), High},
			{"not attached", "", Medium},
		} {
			t.Run(src.name+"/"+tc.name, func(t *testing.T) {
				rep := checkSource(t, routedNetwork+group+tc.extra)
				got := activeOn(rep, RuleWorldOpen, "aws_security_group.ssh")
				if len(got) != 1 || got[0].Severity != tc.want || !strings.Contains(got[0].Message, "tcp 22") {
					t.Fatalf("want one %s %s naming tcp 22, got %+v", tc.want, RuleWorldOpen, got)
				}
				if tc.want == Critical && !strings.HasSuffix(pathLine(got[0].Path), "aws_security_group.ssh → aws_instance.host") {
					t.Errorf("critical finding without the path: %q", pathLine(got[0].Path))
				}
			})
		}
	}
	t.Run("Azure", func(t *testing.T) {
		open := nsgRule("ssh", 100, "Allow", "22", `"Internet"`)
		nsg := `
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
`
		unassociated := strings.Replace(azureBase, `resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}`, "", 1)
		private := strings.Replace(azureBase, "    public_ip_address_id = azurerm_public_ip.vm.id\n", "", 1)
		for _, tc := range []struct {
			name, src string
			want      Severity
		}{
			{"reached", azureBase + nsg + open, Critical},
			{"associated, no public IP", private + nsg + open, High},
			{"not associated", unassociated + nsg + open, Medium},
			// A tag not modelled is read as every address: the NSG may
			// admit the internet, medium without a path, as a security
			// group whose source is not known statically is.
			{"tag not modelled, no path", private + nsg + nsgRule("corp", 100, "Allow", "22", `"CorpNetPublic"`), Medium},
			{"tag not modelled, a path", azureBase + nsg + nsgRule("corp", 100, "Allow", "22", `"CorpNetPublic"`), High},
			{"tag not modelled beside the internet", private + nsg + open + nsgRule("corp", 110, "Allow", "3389", `"CorpNetPublic"`), High},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rep := checkSource(t, tc.src)
				got := activeOn(rep, RuleNSGWorldOpen, "azurerm_network_security_group.app")
				if len(got) != 1 || got[0].Severity != tc.want {
					t.Fatalf("want one %s %s, got %+v", tc.want, RuleNSGWorldOpen, got)
				}
				if assumedOnly := !strings.Contains(tc.src, `"Internet"`); assumedOnly != strings.HasPrefix(got[0].Message, "may admit every internet address") {
					t.Errorf("message %q: want \"may admit\" exactly when only an assumed source opens the ports", got[0].Message)
				}
			})
		}
	})
}

// TestParseErrorNamesTheFile checks that code Terraform cannot parse is an
// error naming the file as the user would (the directory given, then the
// file), not as it is named under the tree read: outside a repository that
// tree is the filesystem, and the name lost its leading slash.
func TestParseErrorNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	src := "resource \"aws_lb_listener\" \"l\" {\n  \"default_action\" {\n    type = \"forward\"\n  }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), Config{Paths: []string{dir}})
	want := filepath.ToSlash(filepath.Join(dir, "main.tf")) + ":2: "
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run on a quoted block type: %v, want an error naming %s", err, want)
	}
}
