package tf

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

// TestDeepNestingRefused: a file nested millions deep, in any of the
// ways HCL's parser or evaluator recurses on, fails the load with an
// error naming the file and the line where the bound is passed, instead
// of overflowing the stack, which ends the process. Real nesting loads.
func TestDeepNestingRefused(t *testing.T) {
	// The stack is bounded well below Go's 1 GB so that, without the
	// bound, a test overflows it soon, at this depth.
	const n = 200_000
	defer debug.SetMaxStack(debug.SetMaxStack(32 << 20))
	deep := func(open, mid, closing string) string {
		return strings.Repeat(open, n) + mid + strings.Repeat(closing, n)
	}
	deep4 := func(open, mid, closing string) string {
		return strings.Repeat(open, n/4) + mid + strings.Repeat(closing, n/4)
	}
	for _, tc := range []struct {
		name, file, src, want string
	}{
		{"parentheses", "main.tf", "locals {\n  a = " + deep("(", "1", ")") + "\n}\n", "main.tf:2"},
		{"lists", "main.tf", "locals {\n  a = " + deep("[", "", "]") + "\n}\n", "main.tf:2"},
		{"objects", "main.tf", "locals {\n  a = " + deep("{a=", "1", "}") + "\n}\n", "main.tf:2"},
		{"blocks", "main.tf", "resource \"a\" \"b\" {\n" + deep("x {\n", "", "}\n") + "}\n", "main.tf:"},
		{"sums", "main.tf", "locals {\n  a = 1" + strings.Repeat("+1", n) + "\n}\n", "main.tf:2"},
		{"negations", "main.tf", "locals {\n  a = " + strings.Repeat("!", n) + "true\n}\n", "main.tf:2"},
		{"conditionals", "main.tf", "locals {\n  a = " + strings.Repeat("true ? 1 : ", n/10) + "2\n}\n", "main.tf:2"},
		{"interpolations", "main.tf", "locals {\n  a = \"" + deep("${\"", "x", "\"}") + "\"\n}\n", "main.tf:2"},
		// A quarter as deep, past maxNesting still, within maxTokens.
		{"directives", "main.tf", "locals {\n  a = <<EOT\n" + deep4("%{if true}", "x", "%{endif}") + "\nEOT\n}\n", "main.tf:3"},
		{"closers in strings", "main.tf", "locals {\n  a = " + deep4(`f(")", `, "1", ")") + "\n}\n", "main.tf:2"},
		{"indexes", "main.tf", "locals {\n  a = local.b" + strings.Repeat("[local.c]", n) + "\n}\n", "main.tf:2"},
		{"json", "main.tf.json", `{"locals": ` + deep(`{"a":`, "1", "}") + "}", "main.tf.json:1"},
		{"json template", "main.tf.json", "{\n\"locals\": {\"a\": \"${" + deep("(", "1", ")") + "}\"}}", "main.tf.json:2"},
		{"tfvars", "terraform.tfvars", "a = " + deep("[", "", "]") + "\n", "terraform.tfvars:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := fstest.MapFS{tc.file: {Data: []byte(tc.src)}}
			if tc.file != "main.tf" {
				files["main.tf"] = &fstest.MapFile{}
			}
			_, err := LoadDir(files, ".", Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nested deeper") {
				t.Errorf("LoadDir = %v, want an error at %s saying what is nested too deep", err, tc.want)
			}
		})
	}

	// A template file read by templatefile is bounded as well: the call is
	// not evaluated, and says why.
	p := load(t, fstest.MapFS{
		"main.tf": {Data: []byte("resource \"aws_instance\" \"a\" {\n  user_data = templatefile(\"t.tpl\", {})\n}\n")},
		"t.tpl":   {Data: []byte(deep("${(", "1", ")}"))},
	}, Options{})
	if !hasNote(p, "main.tf:2", "nested deeper") {
		t.Errorf("templatefile of a deep template: notes %v, want one at main.tf:2 saying it is nested too deep", p.Notes)
	}

	// What real code writes loads.
	load(t, fstest.MapFS{"main.tf": {Data: []byte(`
locals {
  a = [for k, v in { x = [1, 2] } : { (k) = [for i in v : i * 2 + 1 if i > 0 && !(i == 3)] }]
  b = "${lookup(local.c, "x", "y")}-%{if true}z%{endif}"
  c = { x = "1" }
  d = local.a[0]["x"][1] > 2 ? (local.c.x == "1" ? "a" : "b") : "c"
}
`)}}, Options{})
}

