package tf

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"math/big"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/customdecode"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions returns the Terraform functions the reader evaluates, with
// Terraform's semantics where they differ from go-cty's standard library
// (lookup with a null default, coalesce skipping empty strings, replace with
// a /regex/). Functions whose result only exists at apply time (timestamp,
// uuid, bcrypt) return an unknown value; a call to any other function is
// reported as a Note and its result is unknown. l reads file and
// templatefile arguments (nil: those results are unknown).
func functions(l *loader) map[string]function.Function {
	fns := map[string]function.Function{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"log": stdlib.LogFunc, "max": stdlib.MaxFunc, "min": stdlib.MinFunc,
		"parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc,
		"split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc, "substr": stdlib.SubstrFunc,
		"title": stdlib.TitleFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc, "trimspace": stdlib.TrimSpaceFunc, "upper": stdlib.UpperFunc,
		"chunklist": stdlib.ChunklistFunc, "coalescelist": stdlib.CoalesceListFunc,
		"compact": stdlib.CompactFunc, "concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc,
		"distinct": stdlib.DistinctFunc, "element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc,
		"index": stdlib.IndexFunc, "keys": stdlib.KeysFunc, "length": lengthFunc,
		"merge": stdlib.MergeFunc, "range": stdlib.RangeFunc,
		"reverse": stdlib.ReverseListFunc, "setintersection": stdlib.SetIntersectionFunc,
		"setproduct": stdlib.SetProductFunc, "setsubtract": stdlib.SetSubtractFunc,
		"setunion": stdlib.SetUnionFunc, "slice": stdlib.SliceFunc, "sort": stdlib.SortFunc,
		"values": stdlib.ValuesFunc, "zipmap": stdlib.ZipmapFunc, "formatdate": stdlib.FormatDateFunc,
		"timeadd":    stdlib.TimeAddFunc,
		"jsondecode": stdlib.JSONDecodeFunc, "jsonencode": jsonEncodeFunc, "csvdecode": stdlib.CSVDecodeFunc,
		"tobool":   stdlib.MakeToFunc(cty.Bool),
		"tonumber": stdlib.MakeToFunc(cty.Number),
		"tostring": stdlib.MakeToFunc(cty.String),
		"tolist":   stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":    stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tomap":    stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"try":      overComputed(tryfunc.TryFunc), "can": overComputed(tryfunc.CanFunc),
		"cidrsubnet": cidrSubnetFunc, "cidrsubnets": cidrSubnetsFunc, "cidrhost": cidrHostFunc,
		"cidrnetmask": cidrNetmaskFunc,
		"lookup":      lookupFunc, "coalesce": coalesceFunc, "replace": replaceFunc,
		"one": oneFunc, "alltrue": allTrueFunc, "anytrue": anyTrueFunc, "sum": sumFunc,
		"startswith":   strPredFunc(strings.HasPrefix),
		"endswith":     strPredFunc(strings.HasSuffix),
		"strcontains":  strPredFunc(strings.Contains),
		"sensitive":    identityFunc,
		"nonsensitive": identityFunc,
		"base64encode": strFunc(func(s string) (string, error) { return base64.StdEncoding.EncodeToString([]byte(s)), nil }),
		"base64decode": strFunc(func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || !utf8.Valid(b) {
				return "", errors.New("not base64 of UTF-8 text")
			}
			return string(b), nil
		}),
		"md5":      hashFunc(md5.New),
		"sha1":     hashFunc(sha1.New),
		"sha256":   hashFunc(sha256.New),
		"sha512":   hashFunc(sha512.New),
		"basename": strFunc(func(s string) (string, error) { return path.Base(s), nil }),
		"dirname":  strFunc(func(s string) (string, error) { return path.Dir(s), nil }),
		"abspath":  strFunc(func(s string) (string, error) { return s, nil }),
	}
	for n := range notComputed {
		fns[n] = applyTimeFunc
	}
	fns["list"], fns["map"] = removedFunc("list", "tolist([ … ])"), removedFunc("map", "tomap({ … })")
	fns["file"], fns["fileexists"], fns["templatefile"] = applyTimeFunc, applyTimeFunc, applyTimeFunc
	if l != nil {
		fns["file"] = fileFunc(l)
		fns["fileexists"] = fileExistsFunc(l)
		fns["templatefile"] = templateFileFunc(l, fns)
		l.work.meter(fns)
	}
	return fns
}

// notComputed names the functions whose results are not computed here.
var notComputed = map[string]bool{
	"timestamp": true, "plantimestamp": true, "uuid": true, "uuidv5": true, "bcrypt": true, "yamlencode": true, "yamldecode": true,
	"filebase64": true, "filemd5": true, "filesha1": true, "filesha256": true, "filebase64sha256": true, "fileset": true, "rsadecrypt": true,
	"base64gzip": true, "base64sha256": true, "base64sha512": true, "textencodebase64": true, "textdecodebase64": true, "urlencode": true,
	"transpose": true, "matchkeys": true, "ephemeralasnull": true, "issensitive": true, "templatestring": true,
}

