package check

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// publicSubnet is a VPC with a subnet routed to an internet gateway; tests
// add what runs in it.
const publicSubnet = `
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
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
`

// worldGroup is a security group "name" admitting every address on port.
func worldGroup(name, port string) string {
	return `
resource "aws_security_group" "` + name + `" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = ` + port + `
    to_port     = ` + port + `
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`
}

// publicInstance is an instance "name" with a public address in the
// public subnet, behind group.
func publicInstance(name, group string) string {
	return `
resource "aws_instance" "` + name + `" {
  ami                         = "ami-12345678"
  instance_type               = "t3.micro"
  subnet_id                   = aws_subnet.public.id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.` + group + `.id]
  metadata_options {
    http_tokens = "required"
  }
}
`
}

// wantOne fails unless rule has one active finding on addr, at sev, whose
// message says every one of words.
func wantOne(t *testing.T, rep *Report, rule, addr string, sev Severity, words ...string) {
	t.Helper()
	got := activeOn(rep, rule, addr)
	if len(got) != 1 || got[0].Severity != sev {
		t.Errorf("%s on %s: %+v, want one at %s", rule, addr, got, sev)
		return
	}
	for _, w := range words {
		if !strings.Contains(got[0].Message, w) {
			t.Errorf("%s on %s says %q, want it to say %q", rule, addr, got[0].Message, w)
		}
	}
}

// TestSearchDomainGate: a public search domain whose access policy admits
// every principal unconditionally is open to anyone (critical, and its
// public path high); one whose policy names the principals it admits takes
// only requests they sign (SigV4), and one with fine-grained access control
// authenticates every request, and one whose policy admits every principal
// only from an office's range takes unsigned requests from there alone: the
// internet at large reaches their endpoints, but only credentials get in,
// so both findings are medium and say why.
func TestSearchDomainGate(t *testing.T) {
	policy := func(principal, condition string) string {
		return `jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = ` + principal + ` }
      Action    = "es:*"
      Resource  = "arn:aws:es:eu-west-1:123456789012:domain/d/*"` + condition + `
    }]
  })`
	}
	domain := func(name, policy, extra string) string {
		return `
resource "aws_opensearch_domain" "` + name + `" {
  domain_name = "` + name + `"
  domain_endpoint_options {
    enforce_https = true
  }
  access_policies = ` + policy + `
` + extra + `
}
`
	}
	const fgac = `
  advanced_security_options {
    enabled                        = true
    internal_user_database_enabled = true
  }
`
	src := domain("open", policy(`"*"`, ""), "") +
		domain("signed", policy(`["arn:aws:iam::123456789012:role/app"]`, ""), "") +
		domain("fgac", policy(`"*"`, ""), fgac) +
		domain("org", policy(`"*"`, `
      Condition = { StringEquals = { "aws:PrincipalOrgID" = "o-abc123" } }`), "") +
		domain("anyip", policy(`"*"`, `
      Condition = { IpAddress = { "aws:SourceIp" = ["0.0.0.0/0"] } }`), "") +
		domain("office", policy(`"*"`, `
      Condition = { IpAddress = { "aws:SourceIp" = ["203.0.113.0/24"] } }`), "")
	rep := checkSource(t, src)
	for _, name := range []string{"open", "anyip"} {
		addr := "aws_opensearch_domain." + name
		wantOne(t, rep, RuleExposedPort, addr, Critical, "tcp 443")
		wantOne(t, rep, RuleDataTierPublic, addr, High)
	}
	for name, why := range map[string]string{
		"signed": "requests signed (SigV4) by the principals",
		"org":    "requests signed (SigV4) by the principals",
		"fgac":   "fine-grained access control authenticates every request",
		"office": "unsigned requests only from 203.0.113.0/24 (aws:SourceIp)",
	} {
		addr := "aws_opensearch_domain." + name
		wantOne(t, rep, RuleExposedPort, addr, Medium, "tcp 443", why)
		wantOne(t, rep, RuleDataTierPublic, addr, Medium, why)
	}
}

