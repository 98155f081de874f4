// Package tf reads Terraform configurations (HCL directories) and Terraform
// plans (`terraform show -json`) into one shape: a flat list of resource
// instances whose attribute values are plain Go values (string, float64,
// bool, []any, map[string]any, nil) or Unknown where the value cannot be
// known from the files alone.
//
// Resource IDs that only a cloud provider could assign are replaced by the
// resource's address, so that a reference such as aws_vpc.main.id evaluates
// to "aws_vpc.main" in HCL and resolves to the same string in a plan. The
// two readers therefore give the same values for one project.
//
// Whatever the reader cannot evaluate (an unknown function, a count that
// depends on an unknown value, a remote module) is reported as a Note, never
// silently dropped.
package tf

import (
	"fmt"
	"sort"
)

// Resource is one managed resource instance.
type Resource struct {
	Address string // e.g. module.net.aws_subnet.private[0]
	Module  string // "" for the root module, else e.g. "module.net"
	Type    string // e.g. aws_subnet
	Name    string // e.g. private
	// Values holds the evaluated attributes and nested blocks; a nested
	// block type maps to a []any of map[string]any.
	Values map[string]any
	Pos    Pos // where the resource block starts
	End    int // last line of the block; 0 when unknown
	// ImportID is the ID an import block gives the resource: it adopts
	// an object that exists already, which others may name by that ID.
	ImportID string
	// Planned: read from a plan, whose values the provider has typed (an
	// attribute resolved through a reference may stand for a list).
	Planned bool
}

// Pos is a place in a source file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return p.File
}

// Unknown stands for a value that cannot be known from the files alone.
type Unknown struct {
	Why string // e.g. `aws_instance.web.private_ip is only known after apply`
	// From names the resources (addresses without instance keys, as
	// module.net.aws_route_table.private) that the value can only be taken
	// from, when its expression says so: element(aws_route_table.private[*].id,
	// count.index) is an ID of one of those tables, aws_lb.web.dns_name
	// that balancer's host name. Empty: it may be anything.
	From []string
	// Bits, when not 0, is the prefix length of the address range the value
	// is, if it is one at all: "${chomp(data.http.myip.response_body)}/32"
	// is one /32 whose address is not known. 0: any range, every address
	// included.
	Bits int
	// JSON, when not empty, is the text of the JSON document the value is
	// (jsonencode of a value, an IAM policy document) with each part not
	// known statically written as UnknownJSON: a policy's known statements
	// can be read from it.
	JSON string
}

// UnknownJSON stands in Unknown.JSON for a value not known statically.
const UnknownJSON = "(not known statically)"

// Note reports a construct that could not be evaluated.
type Note struct {
	Pos     Pos
	Address string // the resource or block concerned, when known
	Msg     string
	// Rejected is set when Terraform itself refuses the construct (a
	// module argument of the wrong type): terraform plan fails on it.
	Rejected bool
	// Name is set when what is not known statically is only a resource's
	// own name (its name argument), or a root variable that only such
	// names read: it matters only where the project names a resource by
	// a string that matches none it knows (the checker decides).
	Name bool

	kind string // what kind of construct, for one note per kind per resource
}

func (n Note) String() string {
	if n.Address != "" {
		return fmt.Sprintf("%s: %s: %s", n.Pos, n.Address, n.Msg)
	}
	return fmt.Sprintf("%s: %s", n.Pos, n.Msg)
}

// Project is what a reader found.
type Project struct {
	Resources []Resource
	Notes     []Note
	// Files holds the source text of every file read, by the name used in
	// Pos, so that callers can find in-source comments.
	Files map[string][]byte
	// Providers holds, by local name, what the configuration says of each
	// provider's version.
	Providers map[string]Provider
	// Configs holds, by address, the provider configuration each resource
	// and data source uses, as the root module names it ("aws",
	// "aws.west"): each is a region, or an account, of its own, but AWS
	// configurations known to be one region of one account are named by
	// the first of them (sameConfigs).
	Configs map[string]string
}

func (p *Project) sort() {
	sort.SliceStable(p.Resources, func(i, j int) bool { return p.Resources[i].Address < p.Resources[j].Address })
	sort.SliceStable(p.Notes, func(i, j int) bool {
		a, b := p.Notes[i], p.Notes[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Msg < b.Msg
	})
}
