package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat/internal/check"
)

// TestSmoke runs the harness's generator and checks at a small size: every
// planted path case is found and no private database raises a false alarm.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	n, cells, err := generate(dir, 400)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := check.Run(context.Background(), check.Config{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	found, falseAlarms := pathCases(rep)
	want := 2 * cells / 10
	if found != want || falseAlarms != 0 {
		t.Errorf("%d resources: path cases found %d of %d, %d false alarms", n, found, want, falseAlarms)
	}
}

// TestCorpusSmoke scores the tiny corpus written here: every expected
// result is found (split ranges, a rule resource, IPv6, a group outside the
// scanned code) and the negatives raise nothing.
func TestCorpusSmoke(t *testing.T) {
	var out bytes.Buffer
	fams, err := runCorpus(filepath.Join("testdata", "corpus"), "", &out, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]corpusScore{
		"world-open ingress": {TP: 4, Files: 2},
		"CloudTrail":         {TP: 2, Files: 2},
	}
	for f, w := range want {
		if got := fams[f]; got != w {
			t.Errorf("%s: got %+v, want %+v\n%s", f, got, w, out.String())
		}
	}
}

// TestCorpusCounts checks that the harness counts a false alarm and a miss
// (a negative fixture that opens SSH to the world, and an expected result on
// a resource no rule flags), leaves unscored a file whose expected results
// do not fit it, and credits a finding at a rule resource to the group it
// configures.
func TestCorpusCounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sensitive_port_is_exposed_to_entire_network", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"negative1.tf": `resource "aws_security_group" "open" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`,
		"positive1.tf": `resource "aws_security_group" "closed" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
}
`,
		"positive2.tf": `resource "aws_security_group" "open" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`,
		"positive3.tf": `resource "aws_security_group" "db" {
  name = "db"
}

resource "aws_security_group_rule" "db" {
  type              = "ingress"
  security_group_id = aws_security_group.db.id
  from_port         = 5432
  to_port           = 5432
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
}
`,
		"positive_expected_result.json": `[{"line": 2, "filename": "positive1.tf"},
  {"line": 2, "filename": "positive2.tf"}, {"line": 40, "filename": "positive2.tf"},
  {"line": 1, "filename": "positive3.tf", "searchKey": "aws_security_group[db]"}]`,
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fams, err := runCorpus(filepath.Dir(filepath.Dir(dir)), "", io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	// positive2's expected line 40 lies outside every block: the file and
	// both its expected results are unscored, though moat flags its group.
	// positive3's finding is at the rule resource, which names the group.
	if got, want := fams["world-open ingress"], (corpusScore{TP: 1, FP: 1, FN: 1, Files: 3, Unscored: 2}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestDisagreements checks the documented disagreements: each names a
// mapped query and an explained reason, and a case that occurs is counted
// apart (here a miss moat's reading explains: a subnet of 0.0.0.0/0).
func TestDisagreements(t *testing.T) {
	mapped := map[string]bool{}
	for _, q := range corpusMap {
		mapped[q.Query] = true
	}
	for _, d := range disagreements {
		if !mapped[d.Query] {
			t.Errorf("disagreement on unmapped query %s", d.Query)
		}
		if disagreementWhy[d.Why] == "" {
			t.Errorf("%s %s %s: reason %q is not explained", d.Query, d.File, d.Block, d.Why)
		}
	}
	dir := filepath.Join(t.TempDir(), "rds_associated_with_public_subnet", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"positive1.tf": `resource "aws_db_instance" "positive1" {
  engine               = "mysql"
  db_subnet_group_name = aws_db_subnet_group.main.name
}

resource "aws_db_subnet_group" "main" {
  subnet_ids = [aws_subnet.all.id]
}

resource "aws_subnet" "all" {
  vpc_id     = "vpc-12345678"
  cidr_block = "0.0.0.0/0"
}
`,
		"positive_expected_result.json": `[{"line": 1, "filename": "positive1.tf"}]`,
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	fams, err := runCorpus(filepath.Dir(filepath.Dir(dir)), "", &out, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fams["public data stores"], (corpusScore{FN: 1, DisputedFN: 1, Files: 1}); got != want {
		t.Errorf("got %+v, want %+v\n%s", got, want, out.String())
	}
	if !strings.Contains(out.String(), "stale disagreement (the case did not occur): rds_associated_with_public_subnet positive2.tf") {
		t.Errorf("the unmet case of the query is not reported stale:\n%s", out.String())
	}
}

// TestIMDSFixtures scores the IMDSv2 fixtures written here: every instance,
// spot request, launch template and launch configuration that answers
// IMDSv1 is found, and none that takes required tokens from itself, its
// template, the account default or its AMI is reported.
func TestIMDSFixtures(t *testing.T) {
	var out bytes.Buffer
	fams, err := runCorpus(filepath.Join("testdata", "imds"), "", &out, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fams["IMDSv2"], (corpusScore{TP: 9, Files: 7}); got != want {
		t.Errorf("IMDSv2: got %+v, want %+v\n%s", got, want, out.String())
	}
}

// TestRenamedFixture checks that a fixture the corpus holds under its older
// name (positive.tf) is scored under the name its expected results use,
// and only when the corpus has no file of that name.
func TestRenamedFixture(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "ec2_instance_has_public_ip", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"positive.tf": `resource "aws_instance" "web" {
  ami                         = "ami-12345678"
  associate_public_ip_address = true
}
`,
		"positive_expected_result.json": `[{"line": 3, "filename": "positive1.tf"}]`,
	}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fams, err := runCorpus(root, "", io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fams["public IPs"], (corpusScore{TP: 1, Files: 1}); got != want {
		t.Errorf("renamed file: got %+v, want %+v", got, want)
	}
	// With a positive1.tf of its own, positive.tf is a file no expected
	// result names.
	if err := os.WriteFile(filepath.Join(dir, "positive1.tf"), []byte(files["positive.tf"]), 0o644); err != nil {
		t.Fatal(err)
	}
	fams, err = runCorpus(root, "", io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fams["public IPs"], (corpusScore{TP: 1, Files: 1, Unscored: 1}); got != want {
		t.Errorf("both files: got %+v, want %+v", got, want)
	}
}

// TestDuplicateModuleCall checks that a file calling the same module name
// twice is linked once and left to moat check (Terraform rejects it), not
// failed by the harness; and that -modules takes a list of folders, the
// first that holds a module winning.
func TestDuplicateModuleCall(t *testing.T) {
	empty, mirror := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(mirror, "terraform-aws-thing"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := []byte(`module "x" {
  source = "terraform-aws-modules/thing/aws"
}

module "x" {
  source = "terraform-aws-modules/thing/aws"
}
`)
	dir := t.TempDir()
	if missing, err := initModules(dir, "main.tf", src, empty+string(filepath.ListSeparator)+mirror); err != nil || missing {
		t.Fatalf("initModules: missing %v, err %v", missing, err)
	}
	target, err := os.Readlink(filepath.Join(dir, ".terraform", "modules", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(mirror, "terraform-aws-thing"); target != want {
		t.Errorf("module x linked to %s, want %s", target, want)
	}
}

// TestModuleVersions checks that a registry call is linked to the release
// terraform init would download: the newest that meets the call's version
// constraint, across the folders of the list; the mirror (a folder without
// a version) when no release meets it or no constraint is given; nothing,
// and a missing module reported, when neither exists.
func TestModuleVersions(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{
		filepath.Join(a, "terraform-aws-thing@3.5.0"),
		filepath.Join(a, "terraform-aws-thing@5.7.0"),
		filepath.Join(b, "terraform-aws-thing@3.6.1"),
		filepath.Join(b, "terraform-aws-thing@4.0.0"),
		filepath.Join(b, "terraform-aws-thing"),
		filepath.Join(a, "terraform-aws-other@1.0.4"),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	modules := a + string(filepath.ListSeparator) + b
	for _, tc := range []struct {
		name, source, version, want string
		missing                     bool
	}{
		{"pessimistic", "thing", "~> 3.0", filepath.Join(b, "terraform-aws-thing@3.6.1"), false},
		{"exact", "thing", "3.5.0", filepath.Join(a, "terraform-aws-thing@3.5.0"), false},
		{"range", "thing", ">= 4.0, < 6.0", filepath.Join(a, "terraform-aws-thing@5.7.0"), false},
		{"no release fits", "thing", "~> 6.0", filepath.Join(b, "terraform-aws-thing"), false},
		{"no constraint", "thing", "", filepath.Join(b, "terraform-aws-thing"), false},
		{"release only", "other", "1.0.4", filepath.Join(a, "terraform-aws-other@1.0.4"), false},
		{"nothing fits", "other", "~> 2.0", "", true},
		{"not held", "absent", "1.0.0", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "module \"m\" {\n  source = \"terraform-aws-modules/" + tc.source + "/aws\"\n"
			if tc.version != "" {
				src += "  version = \"" + tc.version + "\"\n"
			}
			src += "}\n"
			dir := t.TempDir()
			missing, err := initModules(dir, "main.tf", []byte(src), modules)
			if err != nil {
				t.Fatal(err)
			}
			if missing != tc.missing {
				t.Errorf("missing = %v, want %v", missing, tc.missing)
			}
			target, err := os.Readlink(filepath.Join(dir, ".terraform", "modules", "m"))
			if tc.want == "" {
				if err == nil {
					t.Errorf("linked to %s, want nothing", target)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if target != tc.want {
				t.Errorf("linked to %s, want %s", target, tc.want)
			}
		})
	}
}
