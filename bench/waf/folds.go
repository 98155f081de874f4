package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Cross-validation. moat's rules, discounts and scorers were tuned on the
// waf-dev sample; the held-out 90% is what counts. Splitting the sample
// into folds by source (a payload, or a captured request's file: the GET
// and POST of one payload fall on the same side) shows whether what
// helps on one fold helps on the others: a decision that fits particular
// strings moves one fold's figures and not the rest.

// foldOf is the fold of c among k: a hash of its category and source.
func foldOf(c *request, k int) int {
	src := c.Group
	if src == "" {
		src = c.ID
	}
	return int(hash64(c.Category+"\x00"+src) % uint64(k))
}

// reportFolds prints each category's block rate on each fold, the
// overall rates with their spread, and (in -fast mode, where the rules
// are known) what each kind of decision did on each fold: the CRS rule
// files whose matches the context scorers discounted on benign requests
// that passed and on attacks that passed, and moat's own rules on the
// attacks they alone caught and the benign requests they blocked.
func reportFolds(w io.Writer, reqs []request, results []result, k int) {
	type cell struct{ blocked, total int }
	cats := map[string][]cell{}
	overall := map[bool][]cell{true: make([]cell, k), false: make([]cell, k)}
	// decisions[name][fold]: requests the decision acted on.
	decisions := map[string][]int{}
	note := func(name string, fold int) {
		if decisions[name] == nil {
			decisions[name] = make([]int, k)
		}
		decisions[name][fold]++
	}
	for i := range reqs {
		c, res := &reqs[i], results[i]
		f := foldOf(c, k)
		if cats[c.Category] == nil {
			cats[c.Category] = make([]cell, k)
		}
		cats[c.Category][f].total++
		overall[c.Attack][f].total++
		if res.blocked() {
			cats[c.Category][f].blocked++
			overall[c.Attack][f].blocked++
		}
		// What each decision did to this request.
		for _, file := range crsFiles(res.discounted) {
			switch {
			case !c.Attack && !res.blocked():
				note("discount "+file+": benign passed", f)
			case c.Attack && !res.blocked():
				note("discount "+file+": ATTACK passed", f)
			}
		}
		if own, crs := moatOnly(res.rules); res.blocked() && len(own) > 0 {
			for _, id := range own {
				if c.Attack && !crs {
					note("rule "+strconv.Itoa(id)+": attack caught by moat alone", f)
				}
				if !c.Attack {
					note("rule "+strconv.Itoa(id)+": BENIGN blocked", f)
				}
			}
		}
	}
	pct := func(c cell) string {
		if c.total == 0 {
			return "     -     "
		}
		return fmt.Sprintf("%4d/%-5d %6.2f%%", c.blocked, c.total, 100*float64(c.blocked)/float64(c.total))
	}
	fmt.Fprintf(w, "\n%d folds by source (category and payload or file):\n", k)
	for _, n := range slices.Sorted(maps.Keys(cats)) {
		fmt.Fprintf(w, "%-26s", n)
		for _, c := range cats[n] {
			fmt.Fprintf(w, "  %s", pct(c))
		}
		fmt.Fprintln(w)
	}
	for _, attack := range []bool{true, false} {
		fmt.Fprintf(w, "%-26s", kind(attack)+" overall")
		for _, c := range overall[attack] {
			fmt.Fprintf(w, "  %s", pct(c))
		}
		fmt.Fprintln(w)
	}
	if len(decisions) == 0 {
		return
	}
	fmt.Fprintf(w, "\nwhat each decision did, per fold (requests):\n")
	for _, n := range slices.Sorted(maps.Keys(decisions)) {
		fmt.Fprintf(w, "%-52s", n)
		for _, v := range decisions[n] {
			fmt.Fprintf(w, " %5d", v)
		}
		fmt.Fprintln(w)
	}
}

// crsFiles names the CRS rule files (by the thousands of their IDs:
// "942" for SQL injection) of the rule IDs given, once each.
func crsFiles(ids []int) []string {
	var out []string
	for _, id := range ids {
		f := strconv.Itoa(id / 1000)
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// moatOnly splits the matched rules into moat's own (90000-90099) and
// reports whether any CRS attack rule (not a setup or an evaluation rule)
// matched too.
func moatOnly(ids []int) (own []int, crs bool) {
	for _, id := range ids {
		switch {
		case id >= 90000 && id < 90100:
			own = append(own, id)
		case id >= 920000 && id < 949000:
			crs = true
		}
	}
	return own, crs
}

// reportBy prints the block rate of each category by the generated
// variants' mutation or carrier.
func reportBy(w io.Writer, reqs []request, results []result, by string) error {
	if by != "mutation" && by != "carrier" {
		return fmt.Errorf("-by %q: want mutation or carrier", by)
	}
	type cell struct {
		blocked, refused, total int
		attack                  bool
	}
	groups := map[string]*cell{}
	for i := range reqs {
		c := &reqs[i]
		key := c.Mutation
		if by == "carrier" {
			key = c.Carrier
		}
		if key == "" {
			continue
		}
		key = c.Category + " " + key
		g := groups[key]
		if g == nil {
			g = &cell{attack: c.Attack}
			groups[key] = g
		}
		g.total++
		switch st := results[i].status; {
		case st == 403:
			g.blocked++
		case st >= 400:
			// Refused before the application, not by the attack
			// rules: a request line the server cannot parse (400),
			// the limits (413), the budget (503).
			g.refused++
		}
	}
	fmt.Fprintf(w, "\nby %s:\n", by)
	for _, n := range slices.Sorted(maps.Keys(groups)) {
		g := groups[n]
		flag := ""
		if g.attack && (g.blocked+g.refused)*100 < g.total*95 || !g.attack && (g.blocked+g.refused)*100 > g.total {
			flag = "  <- weak"
		}
		refused := ""
		if g.refused > 0 {
			refused = fmt.Sprintf(", %d refused otherwise", g.refused)
		}
		fmt.Fprintf(w, "%-44s %-7s blocked %5d of %5d (%6.2f%%%s)%s\n", strings.TrimSpace(n), kind(g.attack), g.blocked, g.total,
			100*float64(g.blocked)/float64(max(1, g.total)), refused, flag)
	}
	return nil
}
