package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestHostileNamesShownAsEscapes: a repository's text (resource names
// from block labels and for_each keys, a value a message quotes, a
// suppression's reason) holding a right-to-left override, a C1 CSI, ESC
// and line breaks reaches every output of moat check, text, --explain,
// --reach, JSON, SARIF and JUnit, with those as escapes: no character
// that acts on a terminal, no forged line. The JSON keeps the value.
func TestHostileNamesShownAsEscapes(t *testing.T) {
	const dir = "testdata/hostile/names"
	const instance = "aws_instance.nimda\u202eadmin"
	rep := run(t, dir)
	outs := map[string][]byte{}
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Write(&buf, rep, f); err != nil {
			t.Fatal(err)
		}
		outs[f] = buf.Bytes()
	}
	var buf bytes.Buffer
	if err := Explain(&buf, rep, "AWS-NET-001"); err != nil {
		t.Fatal(err)
	}
	outs["explain"] = buf.Bytes()
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, instance)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"text", "json"} {
		var buf bytes.Buffer
		if err := WriteAccess(&buf, instance, acc, f); err != nil {
			t.Fatal(err)
		}
		outs["reach "+f] = buf.Bytes()
	}

	forged := regexp.MustCompile(`(?m)^forged`)
	for name, out := range outs {
		for i, r := range string(out) {
			if r < ' ' && r != '\n' || r == 0x7f || r >= 0x80 && !strconv.IsPrint(r) {
				t.Errorf("%s: %U raw at byte %d: %q", name, r, i, out[max(0, i-40):min(len(out), i+40)])
				break
			}
		}
		if forged.Match(out) {
			t.Errorf("%s: a line break in a name started a line of its own:\n%s", name, out)
		}
	}
	for _, name := range []string{"text", "explain", "reach text"} {
		if !strings.Contains(string(outs[name]), `aws_instance.nimda\u202eadmin`) {
			t.Errorf("%s does not name the instance as aws_instance.nimda\\u202eadmin:\n%s", name, outs[name])
		}
	}
	if !strings.Contains(string(outs["text"]), `kept \u202e\u009b2J for the switch`) {
		t.Errorf("the text output does not show the suppression's reason with escapes:\n%s", outs["text"])
	}
	// The JSON's values are the names as the repository has them.
	var got jsonReport
	if err := json.Unmarshal(outs["json"], &got); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range got.Findings {
		found = found || f.Address == instance
	}
	if !found {
		t.Errorf("no finding of %q in the JSON output:\n%s", instance, outs["json"])
	}
}