// TestEFSWorldOpenGroup: an EFS mount target never has a public address,
// so a group open to the world on NFS that only mount targets carry is
// reached from no internet address: what it admits is every address of its
// VPC and the networks routed to it, and the finding is medium and says
// so. The same group on a public instance is reached from the internet.
func TestEFSWorldOpenGroup(t *testing.T) {
	efs := publicSubnet + worldGroup("nfs", "2049") + `
resource "aws_efs_file_system" "data" {
  encrypted  = true
  kms_key_id = "arn:aws:kms:eu-west-1:123456789012:key/abc"
}
resource "aws_efs_mount_target" "a" {
  file_system_id  = aws_efs_file_system.data.id
  subnet_id       = aws_subnet.public.id
  security_groups = [aws_security_group.nfs.id]
}
`
	wantOne(t, checkSource(t, efs), RuleWorldOpen, "aws_security_group.nfs", Medium, "never have a public address")
	wantOne(t, checkSource(t, efs+publicInstance("web", "nfs")), RuleWorldOpen, "aws_security_group.nfs", Critical)
}

// TestAppPortSeverity: an application port that no admin, data-store or
// well-known service uses, open to the world on a public instance, is an
// exposure, high (AWS-NET-011); critical stays for the ports of
// AWS-NET-003. So on Azure, where one NSG finding covers every port:
// critical when a machine is reached on such a port, high when only on
// others.
func TestAppPortSeverity(t *testing.T) {
	aws := func(port string) *Report {
		return checkSource(t, publicSubnet+worldGroup("web", port)+publicInstance("web", "web"))
	}
	wantOne(t, aws("81"), RuleWorldOpenOther, "aws_security_group.web", High, "tcp 81")
	wantOne(t, aws("22"), RuleWorldOpen, "aws_security_group.web", Critical, "tcp 22")
	azure := func(port string) *Report {
		return checkSource(t, azureBase+`
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
`+nsgRule("in", 100, "Allow", port, `"Internet"`))
	}
	wantOne(t, azure("8080"), RuleNSGWorldOpen, "azurerm_network_security_group.app", High, "tcp 8080", "no admin, data-store or well-known service port")
	wantOne(t, azure("22"), RuleNSGWorldOpen, "azurerm_network_security_group.app", Critical, "tcp 22")
}

// TestAllowAllACLSeverity: a network ACL that allows everything, AWS's
// default and the VPC module's, leaves filtering to the security groups:
// on a public subnet whose instances' groups admit the world on none of
// its ports it is low; where a group admits the world on one of them too,
// medium, naming it.
func TestAllowAllACLSeverity(t *testing.T) {
	const acl = `
resource "aws_network_acl" "public" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.public.id]
  ingress {
    rule_no    = 100
    action     = "allow"
    protocol   = "-1"
    from_port  = 0
    to_port    = 0
    cidr_block = "0.0.0.0/0"
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
`
	rep := checkSource(t, publicSubnet+acl+worldGroup("web", "443")+publicInstance("web", "web"))
	wantOne(t, rep, RuleWorldOpen, "aws_network_acl.public", Low, "no security group")
	rep = checkSource(t, publicSubnet+acl+worldGroup("web", "22")+publicInstance("web", "web"))
	wantOne(t, rep, RuleWorldOpen, "aws_network_acl.public", Medium, "tcp 22", "aws_security_group.web")
}

