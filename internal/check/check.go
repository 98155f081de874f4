// Package check proves from configuration alone what is reachable from
// where, and flags over-permissive configuration, for Terraform (AWS) and for
// moat's own configuration files.
//
// Terraform directories and plan JSON are read by package tf into resource
// values, turned into a network Model (VPCs, subnets, route tables,
// gateways, peering, security groups, ACLs and everything with an address),
// and every network rule asks the model's reachability engine for a path.
// Address ranges are compared as sets, never as strings. A finding carries
// its path, hop by hop, as evidence.
package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// Config says what to check.
type Config struct {
	// Paths are Terraform directories, plan JSON files (terraform show
	// -json) and moat YAML configs. A directory's *.yaml files that are moat
	// configs are checked too.
	Paths []string
	// VarFiles are extra .tfvars files for every Terraform directory.
	VarFiles []string
	// Root is the directory tree a Terraform directory's code may read
	// (the modules it calls, the files file and templatefile name); if
	// empty, the repository holding the directory (the nearest directory,
	// it or above it, with a .git), else the whole filesystem.
	Root string
	// Logger: if nil, nothing is logged.
	Logger *slog.Logger
}

// Report is what a run found.
type Report struct {
	Findings []Finding
}

// Max returns the highest severity among unsuppressed findings, and false
// when there is none.
func (r *Report) Max() (Severity, bool) {
	max, any := Info, false
	for _, f := range r.Findings {
		if f.Suppressed == "" && (!any || f.Severity > max) {
			max, any = f.Severity, true
		}
	}
	return max, any
}

// Run checks every path. A path that cannot be read or parsed fails the run
// with an error naming it; nothing is reported for a partial read.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Paths) == 0 {
		return nil, fmt.Errorf("check: no paths given")
	}
	rep := &Report{}
	for _, p := range cfg.Paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs, err := checkPath(p, cfg)
		if err != nil {
			return nil, err
		}
		log.Debug("checked", "path", p, "findings", len(fs))
		rep.Findings = append(rep.Findings, fs...)
	}
	sortFindings(rep.Findings)
	return rep, nil
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.RuleID != b.RuleID {
			return a.RuleID < b.RuleID
		}
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
}

func checkPath(p string, cfg Config) ([]Finding, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".json":
			proj, err := tf.ReadPlan(p, data)
			if err != nil {
				return nil, err
			}
			return CheckProject(proj), nil
		case ".yaml", ".yml":
			fs := newFindings()
			ok, err := moatFile(p, data, fs)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("check: %s: not a moat policy, server or gateway config (by its top-level keys)", p)
			}
			return suppress(fs.list, map[string][]byte{p: data}), nil
		}
		return nil, fmt.Errorf("check: %s: want a Terraform directory, a plan .json or a moat .yaml", p)
	}
	fs := newFindings()
	files := map[string][]byte{}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	hasTF := false
	for _, e := range ents {
		n := e.Name()
		switch {
		case e.IsDir():
		case strings.HasSuffix(n, ".tf") || strings.HasSuffix(n, ".tf.json"):
			hasTF = true
		case strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml"):
			name := filepath.Join(p, n)
			data, err := os.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("check: %w", err)
			}
			if _, err := moatFile(name, data, fs); err != nil {
				return nil, err
			}
			files[name] = data
		}
	}
	out := suppress(fs.list, files)
	if hasTF {
		proj, err := loadTF(p, cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, CheckProject(proj)...)
	}
	return out, nil
}

// loadTF reads the Terraform root module in dir. Modules are read wherever
// their sources point (source = "../modules/vpc" is common), as are the
// files file and templatefile name, but within the directory tree checked
// alone (cfg.Root, else treeRoot): the code may come from whoever opened a
// pull request, and what lies beside the checkout (the runner's files,
// /proc/self/environ) is not its to read into a finding. Var files are
// named by whoever runs the check and are read wherever they are. Names in
// findings stay relative to dir as the user gave it.
func loadTF(dir string, cfg Config) (*tf.Project, error) {
	varFiles := cfg.VarFiles
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	tree := treeRoot(abs)
	if cfg.Root != "" {
		if tree, err = filepath.Abs(cfg.Root); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}
	// The whole filesystem is read as Terraform reads it, links to
	// absolute paths included (an os.Root refuses those as leaving it).
	fsys := os.DirFS(tree)
	if filepath.Dir(tree) != tree {
		r, err := os.OpenRoot(tree)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		defer r.Close()
		fsys = r.FS()
	}
	rel := func(base, p string) (string, bool) {
		s, err := filepath.Rel(base, p)
		if err != nil || !filepath.IsLocal(s) && s != "." {
			return "", false
		}
		return filepath.ToSlash(s), true
	}
	root, ok := rel(tree, abs)
	if !ok {
		return nil, fmt.Errorf("check: %s is outside the root %s", dir, cfg.Root)
	}
	opts := tf.Options{}
	inside := true
	for _, v := range varFiles {
		a, err := filepath.Abs(v)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		if _, err := os.Stat(a); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("check: --var-file %s: %w", v, err)
		}
		n, ok := rel(tree, a)
		inside = inside && ok
		opts.VarFiles = append(opts.VarFiles, n)
	}
	if !inside {
		vol := filepath.VolumeName(abs)
		opts.VarFS = os.DirFS(vol + string(filepath.Separator))
		opts.VarFiles = opts.VarFiles[:0]
		for _, v := range varFiles {
			a, _ := filepath.Abs(v)
			opts.VarFiles = append(opts.VarFiles, filepath.ToSlash(strings.TrimPrefix(strings.TrimPrefix(a, vol), string(filepath.Separator))))
		}
	}
	opts.Unread = unread
	proj, err := tf.LoadDir(fsys, root, opts)
	if err != nil {
		// Files are named as the user would (the directory given, then
		// the file), not as under the tree read.
		var se tf.SourceError
		if errors.As(err, &se) {
			was := se.Error()
			named := append(tf.SourceError(nil), se...)
			for i := range named {
				if named[i].File != "" {
					named[i].File = rebased(root, dir, named[i].File)
				}
			}
			if prefix, ok := strings.CutSuffix(err.Error(), was); ok {
				return nil, fmt.Errorf("%s%w (in %s)", prefix, named, dir)
			}
		}
		return nil, fmt.Errorf("%w (in %s)", err, dir)
	}
	rebase(proj, root, dir)
	return proj, nil
}

