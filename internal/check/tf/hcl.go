package tf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
)

// Options tune LoadDir.
type Options struct {
	// VarFiles are extra .tfvars files, applied after terraform.tfvars and
	// *.auto.tfvars, in order: paths in VarFS, or in the fs.FS of the
	// configuration when VarFS is nil.
	VarFiles []string
	// VarFS holds VarFiles when they are named by whoever runs the check
	// rather than by the configuration, which reads only its own fs.FS.
	VarFS fs.FS
	// Unread, when set, reports whether attribute (or nested block) attr
	// of a resource of type typ is one whose value can change no finding:
	// what cannot be evaluated there is not noted.
	Unread func(typ, attr string) bool
}

// maxModuleDepth bounds module nesting (and so module cycles).
const maxModuleDepth = 16

// maxModules bounds the module calls read in all: each is read apart, so
// ten calls to a module that makes ten calls, sixteen deep, would be read
// 10^16 times.
const maxModules = 10000

// maxFileSize bounds one configuration file; Terraform files of real
// projects are far smaller.
const maxFileSize = 16 << 20

// body is a block's content in either syntax. Native HCL keeps attributes
// and nested blocks apart; in JSON, where only a provider schema could tell
// them apart, nested blocks are attributes whose values are objects or
// lists of objects (the readers of resource values accept both), except
// for the meta-blocks (dynamic, lifecycle, …) Terraform itself defines.
type body struct {
	attrs  map[string]hcl.Expression
	blocks []*block
}

type block struct {
	typ    string
	labels []string
	body   *body
	def    hcl.Range
}

// module is one parsed Terraform module directory.
type module struct {
	dir       string
	key       string // the module's key in modules.json: "" for the root, else e.g. "vpc.flow_log"
	variables map[string]*variable
	locals    []local
	resources []*resBlock
	datas     []*resBlock // data blocks
	// ephemerals are the ephemeral resources (type → names): their values
	// exist only while Terraform runs, never known here.
	ephemerals map[string][]string
	// imports are the root module's import blocks: the ID of an object
	// that exists already, by the address of the resource it becomes.
	imports []importBlock
	calls   []*callBlock
	outputs []local
	// providers are the provider configurations the module writes.
	providers []providerBlock
	defined   map[string]Pos // where each variable, local, output, module call, resource and data block is
}

// importBlock is an import block: to, the address of a resource (with
// its instance key), and id, the expression of the existing object's ID.
type importBlock struct {
	to string
	id hcl.Expression
}

type local struct {
	name string
	expr hcl.Expression
}

type variable struct {
	name     string
	def      hcl.Expression // nil when the variable has no default
	ty       cty.Type       // cty.NilType when no type is declared
	defaults *typeexpr.Defaults
	// notNull: nullable = false, so a null argument takes the default.
	notNull bool
	pos     Pos
}

type resBlock struct {
	typ, name string
	body      *body
	pos       Pos
	end       int
}

type callBlock struct {
	name   string
	source string
	body   *body
	pos    Pos
	mod    *module // nil when the module's files are not available
}

// LoadDir reads the root module in dir of fsys, with terraform.tfvars,
// *.auto.tfvars, opts.VarFiles and every module it calls: local sources
// resolved against the calling module's directory, as Terraform does, and
// registry or git sources from .terraform/modules/modules.json when
// terraform init has run (a Note otherwise). Both .tf and .tf.json files
// are read. A syntax error fails the whole load with an error naming file
// and line.
func LoadDir(fsys fs.FS, dir string, opts Options) (*Project, error) {
	l := &loader{fsys: fsys, root: dir, files: map[string][]byte{}, mods: map[string]*module{}, loading: map[string]bool{}, varFS: opts.VarFS, work: newBudget()}
	if err := l.readManifest(); err != nil {
		return nil, err
	}
	root, err := l.module(dir, "", 0)
	if err != nil {
		return nil, err
	}
	vars, err := l.tfvars(dir, opts.VarFiles)
	if err != nil {
		return nil, err
	}
	if err := l.lockedProviders(dir); err != nil {
		return nil, err
	}
	if !l.terraformBefore("0.15.0") {
		l.notes = append(l.notes, l.legacyTypes...)
	}
	p := &Project{Files: l.files, Providers: map[string]Provider{}, Configs: map[string]string{}}
	for n, pv := range l.providers {
		p.Providers[n] = *pv
	}
	ev := newEvaluator(root, vars, p, l)
	ev.unread = opts.Unread
	ev.run()
	p.Notes = append(p.Notes, l.notes...)
	p.sort()
	return p, nil
}

