package check

import (
	"strings"
	"testing"
)

// TestPublicSnapshotUnknown: a snapshot whose shared_accounts, or an
// image permission whose group, is not known statically is read as
// shared with every account, and said so.
func TestPublicSnapshotUnknown(t *testing.T) {
	rep := checkSource(t, `
variable "share_with" {
  type = list(string)
}
variable "group" {
  type = string
}
resource "aws_db_snapshot" "s" {
  db_instance_identifier = "orders"
  db_snapshot_identifier = "orders"
  shared_accounts        = var.share_with
}
resource "aws_ami_launch_permission" "i" {
  image_id = "ami-0123456789abcdef0"
  group    = var.group
}
`)
	for _, a := range []string{"aws_db_snapshot.s", "aws_ami_launch_permission.i"} {
		if got := activeOn(rep, RulePublicSnapshot, a); len(got) != 1 || !strings.Contains(got[0].Message, "not known statically") {
			t.Errorf("%s on %s: %+v, want one saying it is not known statically", RulePublicSnapshot, a, got)
		}
	}
}