// TestSearchFineGrainedUnknown: a public domain whose access policy admits
// everyone, with fine-grained access control whose enabled or
// anonymous_auth_enabled is not known statically, was read as
// authenticating every request and not reported (AWS-OS-001). What is not
// known statically is read at its worst: off, or admitting anonymous
// users, and the finding says so. The endpoint's exposure does not rely on
// it either (critical, its public path high).
func TestSearchFineGrainedUnknown(t *testing.T) {
	domain := func(name, aso string) string {
		return `
resource "aws_opensearch_domain" "` + name + `" {
  domain_name = "` + name + `"
  advanced_security_options {
` + aso + `
    internal_user_database_enabled = true
  }
  access_policies = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { AWS = "*" }, Action = "es:*", Resource = "*" }]
  })
}
`
	}
	src := `
variable "fgac" {}
variable "anonymous" {}
` + domain("enabled", `    enabled = var.fgac`) +
		domain("anonymous", `    enabled                = true
    anonymous_auth_enabled = var.anonymous`)
	rep := checkSource(t, src)
	for name, why := range map[string]string{
		"enabled":   "fine-grained access control is read as off (advanced_security_options.enabled is not known statically)",
		"anonymous": "fine-grained access control is read as admitting anonymous users (anonymous_auth_enabled is not known statically)",
	} {
		addr := "aws_opensearch_domain." + name
		wantOne(t, rep, RuleSearchOpenPols, addr, Critical, why, "anyone on the internet")
		wantOne(t, rep, RuleExposedPort, addr, Critical, "443 (search service port)")
		wantOne(t, rep, RuleDataTierPublic, addr, High)
	}
}

// TestEKSEndpointGate: the Kubernetes API behind an EKS public endpoint
// authenticates every request (an IAM-authenticated token; an anonymous
// one gets only what RBAC grants system:anonymous). Open to the internet
// at large (no public_access_cidrs, 0.0.0.0/0, or a range not known
// statically) it was critical, as an unauthenticated data store is; it is
// high: every address may try credentials and the API server's flaws on
// the cluster's control plane. Bounded to an office's range it stays
// medium; a private endpoint is not reached from the internet at all. Each
// finding says why.
func TestEKSEndpointGate(t *testing.T) {
	cluster := func(name, vpcConfig string) string {
		return `
resource "aws_eks_cluster" "` + name + `" {
  name     = "` + name + `"
  role_arn = "arn:aws:iam::123456789012:role/eks"
  vpc_config {
    subnet_ids = ["subnet-1"]
` + vpcConfig + `
  }
}
`
	}
	src := `
variable "office" {}
` + cluster("default", "") +
		cluster("world", `    public_access_cidrs = ["0.0.0.0/0"]`) +
		cluster("unknown", `    public_access_cidrs = ["198.51.100.0/24", var.office]`) +
		cluster("office", `    public_access_cidrs = ["198.51.100.0/24"]`) +
		cluster("private", `    endpoint_public_access  = false
    endpoint_private_access = true`)
	rep := checkSource(t, src)
	const why = "the Kubernetes API authenticates every request"
	wantOne(t, rep, RuleExposedPort, "aws_eks_cluster.default", High, "tcp 443 (Kubernetes API) is reachable from the internet (every IPv4 internet address)", "high, not critical", why, "system:anonymous")
	wantOne(t, rep, RuleExposedPort, "aws_eks_cluster.world", High, "every IPv4 internet address", "high, not critical", why)
	wantOne(t, rep, RuleExposedPort, "aws_eks_cluster.unknown", High, "may be reachable from the internet", why)
	wantOne(t, rep, RuleExposedPort, "aws_eks_cluster.office", Medium, "(198.51.100.0/24)", why)
	if got := activeOn(rep, RuleExposedPort, "aws_eks_cluster.private"); len(got) != 0 {
		t.Errorf("%s on the private endpoint: %+v, want none", RuleExposedPort, got)
	}
	// The fix names the cluster's own settings, not the generic remedy
	// of a machine's public address.
	for _, name := range []string{"default", "world", "unknown", "office"} {
		wantFix(t, rep, RuleExposedPort, "aws_eks_cluster."+name, "endpoint_public_access = false", "endpoint_private_access = true", "public_access_cidrs")
	}
}

