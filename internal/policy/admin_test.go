package policy

import "testing"

// An administrator's forward identity is admitted only by a rule that names
// it: "*" means any service, never an administrator.
func TestAdminSource(t *testing.T) {
	tbl, err := Parse([]byte(`rules:
  - {name: any-to-db, from: ["*"], to: db, ports: [5432]}
  - {name: alice-to-db, from: [admin/alice], to: db, ports: [5432]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src  string
		port int
		rule string
		ok   bool
	}{
		{"admin/alice", 5432, "alice-to-db", true},
		{"admin/bob", 5432, DefaultDeny, false},
		{"admin/alice", 5433, DefaultDeny, false},
		{"api", 5432, "any-to-db", true},
	} {
		d := tbl.Decide(c.src, "db", c.port)
		if d.Allow != c.ok || d.Rule != c.rule {
			t.Errorf("Decide(%s, db, %d) = %+v, want allow=%v rule=%s", c.src, c.port, d, c.ok, c.rule)
		}
	}
}