func hasNote(p *Project, at, msg string) bool {
	for _, n := range p.Notes {
		if strings.HasPrefix(n.String(), at) && strings.Contains(n.Msg, msg) {
			return true
		}
	}
	return false
}

// TestEvaluationBounded: a few lines that describe more than any machine
// holds (a product of ranges, a value doubled forty times, a format's
// width, nested loops, a replace or indent that multiplies its text) are
// not built. Each fails where it is written, with a note saying so, and
// what it sets is not known statically, so that the rule it is in is read
// at its worst. What asks for too much at once is refused alone, and what
// does not depend on it is still read; once what was built reaches the
// bound, nothing more is evaluated and everything left is read at its
// worst.
func TestEvaluationBounded(t *testing.T) {
	doubled := func(first, step string) string {
		s := "  v0 = " + first + "\n"
		for i := 1; i <= 40; i++ {
			s += fmt.Sprintf("  v%d = "+step+"\n", i, i-1, i-1)
		}
		return s
	}
	for _, tc := range []struct {
		name, locals, cidr string
		spent              bool
	}{
		{"setproduct", "  r = range(1000)\n  v = setproduct(local.r, local.r, local.r)\n", "local.v", false},
		{"format width", "", `format("%0999999999d", 1)`, false},
		{"formatlist width", "", `formatlist("%-99999999s", range(100))`, false},
		{"indent", "", `indent(999999999, "a\nb")`, false},
		{"replace", "  a = join(\"\", [for i in range(1000) : \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"])\n  v = replace(replace(local.a, \"a\", local.a), \"a\", local.a)\n", "local.v", false},
		{"doubled string", doubled(`"aaaaaaaa"`, `"${local.v%d}${local.v%d}"`), "local.v40", true},
		{"doubled list", doubled(`[1, 2, 3, 4]`, `[local.v%d, local.v%d]`), "jsonencode(local.v40)", true},
		{"doubled by concat", doubled(`[1, 2, 3, 4]`, `concat(local.v%d, local.v%d)`), "local.v40", true},
		{"nested for", "  r = range(1000)\n  v = [for a in local.r : [for b in local.r : [for c in local.r : c]]]\n", "local.v", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "locals {\n" + tc.locals + "}\n" + `resource "aws_security_group" "g" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ` + "[" + tc.cidr + "]" + `
  }
}
`
			line := strings.Count(src, "\n") - 2
			p := load(t, fstest.MapFS{"main.tf": {Data: []byte(src)}}, Options{})
			noted := false
			for _, n := range p.Notes {
				noted = noted || strings.Contains(n.Msg, "builds more than") && n.Pos.Line <= line
			}
			if !noted {
				t.Errorf("no note that the evaluation was bounded: %v", p.Notes)
			}
			g := byAddr(p)["aws_security_group.g"]
			rule, _ := g.Values["ingress"].([]any)
			if len(rule) != 1 {
				t.Fatalf("ingress = %#v, want the one rule", g.Values["ingress"])
			}
			r := rule[0].(map[string]any)
			if _, unknown := r["cidr_blocks"].(Unknown); !unknown {
				if l, ok := r["cidr_blocks"].([]any); !ok || len(l) != 1 || !isUnknown(l[0]) {
					t.Errorf("cidr_blocks = %.200v, want it not known statically", r["cidr_blocks"])
				}
			}
			if !tc.spent && (r["from_port"] != 22.0 || r["protocol"] != "tcp") {
				t.Errorf("from_port, protocol = %v, %v: what does not depend on the bounded value is read", r["from_port"], r["protocol"])
			}
		})
	}
}