type loader struct {
	fsys  fs.FS
	root  string
	files map[string][]byte
	mods  map[string]*module // by directory and key
	// loading holds the modules being read, to refuse cycles.
	loading map[string]bool
	notes   []Note
	// manifest maps module keys to directories (relative to fsys) from
	// .terraform/modules/modules.json; nil when terraform init has not run.
	manifest map[string]string
	parsed   map[string]hcl.Body // by file name
	// varFS and varFiles: Options.VarFS and the files read from it.
	varFS    fs.FS
	varFiles map[string]bool
	// work is what is left of maxWork for evaluating what was read.
	work *budget
	// providers holds what the configuration says of each provider's
	// version (Project.Providers).
	providers map[string]*Provider
	// terraform holds the required_version constraints of every module:
	// the Terraform that runs the configuration meets them all.
	terraform []string
	// legacyTypes are the rejections of type constraints in quotes that
	// Terraform before 0.15 takes (legacyType).
	legacyTypes []Note
}

// read returns the text of a regular file of at most maxFileSize bytes
// (a device, a pipe or a file of /proc, whose size says nothing, is
// refused or cut short at the bound). A name outside the fs.FS (.., an
// absolute path) is refused.
func (l *loader) read(name string) ([]byte, error) {
	fsys := l.fsys
	if l.varFiles[name] {
		fsys = l.varFS
	}
	if !fs.ValidPath(name) {
		return nil, fmt.Errorf("tf: %s: outside the directory tree checked", name)
	}
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("tf: %s: %w", name, pathErr(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("tf: %s: not a regular file", name)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("tf: %s: %w", name, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("tf: %s: %w", name, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("tf: %s: more than the %d bytes a configuration file may have", name, maxFileSize)
	}
	return b, nil
}

// pathErr returns what went wrong in err, without the operation and path
// an fs.PathError adds (the system call's name, such as statat): the
// caller names the file.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parse reads a .tf, .tf.json or .tfvars(.json) file.
func (l *loader) parse(name string) (hcl.Body, error) {
	// A module called several times (by several calls or count/for_each
	// keys) is parsed once: parsed bodies are read-only.
	if b, ok := l.parsed[name]; ok {
		return b, nil
	}
	src, err := l.read(name)
	if err != nil {
		return nil, err
	}
	l.files[name] = src
	if err := checkNesting(src, name, strings.HasSuffix(name, ".json"), false); err != nil {
		return nil, err
	}
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(name, ".json") {
		f, diags = hcljson.Parse(src, name)
	} else {
		f, diags = hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("tf: %w", diagErr(diags))
	}
	if b, ok := f.Body.(*hclsyntax.Body); ok {
		hclsyntax.VisitAll(b, resourceAlias)
		meterSyntax(b)
	}
	if l.parsed == nil {
		l.parsed = map[string]hcl.Body{}
	}
	l.parsed[name] = f.Body
	return f.Body, nil
}

// resourceAlias rewrites resource.TYPE.NAME…, Terraform's explicit form
// of a reference to a managed resource, into TYPE.NAME…, the form the
// rest of the package reads.
func resourceAlias(n hclsyntax.Node) hcl.Diagnostics {
	e, ok := n.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(e.Traversal) < 3 || e.Traversal.RootName() != "resource" {
		return nil
	}
	typ, ok := e.Traversal[1].(hcl.TraverseAttr)
	if !ok {
		return nil
	}
	e.Traversal = append(hcl.Traversal{hcl.TraverseRoot{Name: typ.Name, SrcRange: typ.SrcRange}}, e.Traversal[2:]...)
	return nil
}

// SourceError is code the reader cannot parse: each error at its file
// and line (File is named as the tree read names it; "" when there is
// none).
type SourceError []SourcePos

// SourcePos is one error of a SourceError.
type SourcePos struct {
	File string
	Line int
	Msg  string
}

func (e SourceError) Error() string {
	msgs := make([]string, len(e))
	for i, p := range e {
		msgs[i] = p.Msg
		if p.File != "" {
			msgs[i] = fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

// diagErr turns diagnostics into one error whose text starts with the
// file:line of the first error; the same error of one line is said once.
func diagErr(diags hcl.Diagnostics) error {
	var out SourceError
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		p := SourcePos{Msg: d.Summary}
		if d.Detail != "" {
			p.Msg += ": " + d.Detail
		}
		if d.Subject != nil {
			p.File, p.Line = d.Subject.Filename, d.Subject.Start.Line
		}
		if !slices.Contains(out, p) { // one error of a line, said once
			out = append(out, p)
		}
	}
	return out
}

// readManifest reads .terraform/modules/modules.json of the root module.
func (l *loader) readManifest() error {
	name := path.Join(l.root, ".terraform", "modules", "modules.json")
	src, err := l.read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var mf struct {
		Modules []struct {
			Key, Source, Dir string
		}
	}
	if err := json.Unmarshal(src, &mf); err != nil {
		return fmt.Errorf("tf: %s: %w", name, err)
	}
	l.manifest = map[string]string{}
	for _, m := range mf.Modules {
		l.manifest[m.Key] = path.Join(l.root, strings.ReplaceAll(m.Dir, `\`, "/"))
	}
	return nil
}

// badType says why Terraform rejects a variable's type expression t:
// quoted, as Terraform 0.11 wrote it, or no type constraint at all. The
// variable is then read as of any type.
func badType(t hcl.Expression, d hcl.Diagnostics) string {
	if _, native := t.(*hclsyntax.TemplateExpr); !native {
		return fmt.Sprintf("type is not a type constraint Terraform knows (%s): Terraform rejects it, so the plan fails; the variable is read as of any type", diagErr(d))
	}
	if q, diags := t.Value(nil); !diags.HasErrors() && q.Type() == cty.String && q.IsKnown() && !q.IsNull() {
		name := q.AsString()
		want := name
		if name == "list" || name == "map" || name == "set" {
			want += "(string)"
		}
		return fmt.Sprintf("type = %q is a type constraint in quotes, as Terraform 0.11 wrote it: Terraform rejects it (Invalid quoted type constraints), so the plan fails (write %s, without quotes); the variable is read as of any type", name, want)
	}
	return fmt.Sprintf("type is not a type constraint Terraform knows (%s): Terraform rejects it, so the plan fails; the variable is read as of any type", diagErr(d))
}

// legacyType reports whether t is a type constraint in quotes that
// Terraform from 0.12 to 0.14 takes, with a warning, as the type it names:
// "string", "list" or "map".
func legacyType(t hcl.Expression) bool {
	if _, native := t.(*hclsyntax.TemplateExpr); !native {
		return false
	}
	q, diags := t.Value(nil)
	if diags.HasErrors() || q.Type() != cty.String || !q.IsKnown() || q.IsNull() {
		return false
	}
	switch q.AsString() {
	case "string", "list", "map":
		return true
	}
	return false
}

// isAddressSource reports whether s, a module source that is not a local
// path, is one Terraform can fetch: a registry address (namespace/name/
// system, with a host first or not), a remote one it detects (a forced
// getter "git::…", a URL, GitHub, Bitbucket, an S3 or GCS bucket, an SSH
// Git address) or an absolute path. Anything else (a relative path without
// ./, "modules/vpc") Terraform rejects.
func isAddressSource(s string) bool {
	if strings.Contains(s, "::") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "git@") {
		return true
	}
	for _, p := range []string{"http://", "https://", "github.com/", "bitbucket.org/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	if strings.Contains(s, "amazonaws.com/") || strings.Contains(s, "googleapis.com/") {
		return true
	}
	addr, _, _ := strings.Cut(s, "//")
	addr, _, _ = strings.Cut(addr, "?")
	n := len(strings.Split(addr, "/"))
	return n == 3 || n == 4
}

func isLocalSource(s string) bool {
	for _, p := range []string{"./", "../", `.\`, `..\`} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return s == "." || s == ".."
}

func (l *loader) module(dir, key string, depth int) (*module, error) {
	id := dir + "\x00" + key
	if l.loading[dir] {
		return nil, fmt.Errorf("tf: %s: module calls itself (through its own source or a chain of modules)", dir)
	}
	if m, ok := l.mods[id]; ok {
		return m, nil
	}
	if depth > maxModuleDepth {
		return nil, fmt.Errorf("tf: %s: modules nested deeper than %d (a cycle?)", dir, maxModuleDepth)
	}
	if len(l.mods) >= maxModules {
		return nil, fmt.Errorf("tf: %s: more than %d module calls in all", dir, maxModules)
	}
	ents, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("tf: %w", err)
	}
	m := &module{dir: dir, key: key, variables: map[string]*variable{}, defined: map[string]Pos{}}
	l.loading[dir] = true
	defer delete(l.loading, dir)
	l.mods[id] = m
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".tf") || strings.HasSuffix(n, ".tf.json")) {
			continue
		}
		name := path.Join(dir, n)
		base := strings.TrimSuffix(strings.TrimSuffix(n, ".json"), ".tf")
		if base == "override" || strings.HasSuffix(base, "_override") {
			l.notes = append(l.notes, Note{Pos: Pos{File: name}, Msg: "override files are not merged into the blocks they override; the file is not read"})
			continue
		}
		b, err := l.parse(name)
		if err != nil {
			return nil, err
		}
		if err := l.collect(m, b, depth); err != nil {
			return nil, err
		}
	}
	l.checkRefs(m)
	return m, nil
}

func rangePos(r hcl.Range) Pos { return Pos{File: r.Filename, Line: r.Start.Line} }

var topSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "variable", LabelNames: []string{"name"}},
	{Type: "locals"},
	{Type: "output", LabelNames: []string{"name"}},
	{Type: "module", LabelNames: []string{"name"}},
	{Type: "resource", LabelNames: []string{"type", "name"}},
	{Type: "data", LabelNames: []string{"type", "name"}},
	{Type: "provider", LabelNames: []string{"name"}},
	{Type: "ephemeral", LabelNames: []string{"type", "name"}},
	{Type: "import"},
	{Type: "terraform"},
}}

// topBlocks are the block types Terraform takes at the top level of a
// file; those topSchema does not read change no value read here.
var topBlocks = map[string]bool{
	"terraform": true, "variable": true, "locals": true, "output": true, "module": true, "resource": true,
	"data": true, "provider": true, "ephemeral": true, "import": true, "moved": true, "removed": true, "check": true,
}

// unexpectedTop notes each block of a type Terraform does not take at the
// top level of a file, and each argument there: Terraform rejects them
// (a rule written outside its resource is no rule).
func (l *loader) unexpectedTop(m *module, file hcl.Body) {
	sb, ok := file.(*hclsyntax.Body)
	if !ok {
		return
	}
	for _, b := range sb.Blocks {
		if !topBlocks[b.Type] {
			l.notes = append(l.notes, Note{Pos: rangePos(b.TypeRange), Address: m.qualify(b.Type), Rejected: true, kind: kindError,
				Msg: fmt.Sprintf("block %q at the top level of the file, outside any resource: Terraform rejects it (Unsupported block type), so the plan fails; it is not read", b.Type)})
		}
	}
	attrs := make([]*hclsyntax.Attribute, 0, len(sb.Attributes))
	for _, a := range sb.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Name < attrs[j].Name })
	for _, a := range attrs {
		l.notes = append(l.notes, Note{Pos: rangePos(a.NameRange), Address: m.qualify(a.Name), Rejected: true, kind: kindError,
			Msg: fmt.Sprintf("argument %q at the top level of the file, outside any block: Terraform rejects it (Unsupported argument), so the plan fails; it is not read", a.Name)})
	}
}

// metaBlocks are the nested block types Terraform itself defines.
var metaBlocks = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "dynamic", LabelNames: []string{"type"}}, {Type: "lifecycle"}, {Type: "connection"},
	{Type: "provisioner", LabelNames: []string{"type"}}, {Type: "precondition"}, {Type: "postcondition"},
	{Type: "validation"},
}}

var dynamicSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "for_each", Required: true}, {Name: "iterator"}, {Name: "labels"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "content"}},
}

// convBody turns a block body of either syntax into a body.
func convBody(b hcl.Body) (*body, hcl.Diagnostics) {
	if sb, ok := b.(*hclsyntax.Body); ok {
		return syntaxBody(sb), nil
	}
	content, rest, diags := b.PartialContent(metaBlocks)
	attrs, d := rest.JustAttributes()
	diags = append(diags, d...)
	out := &body{attrs: make(map[string]hcl.Expression, len(attrs))}
	for n, a := range attrs {
		out.attrs[n] = wrapJSON(a.Expr)
	}
	for _, blk := range content.Blocks {
		if blk.Type != "dynamic" {
			continue
		}
		dc, d := blk.Body.Content(dynamicSchema)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		db := &body{attrs: map[string]hcl.Expression{}}
		for n, a := range dc.Attributes {
			db.attrs[n] = wrapJSON(a.Expr)
		}
		for _, c := range dc.Blocks {
			cb, d := convBody(c.Body)
			diags = append(diags, d...)
			db.blocks = append(db.blocks, &block{typ: "content", body: cb, def: c.DefRange})
		}
		out.blocks = append(out.blocks, &block{typ: "dynamic", labels: blk.Labels, body: db, def: blk.DefRange})
	}
	return out, diags
}

func syntaxBody(sb *hclsyntax.Body) *body {
	out := &body{attrs: make(map[string]hcl.Expression, len(sb.Attributes))}
	for n, a := range sb.Attributes {
		out.attrs[n] = a.Expr
	}
	for _, b := range sb.Blocks {
		out.blocks = append(out.blocks, &block{typ: b.Type, labels: b.Labels, body: syntaxBody(b.Body), def: b.DefRange()})
	}
	return out
}

func blockEnd(b *hcl.Block) int {
	if sb, ok := b.Body.(*hclsyntax.Body); ok {
		return sb.SrcRange.End.Line
	}
	return b.DefRange.End.Line
}

func (l *loader) collect(m *module, file hcl.Body, depth int) error {
	content, _, diags := file.PartialContent(topSchema)
	if diags.HasErrors() {
		return fmt.Errorf("tf: %w", diagErr(diags))
	}
	l.unexpectedTop(m, file)
	for _, b := range content.Blocks {
		bd, diags := convBody(b.Body)
		if diags.HasErrors() {
			return fmt.Errorf("tf: %w", diagErr(diags))
		}
		pos := rangePos(b.DefRange)
		switch b.Type {
		case "terraform":
			l.requiredProviders(bd)
			l.requiredVersion(bd)
		case "variable":
			l.define(m, "var."+b.Labels[0], "variable", pos)
			v := &variable{name: b.Labels[0], pos: pos, def: bd.attrs["default"]}
			if t := bd.attrs["type"]; t != nil {
				switch ty, defs, d := typeexpr.TypeConstraintWithDefaults(t); {
				case !d.HasErrors():
					v.ty, v.defaults = ty, defs
				case hcl.ExprAsKeyword(t) == "list" || hcl.ExprAsKeyword(t) == "map":
					// Terraform reads a bare list or map as list(any) or
					// map(any), as 0.11 did: read as of any type.
				default:
					n := Note{Pos: rangePos(t.Range()), Address: m.qualify("var." + v.name), Rejected: true, kind: kindError, Msg: badType(t, d)}
					if legacyType(t) {
						// Refused from Terraform 0.15 on, which
						// required_version may rule out: said once
						// every module is read.
						l.legacyTypes = append(l.legacyTypes, n)
					} else {
						l.notes = append(l.notes, n)
					}
				}
			}
			if e := bd.attrs["nullable"]; e != nil {
				if nv, d := e.Value(nil); !d.HasErrors() && nv.Type() == cty.Bool && nv.IsKnown() && !nv.IsNull() {
					v.notNull = nv.False()
				}
			}
			m.variables[v.name] = v
		case "locals":
			ls := make([]local, 0, len(bd.attrs))
			for n, e := range bd.attrs {
				l.define(m, "local."+n, "local value", rangePos(e.Range()))
				ls = append(ls, local{n, e})
			}
			sort.Slice(ls, func(i, j int) bool { return ls[i].name < ls[j].name })
			m.locals = append(m.locals, ls...)
		case "resource":
			l.define(m, b.Labels[0]+"."+b.Labels[1], "resource", pos)
			if _, native := b.Body.(*hclsyntax.Body); native {
				l.blockOnly(m, b.Labels[0], b.Labels[1], bd)
			}
			m.resources = append(m.resources, &resBlock{typ: b.Labels[0], name: b.Labels[1], body: bd, pos: pos, end: blockEnd(b)})
		case "data":
			l.define(m, "data."+b.Labels[0]+"."+b.Labels[1], "data source", pos)
			m.datas = append(m.datas, &resBlock{typ: b.Labels[0], name: b.Labels[1], body: bd, pos: pos, end: blockEnd(b)})
		case "output":
			l.define(m, "output."+b.Labels[0], "output", pos)
			if e := bd.attrs["value"]; e != nil {
				m.outputs = append(m.outputs, local{b.Labels[0], e})
			}
		case "import":
			if m.key != "" {
				l.notes = append(l.notes, Note{Pos: pos, Address: m.qualify("import"), Rejected: true, kind: kindError,
					Msg: "an import block in a module: Terraform takes import blocks in the root module alone, so the plan fails"})
				continue
			}
			if to, ok := importTarget(bd.attrs["to"]); ok && bd.attrs["id"] != nil && bd.attrs["for_each"] == nil {
				m.imports = append(m.imports, importBlock{to: to, id: bd.attrs["id"]})
			}
		case "ephemeral":
			l.define(m, "ephemeral."+b.Labels[0]+"."+b.Labels[1], "ephemeral resource", pos)
			if m.ephemerals == nil {
				m.ephemerals = map[string][]string{}
			}
			m.ephemerals[b.Labels[0]] = append(m.ephemerals[b.Labels[0]], b.Labels[1])
		case "provider":
			// One configuration of a provider per alias (none for the
			// default); an alias Terraform refuses (not a literal
			// name) is left to it.
			addr := "provider." + b.Labels[0]
			if e := bd.attrs["alias"]; e != nil {
				v, d := e.Value(nil)
				if d.HasErrors() || v.Type() != cty.String || !v.IsKnown() || v.IsNull() {
					continue
				}
				addr += "." + v.AsString()
			}
			l.define(m, addr, "provider configuration", pos)
			l.providerVersion(b.Labels[0], bd)
			m.providers = append(m.providers, providerBlock{name: strings.TrimPrefix(addr, "provider."), body: bd})
		case "module":
			l.define(m, "module."+b.Labels[0], "module call", pos)
			c := &callBlock{name: b.Labels[0], body: bd, pos: pos}
			if e := bd.attrs["source"]; e != nil {
				if v, d := e.Value(nil); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
					c.source = v.AsString()
				}
			}
			if err := l.resolve(m, c, depth); err != nil {
				return err
			}
			m.calls = append(m.calls, c)
		}
	}
	return nil
}

// nestedBlocks are, by resource type, nested blocks the provider takes as
// blocks alone, whose content says who may reach the resource: written
// as an argument (network_acls = {…}), Terraform rejects them (Unsupported
// argument). Only those a provider marks as attributes-as-blocks (an AWS
// security group's ingress, an NSG's security_rule) may be written either
// way, and are not listed.
var nestedBlocks = map[string][]string{
	"azurerm_key_vault":          {"network_acls"},
	"azurerm_storage_account":    {"network_rules"},
	"azurerm_kubernetes_cluster": {"api_server_access_profile", "network_profile"},
	"aws_eks_cluster":            {"vpc_config"},
	"aws_lambda_function":        {"vpc_config"},
	"aws_opensearch_domain":      {"vpc_options"},
	"aws_elasticsearch_domain":   {"vpc_options"},
	"aws_lb":                     {"subnet_mapping"},
}

// arguments are names that are arguments (a string, a bool, a list or map
// of them) wherever a resource of a provider moat reads has them, at any
// depth, and never a nested block (but where argumentExceptions says): written as a block (tags { … }, as
// Terraform 0.11 took it), Terraform rejects them (Unsupported block
// type).
var arguments = map[string]bool{
	"tags": true, "tags_all": true,
	"cidr_blocks": true, "ipv6_cidr_blocks": true, "prefix_list_ids": true, "cidr_ipv4": true, "cidr_ipv6": true,
	"security_groups": true, "vpc_security_group_ids": true, "security_group_ids": true,
	"subnet_id": true, "subnet_ids": true, "subnets": true, "vpc_id": true,
	"publicly_accessible": true, "associate_public_ip_address": true, "internal": true,
	"from_port": true, "to_port": true, "protocol": true,
	"source_address_prefix": true, "source_address_prefixes": true,
	"destination_port_range": true, "destination_port_ranges": true,
}

// argumentExceptions are, for a resource type, the names among arguments
// that are nested blocks there: an Azure Firewall application rule's
// protocol { port, type }.
var argumentExceptions = map[string]map[string]bool{
	"azurerm_firewall_application_rule_collection": {"protocol": true},
}

// blockOnly rejects each nested block of a resource of type typ that its
// native syntax writes as an argument, and each argument written as a
// block, and drops them: read as not set, what they would have closed is
// open, as Terraform never applies them.
func (l *loader) blockOnly(m *module, typ, name string, bd *body) {
	addr := m.qualify(typ + "." + name)
	for _, n := range nestedBlocks[typ] {
		e, ok := bd.attrs[n]
		if !ok {
			continue
		}
		l.notes = append(l.notes, Note{Pos: rangePos(e.Range()), Address: addr, Rejected: true, kind: kindError,
			Msg: fmt.Sprintf("%s is a nested block of %s, written here as an argument (%s = …): Terraform rejects it (Unsupported argument), so the plan fails; it is read as not set", n, typ, n)})
		delete(bd.attrs, n)
	}
	l.argumentBlocks(addr, typ, bd)
	if typ == "aws_security_group" || typ == "aws_default_security_group" {
		l.ruleObjects(addr, bd)
	}
}

// sgRuleFields are the fields of a security group's inline rule: written
// as an attribute (ingress = [{…}]), each object must give them all, null
// where unused.
var sgRuleFields = []string{"cidr_blocks", "description", "from_port", "ipv6_cidr_blocks", "prefix_list_ids",
	"protocol", "security_groups", "self", "to_port"}

// ruleObjects rejects each object written in a security group's ingress
// or egress attribute that leaves a field out: Terraform refuses it
// (Inappropriate value for attribute). The rule is read as written.
func (l *loader) ruleObjects(addr string, bd *body) {
	for _, k := range []string{"ingress", "egress"} {
		tup, ok := bd.attrs[k].(*hclsyntax.TupleConsExpr)
		if !ok {
			continue
		}
		for i, e := range tup.Exprs {
			obj, ok := e.(*hclsyntax.ObjectConsExpr)
			if !ok {
				continue
			}
			have := map[string]bool{}
			for _, it := range obj.Items {
				if v, d := it.KeyExpr.Value(nil); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
					have[v.AsString()] = true
				} else if kw := hcl.ExprAsKeyword(it.KeyExpr); kw != "" {
					have[kw] = true
				} else {
					have = nil // a key not known statically may be any field
					break
				}
			}
			if have == nil {
				continue
			}
			var missing []string
			for _, f := range sgRuleFields {
				if !have[f] {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				l.notes = append(l.notes, Note{Pos: rangePos(obj.Range()), Address: addr, Rejected: true, kind: kindError,
					Msg: fmt.Sprintf("%s[%d] is written as an attribute, which takes every field of the rule, null where unused, and leaves out %s: Terraform rejects it (Inappropriate value for attribute %q), so the plan fails; the rule is read as written", k, i, strings.Join(missing, ", "), k)})
			}
		}
	}
}

// argumentBlocks rejects and drops the blocks of bd, at any depth, that
// are arguments.
func (l *loader) argumentBlocks(addr, typ string, bd *body) {
	kept := bd.blocks[:0]
	for _, b := range bd.blocks {
		n := b.typ
		if n == "dynamic" && len(b.labels) == 1 {
			n = b.labels[0]
		}
		if arguments[n] && !argumentExceptions[typ][n] {
			l.notes = append(l.notes, Note{Pos: rangePos(b.def), Address: addr, Rejected: true, kind: kindError,
				Msg: fmt.Sprintf("%s is an argument of %s, written here as a block (%s { … }): Terraform rejects it (Unsupported block type), so the plan fails; it is read as not set", n, typ, n)})
			continue
		}
		l.argumentBlocks(addr, typ, b.body)
		kept = append(kept, b)
	}
	bd.blocks = kept
}

// qualify prefixes addr, an address within m, with the module path that
// reads m ("module.vpc.module.flow_log."); the root's addresses are as is.
func (m *module) qualify(addr string) string {
	if m.key == "" {
		return addr
	}
	return "module." + strings.ReplaceAll(m.key, ".", ".module.") + "." + addr
}

// define records where the module defines addr (what names its kind); a
// second definition is one Terraform refuses (Duplicate ... definition).
func (l *loader) define(m *module, addr, what string, pos Pos) {
	if first, dup := m.defined[addr]; dup {
		l.notes = append(l.notes, Note{Pos: pos, Address: m.qualify(addr), Rejected: true, kind: kindError,
			Msg: fmt.Sprintf("duplicate %s definition (first at %s:%d): Terraform rejects the configuration, so the plan fails", what, path.Base(first.File), first.Line)})
		return
	}
	m.defined[addr] = pos
}

// resolve finds the directory of a module call and reads it.
func (l *loader) resolve(m *module, c *callBlock, depth int) error {
	key := c.name
	if m.key != "" {
		key = m.key + "." + c.name
	}
	var dir string
	switch {
	case c.source == "":
		return fmt.Errorf("tf: %s: module %q has no literal source", c.pos, c.name)
	case isLocalSource(c.source):
		dir = path.Join(m.dir, strings.ReplaceAll(c.source, `\`, "/"))
		if st, err := fs.Stat(l.fsys, dir); err != nil || !st.IsDir() {
			return fmt.Errorf("tf: %s: module %q: source %q is not a readable directory", c.pos, c.name, c.source)
		}
	case !isAddressSource(c.source):
		l.notes = append(l.notes, Note{Pos: c.pos, Address: m.qualify("module." + c.name), Rejected: true, kind: kindError,
			Msg: fmt.Sprintf("module source %q is neither a local path (one starts ./ or ../) nor a registry or remote address: Terraform rejects it, so the plan fails (write %q for the directory); the module's resources are not read", c.source, "./"+c.source)})
		return nil
	case l.manifest == nil:
		l.notes = append(l.notes, Note{Pos: c.pos, Address: "module." + c.name,
			Msg: fmt.Sprintf("module source %q is not local and terraform init has not run here (no .terraform/modules/modules.json): the module's resources are not read", c.source)})
		return nil
	default:
		d, ok := l.manifest[key]
		if !ok {
			l.notes = append(l.notes, Note{Pos: c.pos, Address: "module." + c.name,
				Msg: fmt.Sprintf("module %q (source %q) is not in .terraform/modules/modules.json (run terraform init again): the module's resources are not read", key, c.source)})
			return nil
		}
		dir = d
	}
	sub, err := l.module(dir, key, depth+1)
	if err != nil {
		return err
	}
	c.mod = sub
	return nil
}

// tfvars reads terraform.tfvars(.json), *.auto.tfvars(.json) (in name
// order) and extra, later files overriding earlier ones.
func (l *loader) tfvars(dir string, extra []string) (map[string]cty.Value, error) {
	var names []string
	ents, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("tf: %w", err)
	}
	for _, n := range []string{"terraform.tfvars", "terraform.tfvars.json"} {
		if _, err := fs.Stat(l.fsys, path.Join(dir, n)); err == nil {
			names = append(names, path.Join(dir, n))
		}
	}
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".auto.tfvars") || strings.HasSuffix(e.Name(), ".auto.tfvars.json")) {
			names = append(names, path.Join(dir, e.Name()))
		}
	}
	if l.varFS != nil {
		l.varFiles = map[string]bool{}
		for _, n := range extra {
			l.varFiles[n] = true
		}
	}
	names = append(names, extra...)
	vars := map[string]cty.Value{}
	for _, name := range names {
		b, err := l.parse(name)
		if err != nil {
			return nil, err
		}
		attrs, diags := b.JustAttributes()
		if diags.HasErrors() {
			return nil, fmt.Errorf("tf: %s: a variables file holds only attributes: %w", name, diagErr(diags))
		}
		// As Terraform reads them, the strings of a JSON variables file
		// are not templates.
		ctx := l.work.ctx()
		if strings.HasSuffix(name, ".json") {
			ctx = nil
		}
		for k, a := range attrs {
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() {
				return nil, fmt.Errorf("tf: %w", diagErr(diags))
			}
			vars[k] = v
		}
	}
	return vars, nil
}

// importTarget renders an import block's to, a resource's address with an
// instance key known statically (aws_instance.web, aws_instance.web[0],
// aws_instance.web["a"]), as Resource.Address writes it; ok is false for
// any other expression.
func importTarget(e hcl.Expression) (string, bool) {
	if e == nil {
		return "", false
	}
	t, d := hcl.AbsTraversalForExpr(e)
	if d.HasErrors() || len(t) < 2 || len(t) > 3 {
		return "", false
	}
	name, ok := t[1].(hcl.TraverseAttr)
	if !ok {
		return "", false
	}
	addr := t.RootName() + "." + name.Name
	if len(t) == 3 {
		ix, ok := t[2].(hcl.TraverseIndex)
		if !ok || !ix.Key.IsKnown() || ix.Key.IsNull() {
			return "", false
		}
		switch ix.Key.Type() {
		case cty.Number:
			n, _ := ix.Key.AsBigFloat().Int64()
			addr += fmt.Sprintf("[%d]", n)
		case cty.String:
			addr += fmt.Sprintf("[%q]", ix.Key.AsString())
		default:
			return "", false
		}
	}
	return addr, true
}