// applyTimeFunc stands for a function whose result is not computed here.
var applyTimeFunc = function.New(&function.Spec{
	VarParam: &function.Parameter{Name: "args", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true},
	Type:     function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
		return cty.DynamicVal, nil
	},
})

// overComputed wraps try or can so that an expression that fails only on
// an attribute of a resource its configuration does not set (one the
// provider computes, or one not read yet: "Unsupported attribute") makes
// the result not known statically, as at plan time, where the attribute
// is unknown, not missing: the fallback is not taken over it.
func overComputed(f function.Function) function.Function {
	computed := func(args []cty.Value) bool {
		for _, a := range args {
			c := customdecode.ExpressionClosureFromVal(a)
			_, diags := c.Value()
			if !diags.HasErrors() {
				return false
			}
			only := refersToResource(c.Expression, c.EvalContext)
			for _, d := range diags {
				only = only && (d.Severity != hcl.DiagError || d.Summary == "Unsupported attribute")
			}
			if only {
				return true
			}
		}
		return false
	}
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			if computed(args) {
				return cty.DynamicPseudoType, nil
			}
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if computed(args) {
				return cty.DynamicVal, nil
			}
			return f.Call(args)
		},
	})
}

// errRemoved is what a call to a function Terraform removed fails with:
// Terraform keeps the name and fails every call, known arguments or not.
type errRemoved struct{ name, instead string }

func (e errRemoved) Error() string {
	return fmt.Sprintf("the %q function was removed in Terraform v0.15 (write %s instead): Terraform rejects the call, so the plan fails", e.name, e.instead)
}

func removedFunc(name, instead string) function.Function {
	return function.New(&function.Spec{
		VarParam: &function.Parameter{Name: "args", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true},
		Type: func([]cty.Value) (cty.Type, error) {
			return cty.DynamicPseudoType, errRemoved{name, instead}
		},
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.DynamicVal, errRemoved{name, instead}
		},
	})
}

var identityFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
})

func strFunc(f func(string) (string, error)) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := f(args[0].AsString())
			if err != nil {
				return cty.UnknownVal(cty.String), err
			}
			return cty.StringVal(s), nil
		},
	})
}

func strPredFunc(f func(s, sub string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "sub", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

func hashFunc(h func() hash.Hash) function.Function {
	return strFunc(func(s string) (string, error) {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil)), nil
	})
}

// lengthFunc is Terraform's length: of a collection, of an object (its
// attributes, as length({}) of a module's variable of type any is 0), or
// of a string in characters.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true, AllowMarked: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, _ := args[0].Unmark()
		switch {
		case v.Type() == cty.String:
			return stdlib.Strlen(v)
		case v.Type().IsObjectType() && !v.IsNull():
			return cty.NumberIntVal(int64(len(v.Type().AttributeTypes()))), nil
		}
		return stdlib.Length(v)
	},
})

// lookupFunc is Terraform's lookup(map, key, default): the default may be
// null, and an object's attributes are looked up like a map's keys.
var lookupFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "inputMap", Type: cty.DynamicPseudoType, AllowMarked: true},
		{Name: "key", Type: cty.String, AllowMarked: true},
	},
	VarParam: &function.Parameter{Name: "default", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true},
	Type:     function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if len(args) > 3 {
			return cty.NilVal, errors.New("lookup takes at most three arguments")
		}
		m, _ := args[0].Unmark()
		k, _ := args[1].Unmark()
		t := m.Type()
		if !(t.IsMapType() || t.IsObjectType()) {
			return cty.NilVal, fmt.Errorf("lookup needs a map or object, not %s", t.FriendlyName())
		}
		if !m.IsKnown() {
			return cty.DynamicVal, nil
		}
		key := k.AsString()
		if !m.IsNull() {
			if t.IsObjectType() {
				if t.HasAttribute(key) {
					return m.GetAttr(key), nil
				}
			} else if v := m.Index(cty.StringVal(key)); m.HasIndex(cty.StringVal(key)).True() {
				return v, nil
			}
		}
		if len(args) == 3 {
			return args[2], nil
		}
		return cty.NilVal, fmt.Errorf("the map has no key %q and no default was given", key)
	},
})

// coalesceFunc is Terraform's coalesce: the first argument that is neither
// null nor an empty string.
var coalesceFunc = function.New(&function.Spec{
	VarParam: &function.Parameter{Name: "vals", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true},
	Type:     function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for _, a := range args {
			if !a.IsKnown() {
				return cty.DynamicVal, nil
			}
			if a.IsNull() || (a.Type() == cty.String && a.AsString() == "") {
				continue
			}
			return a, nil
		}
		return cty.NilVal, errors.New("no non-null, non-empty-string arguments")
	},
})

