package tf

import (
	"testing"

	goversion "github.com/hashicorp/go-version"
)

// Below reads a version constraint's upper bound as Terraform does.
func TestConstraintBelow(t *testing.T) {
	limit := goversion.Must(goversion.NewVersion("3.0.0"))
	for c, want := range map[string]bool{
		"~> 2.46": true, "~> 2.46.0": true, "~> 3.0": false, "~> 2": false, "< 3.0": true, "< 3.0.1": false,
		"<= 2.99.0": true, "<= 3.0.0": false, "= 2.99.0": true, "2.99.0": true, "3.1.0": false, ">= 2.0": false,
		"!= 3.0.0": false, "> 2.0": false, "not a version": false,
	} {
		if got := Below(c, limit); got != want {
			t.Errorf("Below(%q, 3.0.0) = %v, want %v", c, got, want)
		}
	}
}
