package tf

import (
	"strings"
	"testing"
)

const modulePlan = `{
  "format_version": "1.2",
  "planned_values": {"root_module": {
    "resources": [
      {"address": "aws_security_group.db", "mode": "managed", "type": "aws_security_group", "name": "db", "values": {"name": "db"}},
      {"address": "aws_subnet.s[0]", "mode": "managed", "type": "aws_subnet", "name": "s", "index": 0, "values": {"cidr_block": "10.0.0.0/24"}},
      {"address": "aws_subnet.s[1]", "mode": "managed", "type": "aws_subnet", "name": "s", "index": 1, "values": {"id": "subnet-0123", "cidr_block": "10.0.1.0/24"}},
      {"address": "data.aws_ami.x", "mode": "data", "type": "aws_ami", "name": "x", "values": {}}
    ],
    "child_modules": [{"address": "module.db", "resources": [
      {"address": "module.db.aws_db_instance.this", "mode": "managed", "type": "aws_db_instance", "name": "this",
       "values": {"engine": "postgres", "publicly_accessible": false}}
    ]}]
  }},
  "resource_changes": [
    {"address": "module.db.aws_db_instance.this", "change": {"after_unknown": {"vpc_security_group_ids": true, "db_subnet_group_name": true, "kms_key_id": true, "id": true}}}
  ],
  "configuration": {"root_module": {
    "resources": [
      {"address": "aws_security_group.db", "mode": "managed", "expressions": {}},
      {"address": "aws_subnet.s", "mode": "managed", "expressions": {}}
    ],
    "module_calls": {"db": {
      "source": "./modules/db",
      "expressions": {"sg": {"references": ["aws_security_group.db.id", "aws_security_group.db"]},
                      "subnets": {"references": ["aws_subnet.s"]}},
      "module": {
        "resources": [{"address": "aws_db_instance.this", "mode": "managed", "expressions": {
          "vpc_security_group_ids": {"references": ["var.sg"]},
          "db_subnet_group_name": {"references": ["var.subnets"]},
          "kms_key_id": {"references": ["local.key"]}
        }}],
        "variables": {"sg": {}, "subnets": {}}
      }
    }}
  }}
}`

func TestReadPlanResolvesThroughModules(t *testing.T) {
	p, err := ReadPlan("plan.json", []byte(modulePlan))
	if err != nil {
		t.Fatal(err)
	}
	r := byAddr(p)
	if _, ok := r["data.aws_ami.x"]; ok {
		t.Error("data sources are not managed resources")
	}
	db := r["module.db.aws_db_instance.this"]
	if db.Values["vpc_security_group_ids"] != "aws_security_group.db" {
		t.Errorf("vpc_security_group_ids = %#v, want the group's address", db.Values["vpc_security_group_ids"])
	}
	subs, _ := db.Values["db_subnet_group_name"].([]any)
	if len(subs) != 2 || subs[0] != "aws_subnet.s[0]" || subs[1] != "subnet-0123" {
		t.Errorf("a whole counted resource = %#v, want each instance's ID (known or address)", db.Values["db_subnet_group_name"])
	}
	if _, ok := db.Values["kms_key_id"].(Unknown); !ok {
		t.Errorf("a local is not in the plan: want Unknown, got %#v", db.Values["kms_key_id"])
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0].String(), "local.key") || p.Notes[0].Pos.Line == 0 {
		t.Errorf("notes = %v, want one naming local.key with a line", p.Notes)
	}
	if db.Pos.File != "plan.json" || db.Pos.Line != 11 {
		t.Errorf("position %v, want plan.json:11", db.Pos)
	}
}

func TestReadPlanErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{\n  \"planned_values\": {\n    \"root_module\": [\n}", "plan.json:4"},
		{"{\n  \"planned_values\": {\"root_module\": {\"resources\": 3}}\n}", "plan.json:2"},
		{"{\"format_version\": \"1.2\"}", "plan.json:1: not a Terraform plan"},
		{"", "plan.json:1"},
	} {
		_, err := ReadPlan("plan.json", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadPlan(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzReadPlan: any input either reads or fails with an error naming the
// file and line; it never panics.
func FuzzReadPlan(f *testing.F) {
	f.Add([]byte(modulePlan))
	f.Add([]byte(`{"planned_values": {"root_module": {}}}`))
	f.Add([]byte(`{"planned_values": {"root_module": {"resources": [{"address": "a.b", "values": {"x": null}}]}}, "configuration": {"root_module": {"resources": [{"address": "a.b", "expressions": {"x": {"references": ["module.m.o"]}}}], "module_calls": {"m": {"module": {"outputs": {"o": {"expression": {"references": ["var.q"]}}}}}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadPlan("plan.json", data)
		if err != nil && !strings.Contains(err.Error(), "plan.json:") {
			t.Errorf("error names no file and line: %v", err)
		}
	})
}