// replaceFunc is Terraform's replace: a substring wrapped in slashes is a
// regular expression.
var replaceFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}, {Name: "replace", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		s, sub, rep := args[0].AsString(), args[1].AsString(), args[2].AsString()
		if len(sub) > 1 && strings.HasPrefix(sub, "/") && strings.HasSuffix(sub, "/") {
			re, err := regexp.Compile(sub[1 : len(sub)-1])
			if err != nil {
				return cty.UnknownVal(cty.String), err
			}
			return cty.StringVal(re.ReplaceAllString(s, rep)), nil
		}
		return cty.StringVal(strings.ReplaceAll(s, sub, rep)), nil
	},
})

var oneFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		if !v.CanIterateElements() || v.Type().IsMapType() || v.Type().IsObjectType() {
			return cty.NilVal, errors.New("one needs a list, tuple or set")
		}
		switch v.LengthInt() {
		case 0:
			return cty.NullVal(cty.DynamicPseudoType), nil
		case 1:
			it := v.ElementIterator()
			it.Next()
			_, e := it.Element()
			return e, nil
		}
		return cty.NilVal, errors.New("must be a list, set or tuple of zero or one elements")
	},
})

func boolsFunc(all bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			for it := args[0].ElementIterator(); it.Next(); {
				_, e := it.Element()
				if e.IsNull() {
					continue
				}
				if e.True() != all {
					return cty.BoolVal(!all), nil
				}
			}
			return cty.BoolVal(all), nil
		},
	})
}

var allTrueFunc, anyTrueFunc = boolsFunc(true), boolsFunc(false)

var sumFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Number)}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].LengthInt() == 0 {
			return cty.NilVal, errors.New("cannot sum an empty list")
		}
		s := new(big.Float)
		for it := args[0].ElementIterator(); it.Next(); {
			_, e := it.Element()
			s.Add(s, e.AsBigFloat())
		}
		return cty.NumberVal(s), nil
	},
})

// fileFunc reads a file (of the project's files) as UTF-8 text.
func fileFunc(l *loader) function.Function {
	return strFunc(func(name string) (string, error) {
		b, err := l.read(l.filePath(name))
		if err != nil {
			return "", err
		}
		if !utf8.Valid(b) {
			return "", fmt.Errorf("%s is not UTF-8 text", name)
		}
		return string(b), nil
	})
}

func fileExistsFunc(l *loader) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			st, err := fs.Stat(l.fsys, l.filePath(args[0].AsString()))
			return cty.BoolVal(err == nil && !st.IsDir()), nil
		},
	})
}

// filePath resolves a path given to file or templatefile: relative to the
// root module's directory (Terraform's working directory), or as given when
// it is already built from path.module.
func (l *loader) filePath(name string) string {
	if j := path.Join(l.root, name); fs.ValidPath(j) {
		if _, err := fs.Stat(l.fsys, j); err == nil {
			return j
		}
	}
	return path.Clean(name)
}

// templateFileFunc renders a template file with the given variables and
// the same functions (but templatefile itself, as in Terraform).
func templateFileFunc(l *loader, fns map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := l.filePath(args[0].AsString())
			src, err := l.read(name)
			if err != nil {
				return cty.UnknownVal(cty.String), err
			}
			if err := checkNesting(src, name, false, true); err != nil {
				return cty.UnknownVal(cty.String), err
			}
			expr, diags := hclsyntax.ParseTemplate(src, name, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.UnknownVal(cty.String), diagErr(diags)
			}
			meterSyntax(expr)
			vars := map[string]cty.Value{}
			if v := args[1]; !v.IsNull() && (v.Type().IsMapType() || v.Type().IsObjectType()) {
				for it := v.ElementIterator(); it.Next(); {
					k, e := it.Element()
					vars[k.AsString()] = e
				}
			}
			inner := map[string]function.Function{}
			for k, f := range fns {
				if k != "templatefile" {
					inner[k] = f
				}
			}
			out, diags := expr.Value(&hcl.EvalContext{Variables: vars, Functions: inner})
			if diags.HasErrors() {
				return cty.UnknownVal(cty.String), diagErr(diags)
			}
			if !out.IsKnown() {
				return cty.UnknownVal(cty.String), nil
			}
			if out.Type() != cty.String {
				return cty.UnknownVal(cty.String), errors.New("template result is not a string")
			}
			return out, nil
		},
	})
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("invalid CIDR %q", s)
	}
	return p, nil
}

