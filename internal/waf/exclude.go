package waf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/types"
)

// Exclusions are rules switched off for one route: a rule ID ("942100") or
// an inclusive range ("942000-942999"). The zero value excludes nothing.
type Exclusions struct {
	ids    []int
	ranges [][2]int
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
func (ex *Exclusions) Empty() bool { return ex == nil || len(ex.ids)+len(ex.ranges) == 0 }

type ruleRemover interface {
	RemoveRuleByID(id int)
	RemoveRuleByIDRange(start, end int)
}

func (ex *Exclusions) apply(tx types.Transaction) {
	rr, ok := tx.(ruleRemover)
	if !ok {
		return
	}
	for _, id := range ex.ids {
		rr.RemoveRuleByID(id)
	}
	for _, r := range ex.ranges {
		rr.RemoveRuleByIDRange(r[0], r[1])
	}
}
