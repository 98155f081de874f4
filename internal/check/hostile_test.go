package check

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
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