// subnet is cidrsubnet's arithmetic: netnum's network of prefix lengthened
// by newbits.
func subnet(p netip.Prefix, nb int64, num *big.Int) (netip.Prefix, error) {
	bits := p.Addr().BitLen()
	newLen := p.Bits() + int(nb)
	if nb < 0 || newLen > bits {
		return netip.Prefix{}, fmt.Errorf("cannot extend prefix /%d by %d bits", p.Bits(), nb)
	}
	if num.Sign() < 0 || num.BitLen() > int(nb) {
		return netip.Prefix{}, fmt.Errorf("netnum %s does not fit in %d bits", num, nb)
	}
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	base.Or(base, new(big.Int).Lsh(num, uint(bits-newLen)))
	buf := make([]byte, bits/8)
	base.FillBytes(buf)
	a, _ := netip.AddrFromSlice(buf)
	return netip.PrefixFrom(a, newLen), nil
}

// cidrSubnetFunc is Terraform's cidrsubnet(prefix, newbits, netnum).
var cidrSubnetFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "newbits", Type: cty.Number},
		{Name: "netnum", Type: cty.Number},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := parsePrefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), err
		}
		nb, _ := args[1].AsBigFloat().Int64()
		num, _ := args[2].AsBigFloat().Int(nil)
		s, err := subnet(p, nb, num)
		if err != nil {
			return cty.UnknownVal(cty.String), err
		}
		return cty.StringVal(s.String()), nil
	},
})

// cidrSubnetsFunc is Terraform's cidrsubnets(prefix, newbits...): each
// range is the next free one of its size after the previous, in order.
var cidrSubnetsFunc = function.New(&function.Spec{
	Params:   []function.Parameter{{Name: "prefix", Type: cty.String}},
	VarParam: &function.Parameter{Name: "newbits", Type: cty.Number},
	Type:     function.StaticReturnType(cty.List(cty.String)),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := parsePrefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.List(cty.String)), err
		}
		p = p.Masked()
		bits := p.Addr().BitLen()
		next := new(big.Int).SetBytes(p.Addr().AsSlice()) // first free address
		end := new(big.Int).Add(next, new(big.Int).Lsh(big.NewInt(1), uint(bits-p.Bits())))
		var out []cty.Value
		for i, a := range args[1:] {
			nb, _ := a.AsBigFloat().Int64()
			l := p.Bits() + int(nb)
			if nb < 1 || l > bits {
				return cty.UnknownVal(cty.List(cty.String)), fmt.Errorf("newbits #%d: cannot extend /%d by %d bits", i+1, p.Bits(), nb)
			}
			size := new(big.Int).Lsh(big.NewInt(1), uint(bits-l))
			// Align up to the range's size.
			start := new(big.Int).Add(next, new(big.Int).Sub(size, big.NewInt(1)))
			start.Div(start, size).Mul(start, size)
			if new(big.Int).Add(start, size).Cmp(end) > 0 {
				return cty.UnknownVal(cty.List(cty.String)), fmt.Errorf("not enough room in %s for a /%d", p, l)
			}
			buf := make([]byte, bits/8)
			start.FillBytes(buf)
			addr, _ := netip.AddrFromSlice(buf)
			out = append(out, cty.StringVal(netip.PrefixFrom(addr, l).String()))
			next = start.Add(start, size)
		}
		if len(out) == 0 {
			return cty.ListValEmpty(cty.String), nil
		}
		return cty.ListVal(out), nil
	},
})

// cidrHostFunc is Terraform's cidrhost(prefix, hostnum); a negative hostnum
// counts from the end of the range.
var cidrHostFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "prefix", Type: cty.String}, {Name: "hostnum", Type: cty.Number}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := parsePrefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), err
		}
		p = p.Masked()
		bits := p.Addr().BitLen()
		n, _ := args[1].AsBigFloat().Int(nil)
		size := new(big.Int).Lsh(big.NewInt(1), uint(bits-p.Bits()))
		if n.Sign() < 0 {
			n.Add(n, size)
		}
		if n.Sign() < 0 || n.Cmp(size) >= 0 {
			return cty.UnknownVal(cty.String), fmt.Errorf("host number %s does not fit in %s", args[1].AsBigFloat(), p)
		}
		a := new(big.Int).SetBytes(p.Addr().AsSlice())
		a.Add(a, n)
		buf := make([]byte, bits/8)
		a.FillBytes(buf)
		addr, _ := netip.AddrFromSlice(buf)
		return cty.StringVal(addr.String()), nil
	},
})

var cidrNetmaskFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "prefix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := parsePrefix(args[0].AsString())
		if err != nil || !p.Addr().Is4() {
			return cty.UnknownVal(cty.String), fmt.Errorf("cidrnetmask needs an IPv4 CIDR, not %q", args[0].AsString())
		}
		m := ^uint32(0) << (32 - p.Bits())
		if p.Bits() == 0 {
			m = 0
		}
		return cty.StringVal(netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()), nil
	},
})
