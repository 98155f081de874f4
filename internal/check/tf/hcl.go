package tf

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Options tune LoadDir.
type Options struct {
	// VarFiles are extra .tfvars files (paths in the same fs.FS), applied
	// after terraform.tfvars and *.auto.tfvars, in order.
	VarFiles []string
}

// maxModuleDepth bounds local module nesting (and so module cycles).
const maxModuleDepth = 16

// module is one parsed Terraform module directory.
type module struct {
	dir       string
	variables map[string]*variable
	locals    []*hclsyntax.Attribute
	resources []*resBlock
	calls     []*callBlock
	outputs   []*hclsyntax.Attribute
	outNames  []string
}

type variable struct {
	name string
	def  hcl.Expression // nil when the variable has no default
	pos  Pos
}

type resBlock struct {
	typ, name string
	block     *hclsyntax.Block
	pos       Pos
	end       int
}

type callBlock struct {
	name   string
	source string
	block  *hclsyntax.Block
	pos    Pos
	mod    *module // nil when the source is not a local directory
}

// LoadDir reads the root module in dir of fsys, with terraform.tfvars,
// *.auto.tfvars, opts.VarFiles and every local module it calls. A syntax
// error fails the whole load with an error naming file and line.
func LoadDir(fsys fs.FS, dir string, opts Options) (*Project, error) {
	l := &loader{fsys: fsys, files: map[string][]byte{}, mods: map[string]*module{}, loading: map[string]bool{}}
	root, err := l.module(dir, 0)
	if err != nil {
		return nil, err
	}
	vars, err := l.tfvars(dir, opts.VarFiles)
	if err != nil {
		return nil, err
	}
	p := &Project{Files: l.files}
	ev := newEvaluator(root, vars, p)
	ev.run()
	p.Notes = append(p.Notes, l.notes...)
	p.sort()
	return p, nil
}

type loader struct {
	fsys  fs.FS
	files map[string][]byte
	mods  map[string]*module
	// loading holds the modules being read, to refuse cycles.
	loading map[string]bool
	notes   []Note
}

func (l *loader) parse(name string) (*hclsyntax.Body, error) {
	src, err := fs.ReadFile(l.fsys, name)
	if err != nil {
		return nil, fmt.Errorf("tf: %w", err)
	}
	l.files[name] = src
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("tf: %w", diagErr(diags))
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, fmt.Errorf("tf: %s: not native HCL syntax", name)
	}
	return body, nil
}

// diagErr turns diagnostics into one error whose text starts with the
// file:line of the first error.
func diagErr(diags hcl.Diagnostics) error {
	var msgs []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		s := d.Summary
		if d.Detail != "" {
			s += ": " + d.Detail
		}
		if d.Subject != nil {
			s = fmt.Sprintf("%s:%d: %s", d.Subject.Filename, d.Subject.Start.Line, s)
		}
		msgs = append(msgs, s)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func (l *loader) module(dir string, depth int) (*module, error) {
	if l.loading[dir] {
		return nil, fmt.Errorf("tf: %s: module calls itself (through its own source or a chain of modules)", dir)
	}
	if m, ok := l.mods[dir]; ok {
		return m, nil
	}
	if depth > maxModuleDepth {
		return nil, fmt.Errorf("tf: %s: modules nested deeper than %d (a cycle?)", dir, maxModuleDepth)
	}
	ents, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("tf: %w", err)
	}
	m := &module{dir: dir, variables: map[string]*variable{}}
	l.loading[dir] = true
	defer delete(l.loading, dir)
	l.mods[dir] = m
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		name := path.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tf.json") {
			l.notes = append(l.notes, Note{Pos: Pos{File: name}, Msg: "JSON-syntax Terraform files are not read"})
			continue
		}
		if !strings.HasSuffix(e.Name(), ".tf") {
			continue
		}
		body, err := l.parse(name)
		if err != nil {
			return nil, err
		}
		if err := l.collect(m, body, depth); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func rangePos(r hcl.Range) Pos { return Pos{File: r.Filename, Line: r.Start.Line} }

func (l *loader) collect(m *module, body *hclsyntax.Body, depth int) error {
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			if len(b.Labels) != 1 {
				return fmt.Errorf("tf: %s: variable block needs one label", rangePos(b.DefRange()))
			}
			v := &variable{name: b.Labels[0], pos: rangePos(b.DefRange())}
			if a, ok := b.Body.Attributes["default"]; ok {
				v.def = a.Expr
			}
			m.variables[v.name] = v
		case "locals":
			attrs := make([]*hclsyntax.Attribute, 0, len(b.Body.Attributes))
			for _, a := range b.Body.Attributes {
				attrs = append(attrs, a)
			}
			sort.Slice(attrs, func(i, j int) bool { return attrs[i].Name < attrs[j].Name })
			m.locals = append(m.locals, attrs...)
		case "resource":
			if len(b.Labels) != 2 {
				return fmt.Errorf("tf: %s: resource block needs two labels", rangePos(b.DefRange()))
			}
			m.resources = append(m.resources, &resBlock{typ: b.Labels[0], name: b.Labels[1], block: b,
				pos: rangePos(b.DefRange()), end: b.Range().End.Line})
		case "module":
			if len(b.Labels) != 1 {
				return fmt.Errorf("tf: %s: module block needs one label", rangePos(b.DefRange()))
			}
			c := &callBlock{name: b.Labels[0], block: b, pos: rangePos(b.DefRange())}
			if a, ok := b.Body.Attributes["source"]; ok {
				if v, d := a.Expr.Value(nil); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
					c.source = v.AsString()
				}
			}
			if strings.HasPrefix(c.source, "./") || strings.HasPrefix(c.source, "../") {
				sub, err := l.module(path.Join(m.dir, c.source), depth+1)
				if err != nil {
					return err
				}
				c.mod = sub
			} else {
				l.notes = append(l.notes, Note{Pos: c.pos, Address: "module." + c.name,
					Msg: fmt.Sprintf("module source %q is not a local directory and is not read", c.source)})
			}
			m.calls = append(m.calls, c)
		case "output":
			if len(b.Labels) == 1 {
				if a, ok := b.Body.Attributes["value"]; ok {
					m.outputs = append(m.outputs, a)
					m.outNames = append(m.outNames, b.Labels[0])
				}
			}
		}
	}
	return nil
}

// tfvars reads terraform.tfvars, *.auto.tfvars (in name order) and extra,
// later files overriding earlier ones.
func (l *loader) tfvars(dir string, extra []string) (map[string]cty.Value, error) {
	var names []string
	ents, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("tf: %w", err)
	}
	if _, err := fs.Stat(l.fsys, path.Join(dir, "terraform.tfvars")); err == nil {
		names = append(names, path.Join(dir, "terraform.tfvars"))
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".auto.tfvars") {
			names = append(names, path.Join(dir, e.Name()))
		}
	}
	names = append(names, extra...)
	vars := map[string]cty.Value{}
	for _, name := range names {
		body, err := l.parse(name)
		if err != nil {
			return nil, err
		}
		if len(body.Blocks) > 0 {
			return nil, fmt.Errorf("tf: %s: a variables file holds only attributes", rangePos(body.Blocks[0].DefRange()))
		}
		for k, a := range body.Attributes {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				return nil, fmt.Errorf("tf: %w", diagErr(diags))
			}
			vars[k] = v
		}
	}
	return vars, nil
}