// wantFix fails unless every active finding of rule on addr carries a fix
// of its own that says every one of words, and the text, JSON and SARIF
// reports and --explain give it.
func wantFix(t *testing.T, rep *Report, rule, addr string, words ...string) {
	t.Helper()
	got := activeOn(rep, rule, addr)
	if len(got) == 0 {
		t.Errorf("%s on %s: no finding, want one with a fix of its own", rule, addr)
	}
	var text, js, sarif bytes.Buffer
	if err := Write(&text, rep, "text"); err != nil {
		t.Fatal(err)
	}
	if err := Write(&js, rep, "json"); err != nil {
		t.Fatal(err)
	}
	if err := Write(&sarif, rep, "sarif"); err != nil {
		t.Fatal(err)
	}
	var jr struct{ Findings []Finding }
	var sr struct {
		Runs []struct {
			Results []struct {
				PartialFingerprints map[string]string
				Properties          map[string]string
			}
		}
	}
	if err := json.Unmarshal(js.Bytes(), &jr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sarif.Bytes(), &sr); err != nil || len(sr.Runs) != 1 {
		t.Fatalf("SARIF: %v, %d runs", err, len(sr.Runs))
	}
	for _, f := range got {
		for _, w := range words {
			if !strings.Contains(f.Fix, w) {
				t.Errorf("%s on %s: fix %q, want it to say %q", rule, addr, f.Fix, w)
			}
		}
		if f.Fix == "" {
			continue
		}
		if !strings.Contains(text.String(), "    fix: "+f.Fix+"\n") {
			t.Errorf("%s on %s: the text report does not print the finding's fix %q", rule, addr, f.Fix)
		}
		var explain bytes.Buffer
		if err := Explain(&explain, rep, f.ID()); err != nil || !strings.Contains(explain.String(), "  fix: "+f.Fix+"\n") {
			t.Errorf("%s on %s: --explain (%v) does not print the finding's fix %q", rule, addr, err, f.Fix)
		}
		inJSON, inSARIF := false, false
		for _, g := range jr.Findings {
			inJSON = inJSON || g.ID() == f.ID() && g.Fix == f.Fix
		}
		for _, r := range sr.Runs[0].Results {
			inSARIF = inSARIF || r.PartialFingerprints["moatFinding/v1"] == f.ID() && r.Properties["fix"] == f.Fix
		}
		if !inJSON || !inSARIF {
			t.Errorf("%s on %s: the finding's fix in JSON %v, in SARIF %v; want both", rule, addr, inJSON, inSARIF)
		}
	}
}

