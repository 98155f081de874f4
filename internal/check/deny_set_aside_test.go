package check

import (
	"fmt"
	"strings"
	"testing"
)

// TestDenySetAsideOnPath checks that a path passing a deny that is set
// aside names it on the path: a network ACL deny whose rule number is not
// known statically, read as deciding after the allows, and an NSG deny
// that cannot be evaluated, read as denying nothing. The exposure stays
// graded by the allows that admit it, which are known; the path did not
// say that a deny stood there at all.
func TestDenySetAsideOnPath(t *testing.T) {
	rep := run(t, "testdata/aws/nacl-unknown-number")
	got := activeOn(rep, RuleExposedPort, "aws_instance.bastion")
	if len(got) != 1 || !strings.Contains(fmt.Sprint(got[0].Path), "a deny of tcp 22 from 0.0.0.0/0 is set aside: its rule number is not known statically") {
		t.Errorf("SSH past a deny at an unknown rule number: %+v, want one whose path names the deny set aside", got)
	}
	rep = checkSource(t, azureBase+`
variable "unknown" {}
resource "azurerm_network_security_group" "app" {
  name = "nsg-app"
}
`+nsgRule("deny", 100, "Deny", "*", "var.unknown")+nsgRule("ssh", 200, "Allow", "22", `"Internet"`))
	got = activeOn(rep, RuleAzExposedPort, "azurerm_linux_virtual_machine.vm")
	if len(got) != 1 || !strings.Contains(fmt.Sprint(got[0].Path), "is set aside: it cannot be evaluated") {
		t.Errorf("SSH past an NSG deny not known statically: %+v, want one whose path names the deny set aside", got)
	}
}