// TestJSONEvaluationBounded: the strings of a .tf.json file are templates
// too, whose for expressions and interpolated parts are charged as the
// native syntax's are: loops nested in a JSON string that build more than
// maxWork, though what they leave is small, fail where they are written,
// with a note, and what they set is read at its worst. The strings of a
// JSON variables file are not templates: Terraform takes them as written.
func TestJSONEvaluationBounded(t *testing.T) {
	for _, tc := range []struct{ name, v string }{
		{"for", `${[for a in local.r : a if [for b in local.r : b] == []] == [] ? \"10.0.0.0/8\" : \"x\"}`},
		{"template for", `%{for a in local.r}%{for b in local.r}%{endfor}%{endfor}10.0.0.0/8`},
		{"interpolation", `${[for a in local.r : \"${[for b in local.r : b] == []}\"] == [] ? \"x\" : \"10.0.0.0/8\"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := fstest.MapFS{
				"locals.tf.json": {Data: []byte(`{"locals": {"r": "${flatten([for i in range(1000) : [i, i]])}", "v": "` + tc.v + `"}}`)},
				"main.tf": {Data: []byte(`resource "aws_security_group" "g" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [local.v]
  }
}
`)},
			}
			p := load(t, files, Options{})
			if !hasNote(p, "locals.tf.json:1", "builds more than") {
				t.Errorf("no note at locals.tf.json:1 that the evaluation was bounded: %v", p.Notes)
			}
			r := byAddr(p)["aws_security_group.g"].Values["ingress"].([]any)[0].(map[string]any)
			if l, ok := r["cidr_blocks"].([]any); !isUnknown(r["cidr_blocks"]) && (!ok || len(l) != 1 || !isUnknown(l[0])) {
				t.Errorf("cidr_blocks = %.200v, want it not known statically", r["cidr_blocks"])
			}
		})
	}
	// What the strings of real .tf.json files hold loads as before.
	p := load(t, fstest.MapFS{"main.tf.json": {Data: []byte(`{
  "locals": {"c": {"x": "10.0.0.0/8"}, "l": ["${local.c.x}", "a-%{if true}b%{endif}"]},
  "resource": {"aws_security_group": {"g": {"ingress": [{"from_port": 22, "to_port": 22, "protocol": "tcp",
    "cidr_blocks": "${[for k, v in local.c : v]}"}]}}}
}`)}}, Options{})
	r := byAddr(p)["aws_security_group.g"].Values["ingress"].([]any)[0].(map[string]any)
	if l, ok := r["cidr_blocks"].([]any); !ok || len(l) != 1 || l[0] != "10.0.0.0/8" {
		t.Errorf("cidr_blocks = %v, want [10.0.0.0/8]", r["cidr_blocks"])
	}

	p = load(t, fstest.MapFS{
		"main.tf":               {Data: []byte("variable \"x\" {}\nresource \"aws_instance\" \"a\" {\n  user_data = var.x\n}\n")},
		"terraform.tfvars.json": {Data: []byte(`{"x": "${[for a in range(1000) : [for b in range(1000) : b]]}"}`)},
	}, Options{})
	if got := byAddr(p)["aws_instance.a"].Values["user_data"]; got != "${[for a in range(1000) : [for b in range(1000) : b]]}" {
		t.Errorf("user_data = %.100v, want the string of the variables file as written", got)
	}
}

func isUnknown(v any) bool {
	_, ok := v.(Unknown)
	return ok
}

// TestExpansionBounded: count and for_each expand to at most maxInstances
// instances in all. A resource past the bound is read as one instance
// whose key is unknown, which stands for them all (before, a count of a
// billion left the resource out), and says so; a count Terraform rejects
// is said to be rejected. A data block's count is bounded with them. Module calls that multiply are refused at load.
func TestExpansionBounded(t *testing.T) {
	p := load(t, fstest.MapFS{"main.tf": {Data: []byte(`
resource "aws_security_group" "billion" {
  count = 1e9
  name  = "g-${count.index}"
}
resource "aws_security_group" "first" {
  count = 60000
}
resource "aws_security_group" "second" {
  for_each = { for i in range(1000) : tostring(i) => i }
}
resource "aws_security_group" "third" {
  count = 50000
}
resource "aws_security_group" "negative" {
  count = -1
}
data "aws_subnet" "billion" {
  count = 1e9
  id    = "subnet-${count.index}"
}
resource "aws_instance" "in_billion" {
  subnet_id = data.aws_subnet.billion[0].id
}
`)}}, Options{})
	got := map[string]int{}
	for _, r := range p.Resources {
		got[strings.SplitN(r.Address, "[", 2)[0]]++
	}
	want := map[string]int{"aws_security_group.billion": 1, "aws_security_group.first": 60000,
		"aws_security_group.second": 1000, "aws_security_group.third": 1}
	for addr, n := range want {
		if got[addr] != n {
			t.Errorf("%s: %d instances, want %d", addr, got[addr], n)
		}
	}
	r := byAddr(p)["aws_security_group.billion"]
	if name, ok := r.Values["name"].(Unknown); !ok {
		t.Errorf("billion's name = %#v, want it not known statically (count.index is unknown)", name)
	}
	if id := byAddr(p)["aws_instance.in_billion"].Values["subnet_id"]; !isUnknown(id) {
		t.Errorf("a subnet of a lookup past the bound = %#v, want it not known statically", id)
	}
	for _, at := range []string{"main.tf:3", "main.tf:13", "main.tf:19"} {
		if !hasNote(p, at, "past the 100000") {
			t.Errorf("no note at %s that the expansion is past the bound: %v", at, p.Notes)
		}
	}
	rejected := false
	for _, n := range p.Notes {
		rejected = rejected || n.Rejected && strings.HasPrefix(n.String(), "main.tf:16") && strings.Contains(n.Msg, "Invalid count")
	}
	if !rejected || got["aws_security_group.negative"] != 0 {
		t.Errorf("count = -1: %d instances, notes %v; want none, and a note that Terraform rejects it", got["aws_security_group.negative"], p.Notes)
	}

	files := fstest.MapFS{"main.tf": {Data: []byte("module \"m\" {\n  source = \"./m0\"\n}\n")}}
	for i := range 6 {
		var src strings.Builder
		for j := range 10 {
			fmt.Fprintf(&src, "module \"c%d\" {\n  source = \"../m%d\"\n}\n", j, i+1)
		}
		files[fmt.Sprintf("m%d/main.tf", i)] = &fstest.MapFile{Data: []byte(src.String())}
	}
	files["m6/main.tf"] = &fstest.MapFile{Data: []byte("resource \"aws_vpc\" \"v\" {}\n")}
	if _, err := LoadDir(files, ".", Options{}); err == nil || !strings.Contains(err.Error(), "more than 10000 module calls") {
		t.Errorf("a million module calls: LoadDir = %v, want an error saying there are too many", err)
	}
}

// TestLongHeredocRefused: HCL's parser joins a heredoc's lines one at a
// time, copying all before each, so a heredoc of 20,000 lines took a
// minute. Past a bound on what that copies, the load fails naming the
// file and line; a heredoc of a thousand lines loads.
func TestLongHeredocRefused(t *testing.T) {
	line := strings.Repeat("x", 100) + "\n"
	for _, tc := range []struct{ file, src string }{
		{"main.tf", "locals {\n  a = <<EOT\n" + strings.Repeat(line, 20000) + "EOT\n}\n"},
		{"main.tf.json", `{"locals": {"a": "` + strings.Repeat(strings.Repeat("x", 100)+`\n`, 20000) + `"}}`},
	} {
		files := fstest.MapFS{tc.file: {Data: []byte(tc.src)}}
		if tc.file != "main.tf" {
			files["main.tf"] = &fstest.MapFile{}
		}
		_, err := LoadDir(files, ".", Options{})
		if err == nil || !strings.Contains(err.Error(), tc.file+":") || !strings.Contains(err.Error(), "too many lines") {
			t.Errorf("%s: LoadDir = %v, want an error naming the file and saying the string is too long", tc.file, err)
		}
	}
	load(t, fstest.MapFS{"main.tf": {Data: []byte("locals {\n  a = <<EOT\n" + strings.Repeat(line, 1000) + "EOT\n}\n")}}, Options{})
}

// TestManyTokensRefused: a file of millions of one-byte tokens is refused,
// naming the file and the line where the bound is passed, before it is
// lexed: HCL's lexer holds every token at once, and four megabytes of
// "(" made it allocate 1.4 GB. A template read by templatefile is held to
// the same bound.
func TestManyTokensRefused(t *testing.T) {
	const size = 4 << 20
	for _, tc := range []struct{ name, src, want string }{
		{"parentheses", "locals {\n  a = " + strings.Repeat("(", size) + "\n}\n", "main.tf:2: more than"},
		{"newlines", "locals {\n" + strings.Repeat("\n", size) + "}\n", "main.tf:"},
		{"commas", "locals {\n  a = [" + strings.Repeat("1,", size/2) + "]\n}\n", "main.tf:2: more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := fstest.MapFS{"main.tf": {Data: []byte(tc.src)}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := LoadDir(files, ".", Options{})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadDir = %v, want an error containing %q", err, tc.want)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Errorf("refusing it allocated %d MB, want at most 64", got>>20)
			}
		})
	}
	files := fstest.MapFS{
		"main.tf": {Data: []byte("locals {\n  a = templatefile(\"t.tpl\", {})\n}\n")},
		"t.tpl":   {Data: []byte("${" + strings.Repeat("(", size) + "}")},
	}
	p := load(t, files, Options{})
	if !hasNote(p, "main.tf:2", "more than") {
		t.Errorf("templatefile of a template of millions of tokens: notes %v, want one at main.tf:2", p.Notes)
	}
}