// TestAKSAPIServerGate: an AKS cluster's public API server authenticates
// every request as EKS's does (Azure AD tokens, local accounts' client
// certificates, service account tokens; an anonymous request gets only
// what RBAC grants system:anonymous). Open to the internet at large (no
// authorized ranges, 0.0.0.0/0, or a range not known statically) it was
// critical; it is high. Bounded to an office's range it is medium, in
// azurerm v3's top-level spelling too; a private cluster is not reached
// from the internet, and one whose private_cluster_enabled is not known
// statically may be reached, not proven. Local accounts, on unless local_account_disabled, are
// static credentials: the finding says so where they are on. Azure AD
// tokens are named only where Azure AD integration is on. Kubernetes RBAC
// off (or not known statically) authorizes whoever authenticates for
// everything, and an anonymous request, AKS's choice written nowhere in
// the settings, is read at its worst, authorized too: credentials are not
// known to stand in the way, so the exposure is critical and says why.
// Every finding's fix names the cluster's own settings.
func TestAKSAPIServerGate(t *testing.T) {
	cluster := func(name, more string) string {
		return `
resource "azurerm_kubernetes_cluster" "` + name + `" {
  name       = "` + name + `"
  dns_prefix = "` + name + `"
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
` + more + `
}
`
	}
	ranges := func(rs string) string {
		return `  api_server_access_profile {
    authorized_ip_ranges = [` + rs + `]
  }
`
	}
	src := `
variable "office" {}
variable "local_off" {}
variable "private" {}
variable "rbac" {}
` + cluster("default", "") +
		cluster("world", ranges(`"0.0.0.0/0"`)+`  local_account_disabled = true`) +
		cluster("unknown", ranges(`"198.51.100.0/24", var.office`)+`  local_account_disabled = var.local_off`) +
		cluster("office", ranges(`"198.51.100.0/24"`)+`  local_account_disabled = true`) +
		cluster("legacy", `  api_server_authorized_ip_ranges = ["198.51.100.0/24"]`) +
		cluster("norbac", `  role_based_access_control_enabled = false`) +
		cluster("rbacmaybe", "  role_based_access_control_enabled = var.rbac\n  local_account_disabled = false") +
		cluster("aad", "  azure_active_directory_role_based_access_control {\n    azure_rbac_enabled = true\n  }") +
		cluster("private", `  private_cluster_enabled = true`) +
		cluster("maybe", `  private_cluster_enabled = var.private`)
	rep := checkSource(t, src)
	const why, local = "the Kubernetes API authenticates every request", "local_account_disabled"
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.default", High, "tcp 443 (Kubernetes API) is reachable from the internet (every IPv4 internet address, every IPv6 internet address)", "high, not critical", why, "system:anonymous", "local accounts", local+" is not set")
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.world", High, "every IPv4 internet address", "high, not critical", why)
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.unknown", High, "may be reachable from the internet", why, local+" is not known statically")
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.office", Medium, "(198.51.100.0/24)", why)
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.legacy", Medium, "(198.51.100.0/24)", why, local+" is not set")
	const anon = "an anonymous request is authorized for everything too"
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.norbac", Critical, "role_based_access_control_enabled = false", anon, "local accounts are on")
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.rbacmaybe", Critical, "role_based_access_control_enabled is not known statically", anon, local+" = false")
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.aad", High, "high, not critical", why, "Azure AD tokens, local accounts' client certificates")
	for _, name := range []string{"default", "norbac", "rbacmaybe"} {
		if got := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster."+name); len(got) == 1 && strings.Contains(got[0].Message, "Azure AD tokens") {
			t.Errorf("%s: %q names Azure AD tokens without Azure AD integration", name, got[0].Message)
		}
	}
	for _, name := range []string{"world", "office"} {
		if got := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster."+name); len(got) == 1 && (strings.Contains(got[0].Message, local) || strings.Contains(got[0].Message, "role_based_access_control_enabled")) {
			t.Errorf("%s: %q, want neither local accounts nor RBAC named: local_account_disabled = true, RBAC on", name, got[0].Message)
		}
	}
	if got := activeOn(rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.private"); len(got) != 0 {
		t.Errorf("%s on the private cluster: %+v, want none", RuleAzExposedPort, got)
	}
	// Private or not is not known statically: it may be reached, which
	// is not proven, and the finding says why.
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.maybe", High, "may be reachable from the internet", "private_cluster_enabled not known statically: assumed false", why)
	for _, name := range []string{"default", "world", "unknown", "office", "legacy", "norbac", "rbacmaybe", "aad", "maybe"} {
		wantFix(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster."+name, "private_cluster_enabled = true", "authorized_ip_ranges", "local_account_disabled = true")
	}
}

// TestAKSRBACByProviderVersion: before azurerm 3.0, which writes RBAC as a
// role_based_access_control block, a cluster that says nothing of it is
// created with Kubernetes RBAC off (3.0 made role_based_access_control_enabled
// default to true). Such clusters, and one whose block turns RBAC off, were
// read as having it on, their public API server capped at high.
func TestAKSRBACByProviderVersion(t *testing.T) {
	const anon = "an anonymous request is authorized for everything too"
	rep := run(t, "testdata/azure/aks-azurerm1")
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.legacy", Critical, "Kubernetes RBAC is off", `azurerm "=1.36.1"`, anon)
	rep = run(t, "testdata/azure/aks-azurerm2")
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.off", Critical, "role_based_access_control.enabled = false", anon)
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.unset", Critical, "Kubernetes RBAC is off", `azurerm "~> 2.90"`, anon)
	wantOne(t, rep, RuleAzExposedPort, "azurerm_kubernetes_cluster.on", High, "high, not critical")
}