// treeRoot is the directory tree a check of dir reads: the repository
// holding dir (the nearest directory, dir or above it, with a .git). Code
// outside any repository is not code a pull request brought, and is laid
// out as published modules are (an example's source = "../.."), so it
// reads from the whole filesystem, as Terraform would; --root confines it.
func treeRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return d
		}
		d = up
	}
}

// rebased is file f, named under the tree read, named relative to dir
// (root being dir's name under the tree), as the user would write it.
func rebased(root, dir, f string) string {
	r, err := filepath.Rel(filepath.FromSlash(root), filepath.FromSlash(f))
	if err != nil {
		return f
	}
	return filepath.ToSlash(filepath.Join(dir, r))
}

// rebase renames the project's files from names under the filesystem root
// to names relative to dir (root being dir's name under the filesystem
// root), as the user would write them.
func rebase(p *tf.Project, root, dir string) {
	j := func(f string) string { return rebased(root, dir, f) }
	for i := range p.Resources {
		p.Resources[i].Pos.File = j(p.Resources[i].Pos.File)
	}
	for i := range p.Notes {
		p.Notes[i].Pos.File = j(p.Notes[i].Pos.File)
	}
	files := map[string][]byte{}
	for k, v := range p.Files {
		files[j(k)] = v
	}
	p.Files = files
}

// CheckProject runs every Terraform rule over a project read by package tf.
func CheckProject(p *tf.Project) []Finding {
	m := BuildProject(p)
	fs := newFindings()
	m.awsRules(fs)
	m.publicIPRules(m.byType, fs)
	m.imdsRules(m.byType, fs)
	m.azurePaaS(m.byType, fs)
	m.publicServices(m.byType, fs)
	m.s3Public(m.byType, fs)
	m.transitRules(m.byType, fs)
	dataRules(m.Resources, fs)
	for _, n := range m.Rejected {
		fs.list = append(fs.list, Finding{RuleID: RuleRejected, Severity: fs.rules[RuleRejected].Severity, Address: n.Address,
			File: n.Pos.File, Line: n.Pos.Line, end: n.Pos.Line, Message: n.Msg})
	}
	for _, n := range append(append([]tf.Note(nil), p.Notes...), m.Notes...) {
		if n.Rejected {
			fs.list = append(fs.list, Finding{RuleID: RuleRejected, Severity: fs.rules[RuleRejected].Severity, Address: n.Address,
				File: n.Pos.File, Line: n.Pos.Line, end: n.Pos.Line, Message: n.Msg})
			continue
		}
		if n.Name && !m.nameMissed(n.Address) {
			// Only a name, and every name the project links by is
			// one the model knows: it changes no finding.
			continue
		}
		fs.list = append(fs.list, Finding{RuleID: RuleNotEvaluated, Severity: Info, Address: n.Address,
			File: n.Pos.File, Line: n.Pos.Line, end: n.Pos.Line, Message: n.Msg})
	}
	out := suppress(fs.list, p.Files)
	sortFindings(out)
	return mergeInstanceNotes(out)
}

// mergeInstanceNotes keeps one note (CHECK-001) of those that instances of
// one counted or for_each resource raise at the same place with the same
// text but for their own address, the first in order, and says how many
// more instances share it: nine rules of one block would make nine.
func mergeInstanceNotes(fs []Finding) []Finding {
	type key struct {
		file      string
		line      int
		base, msg string
		state     string
	}
	first := map[key]int{}
	more := map[int]int{}
	out := fs[:0:0]
	for _, f := range fs {
		base := unindexed(f.Address)
		if f.RuleID != RuleNotEvaluated || base == f.Address {
			out = append(out, f)
			continue
		}
		k := key{f.File, f.Line, base, strings.ReplaceAll(f.Message, f.Address, base), f.Suppressed}
		if i, ok := first[k]; ok {
			more[i]++
			continue
		}
		first[k] = len(out)
		out = append(out, f)
	}
	for i, n := range more {
		what := "other instance"
		if n > 1 {
			what += "s"
		}
		out[i].Message += fmt.Sprintf(" (and %d %s of %s)", n, what, unindexed(out[i].Address))
	}
	return out
}

// unindexed is addr without its instance keys ([0], ["a"]), as the block
// that makes the instances is named.
func unindexed(addr string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case depth > 0 && quoted && c == '\\':
			i++
		case depth > 0 && c == '"':
			quoted = !quoted
		case c == '[' && !quoted:
			depth++
		case c == ']' && !quoted && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