// TestReadsStayInTree: code under check reads files (file, templatefile,
// module sources, its own .tf files) from its repository alone. A secret
// beside the checkout, named by a path that climbs out, an absolute path,
// /proc/self/environ or a link leaving the tree, is read by none: each
// call is a value not known statically, reported at its line and read at
// its worst (the group admits every address), and the secret shows in no
// output. A module outside the tree fails the run, naming its call.
func TestReadsStayInTree(t *testing.T) {
	const secret = "hunter2-beside-the-checkout"
	t.Setenv("MOAT_TEST_SECRET", secret)
	top := t.TempDir()
	write(t, top, "secret.txt", secret)
	write(t, top, "mod/main.tf", "resource \"aws_security_group\" \"outside\" {}\n")
	repo := filepath.Join(top, "repo")
	write(t, repo, ".git/HEAD", "ref: refs/heads/main\n")
	if err := os.Symlink(filepath.Join(top, "secret.txt"), filepath.Join(repo, "link.txt")); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", strings.Count(filepath.ToSlash(repo), "/")+2)
	reads := map[string]string{
		"relative": `file("../secret.txt")`,
		"climbing": `file("` + up + strings.TrimPrefix(filepath.ToSlash(filepath.Join(top, "secret.txt")), "/") + `")`,
		"absolute": `file("` + filepath.ToSlash(filepath.Join(top, "secret.txt")) + `")`,
		"environ":  `file("` + up + `proc/self/environ")`,
		"link":     `file("link.txt")`,
		"template": `templatefile("link.txt", {})`,
	}
	var src strings.Builder
	lines := map[string]int{}
	line := 1
	for _, name := range slices.Sorted(maps.Keys(reads)) {
		fmt.Fprintf(&src, "resource \"aws_security_group\" %q {\n  ingress {\n    from_port   = 22\n    to_port     = 22\n    protocol    = \"tcp\"\n    cidr_blocks = [%s]\n  }\n}\n", name, reads[name])
		lines[name] = line + 5
		line += 8
	}
	write(t, repo, "main.tf", src.String())
	rep := run(t, repo)
	for _, f := range Formats {
		var buf bytes.Buffer
		if err := Write(&buf, rep, f); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "hunter2") {
			t.Errorf("the %s output holds the secret:\n%s", f, buf.String())
		}
	}
	for name, line := range lines {
		noted := false
		for _, f := range rep.Findings {
			noted = noted || f.RuleID == RuleNotEvaluated && f.Line == line && f.Address == "aws_security_group."+name
		}
		if !noted {
			t.Errorf("%s: no %s at main.tf:%d", reads[name], RuleNotEvaluated, line)
		}
		if len(activeOn(rep, "AWS-NET-011", "aws_security_group."+name))+len(activeOn(rep, "AWS-NET-003", "aws_security_group."+name)) == 0 {
			t.Errorf("%s: aws_security_group.%s is not read as admitting every address", reads[name], name)
		}
	}

	write(t, repo, "main.tf", "module \"m\" {\n  source = \"../mod\"\n}\n")
	_, err := Run(context.Background(), Config{Paths: []string{repo}})
	if err == nil || !strings.Contains(err.Error(), `module "m"`) {
		t.Errorf("a module outside the tree: Run = %v, want an error naming the call", err)
	}
	// Told the tree is wider, the run reads it.
	if _, err := Run(context.Background(), Config{Paths: []string{repo}, Root: top}); err != nil {
		t.Errorf("with Root %s: %v", top, err)
	}
}

// TestOutsideARepositoryReadsModules: a directory that no repository holds
// is laid out as published modules are, an example calling source =
// "../.." and reading files beside the module: it reads them (as Terraform
// would) and finds what the module opens. Confined to the directory, the
// run failed.
func TestOutsideARepositoryReadsModules(t *testing.T) {
	top := t.TempDir()
	if treeRoot(top) != filepath.VolumeName(top)+string(filepath.Separator) {
		t.Fatalf("%s is inside a repository (%s): set TMPDIR outside one", top, treeRoot(top))
	}
	write(t, top, "main.tf", "resource \"aws_security_group\" \"this\" {\n  ingress {\n    from_port   = 22\n    to_port     = 22\n    protocol    = \"tcp\"\n    cidr_blocks = [trimspace(file(\"${path.module}/cidr.txt\"))]\n  }\n}\n")
	write(t, top, "cidr.txt", "0.0.0.0/0\n")
	ex := filepath.Join(top, "examples", "complete")
	write(t, ex, "main.tf", "module \"sg\" {\n  source = \"../..\"\n}\n")
	rep := run(t, ex)
	if len(activeOn(rep, "AWS-NET-003", "module.sg.aws_security_group.this")) == 0 {
		t.Errorf("the module's group open to the internet is not found:\n%+v", rep.Findings)
	}
	// A module reached by a link to an absolute path (as a module cache
	// laid out by hand has them) is read too.
	linked := filepath.Join(top, "examples", "linked")
	write(t, linked, "main.tf", "module \"sg\" {\n  source = \"./mod\"\n}\n")
	if err := os.Symlink(top, filepath.Join(linked, "mod")); err != nil {
		t.Fatal(err)
	}
	rep = run(t, linked)
	if len(activeOn(rep, "AWS-NET-003", "module.sg.aws_security_group.this")) == 0 {
		t.Errorf("through a link to an absolute path, the module's group open to the internet is not found:\n%+v", rep.Findings)
	}
}
