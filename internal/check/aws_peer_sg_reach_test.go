package check

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestReachPeerSecurityGroupReference checks that --reach names a machine
// of a peered VPC that the database's group admits by its security group
// (AWS takes a group of a peer VPC of the same region in a rule), with the
// peering on the path, when its subnet's table routes the database's
// range through the peering; and not one whose table does not. No source
// was found: the peered VPC was a source of its whole range alone, which
// a rule naming a group does not admit.
func TestReachPeerSecurityGroupReference(t *testing.T) {
	src, err := os.ReadFile("testdata/aws/peer-sg-reference/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeProject(t, string(src))
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_db_instance.orders")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range acc {
		if a.Port == 5432 {
			got[a.Source] = fmt.Sprint(a.Path)
		}
	}
	path, ok := got["aws_instance.app (in aws_subnet.a)"]
	if !ok || !strings.Contains(path, "aws_vpc_peering_connection.ab") {
		t.Errorf("the app in the peered VPC: path %q (found %v), want reached through the peering; sources %v", path, ok, got)
	}
	for s := range got {
		if strings.HasPrefix(s, "aws_instance.isolated") {
			t.Errorf("a machine whose subnet does not route to the peer reaches the database: %s %s", s, got[s])
		}
	}
}
