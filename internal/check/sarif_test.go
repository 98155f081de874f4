package check

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSARIFSchema validates the SARIF output of every rule project against
// the SARIF 2.1.0 JSON schema kept in testdata, and checks that each result
// names its resource address.
func TestSARIFSchema(t *testing.T) {
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, "testdata/rules/AWS-NET-001/fail", "testdata/rules/AWS-NET-006/fail", "testdata/rules/CHECK-002/pass",
		"testdata/rules/CHECK-002/fail", "testdata/rules/MOAT-002/fail", "testdata/paths/db-public", "testdata/paths/grouped-ports", "testdata/projects/eks")
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, rep); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("SARIF output does not validate: %v", err)
	}
	// The validator must be able to fail: a result without a message is invalid.
	broken := strings.Replace(buf.String(), `"message": {`, `"messageX": {`, 1)
	bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(broken))
	if err := sch.Validate(bad); err == nil {
		t.Error("a result without a message validated")
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID  string `json:"ruleId"`
				Message struct{ Text string }
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 1 || len(log.Runs[0].Results) != len(rep.Findings) {
		t.Fatalf("want one run with %d results", len(rep.Findings))
	}
	for i, r := range log.Runs[0].Results {
		if a := rep.Findings[i].Address; a != "" && !strings.Contains(r.Message.Text, a) {
			t.Errorf("result %d (%s) message %q lacks the address %q", i, r.RuleID, r.Message.Text, a)
		}
	}
}
