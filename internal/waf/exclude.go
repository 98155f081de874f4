package waf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
)

// Exclusions are what one route takes out of the WAF's inspection: rules
// switched off (a rule ID, "942100", or an inclusive range,
// "942000-942999"), request body types passed uninspected, and whether
// the route takes executable uploads. The zero value takes nothing out:
// every rule runs, every body is inspected, executable uploads are
// refused.
type Exclusions struct {
	ids    []int
	ranges [][2]int
	// uninspected are media types ("application/x-protobuf") or type
	// families ("video/*") whose bodies this route passes without
	// inspection. Each is an explicit choice of the route's operator:
	// by default every body is inspected, whatever its declared type.
	uninspected []string
	// executableUploads lets this route take programs, server scripts
	// and pages with script as file uploads (upload.go); a disguised
	// one (a script named like an image) is refused all the same.
	executableUploads bool
}

// RouteOptions are a route's settings beyond rule exclusions; see
// Exclusions for what each means.
type RouteOptions struct {
	UninspectedTypes  []string
	ExecutableUploads bool
}

// NewRouteExclusions parses a route's exclusions and options; the error
// names the bad entry.
func NewRouteExclusions(list []string, opts RouteOptions) (*Exclusions, error) {
	ex, err := NewExclusions(list)
	if err != nil {
		return nil, err
	}
	for _, t := range opts.UninspectedTypes {
		mt, err := ParseUninspectedType(t)
		if err != nil {
			return nil, err
		}
		ex.uninspected = append(ex.uninspected, mt)
	}
	ex.executableUploads = opts.ExecutableUploads
	return ex, nil
}

// ParseUninspectedType checks one uninspected body type: a media type
// without parameters ("application/x-protobuf") or a family
// ("video/*"), returned in lower case. "*/*" and the types the WAF
// parses (forms, multipart/form-data, JSON, XML) are refused: taking
// those out of inspection would switch the WAF off for the route, which
// waf_off says plainly.
func ParseUninspectedType(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	typ, sub, ok := strings.Cut(t, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;,\t") || typ == "*" {
		return "", fmt.Errorf("waf: uninspected type %q: want a media type such as \"application/x-protobuf\" or a family such as \"video/*\"", s)
	}
	switch {
	case t == "application/x-www-form-urlencoded", t == "multipart/form-data", t == "application/json",
		strings.HasSuffix(t, "+json"), strings.HasSuffix(t, "/xml"), strings.HasSuffix(t, "+xml"), t == "text/*", t == "application/*", t == "multipart/*":
		return "", fmt.Errorf("waf: uninspected type %q: forms, JSON and XML are what the attack rules read; use waf_off to switch the WAF off for a route", s)
	}
	return t, nil
}

// inspects reports whether a body of the declared content type ctype is
// inspected on this route.
func (ex *Exclusions) inspects(ctype string) bool {
	if ex == nil || len(ex.uninspected) == 0 {
		return true
	}
	mt := strings.ToLower(strings.TrimSpace(ctype))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	if mt == "" {
		return true
	}
	for _, u := range ex.uninspected {
		if u == mt || strings.HasSuffix(u, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(u, "*")) {
			return false
		}
	}
	return true
}

// ParseExclusion parses one exclusion: a rule ID or an inclusive range.
func ParseExclusion(s string) (id, end int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	id, err = strconv.Atoi(a)
	if err != nil || id <= 0 {
		return 0, 0, fmt.Errorf("waf: exclusion %q: want a rule ID such as \"942100\" or a range \"942000-942999\"", s)
	}
	end = id
	if isRange {
		end, err = strconv.Atoi(b)
		if err != nil || end < id {
			return 0, 0, fmt.Errorf("waf: exclusion %q: want a range low-high with low ≤ high", s)
		}
	}
	return id, end, nil
}

// NewExclusions parses a route's exclusions; the error names the bad entry.
func NewExclusions(list []string) (*Exclusions, error) {
	ex := &Exclusions{}
	for _, s := range list {
		a, b, err := ParseExclusion(s)
		if err != nil {
			return nil, err
		}
		if a == b {
			ex.ids = append(ex.ids, a)
		} else {
			ex.ranges = append(ex.ranges, [2]int{a, b})
		}
	}
	return ex, nil
}

// Empty reports whether ex excludes nothing.
func (ex *Exclusions) Empty() bool {
	return ex == nil || len(ex.ids)+len(ex.ranges)+len(ex.uninspected) == 0 && !ex.executableUploads
}

// covers reports whether ex removes rule id.
func (ex *Exclusions) covers(id int) bool {
	if slices.Contains(ex.ids, id) || slices.Contains(ex.familyRules(), id) {
		return true
	}
	for _, r := range ex.ranges {
		if r[0] <= id && id <= r[1] {
			return true
		}
	}
	return false
}

type ruleRemover interface {
	RemoveRuleByID(id int)
	RemoveRuleByIDRange(start, end int)
}

func (ex *Exclusions) apply(tx types.Transaction) {
	if ex.executableUploads {
		if tv, ok := tx.(interface {
			Variables() plugintypes.TransactionVariables
		}); ok {
			tv.Variables().TX().Set(txExecutableUploads, []string{"1"})
		}
	}
	rr, ok := tx.(ruleRemover)
	if !ok {
		return
	}
	for _, id := range ex.familyRules() {
		rr.RemoveRuleByID(id)
	}
	for _, id := range ex.ids {
		rr.RemoveRuleByID(id)
	}
	for _, r := range ex.ranges {
		rr.RemoveRuleByIDRange(r[0], r[1])
	}
}

// moatFamilies maps each of moat's own detection rules to the CRS family
// it belongs to (the family's rule IDs, 942100-942999 for SQL injection):
// a route that switches a whole family off switches moat's rule of that
// family off with it. A single CRS rule ID excludes that rule alone.
var moatFamilies = map[int][2]int{
	90040: {942100, 942999}, // SQL injection
	90041: {941100, 941999}, // XSS
	90042: {932100, 932999}, // command injection
	90043: {934100, 934999}, // template and generic injection
	90010: {930100, 930999}, // path traversal
	90011: {930100, 930999},
	90030: {930100, 930999},
	90031: {930100, 930999},
	90050: {932100, 932999}, // executable uploads run commands
}

// crsReplacedBy maps the CRS rules moat removes to the moat rules that do
// their work on whole file names (rules/moat-after.conf): excluding the
// CRS rule, by its ID or a range, excludes its replacement.
var crsReplacedBy = map[int]int{930120: 90031, 930130: 90030}

// familyRules returns moat's rules whose whole family ex excludes, and
// the replacements of the CRS rules it excludes.
func (ex *Exclusions) familyRules() []int {
	var out []int
	for crs, own := range crsReplacedBy {
		excluded := slices.Contains(ex.ids, crs)
		for _, r := range ex.ranges {
			excluded = excluded || r[0] <= crs && crs <= r[1]
		}
		if excluded {
			out = append(out, own)
		}
	}
	for id, fam := range moatFamilies {
		for _, r := range ex.ranges {
			if r[0] <= fam[0] && r[1] >= fam[1] {
				out = append(out, id)
				break
			}
		}
	}
	return out
}
