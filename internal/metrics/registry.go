package metrics

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format Registry writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds collectors and writes their metrics. The zero value is
// not usable: make one with NewRegistry.
type Registry struct {
	mu    sync.RWMutex
	cs    []Collector
	descs map[string]*Desc // by family name
}

// NewRegistry returns an empty registry; register Runtime() in it for the
// Go runtime and process figures.
func NewRegistry() *Registry { return &Registry{descs: map[string]*Desc{}} }

// Register adds c. A family with an invalid name or labels, or one whose
// name another collector already registered, is refused and nothing of c
// is added.
func (r *Registry) Register(c Collector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := c.Describe()
	seen := map[string]bool{}
	for _, d := range ds {
		if d == nil {
			return fmt.Errorf("metrics: a %T describes no family (a series of a vector is not registered alone)", c)
		}
		if d.err != nil {
			return d.err
		}
		if r.descs[d.name] != nil || seen[d.name] {
			return fmt.Errorf("metrics: %s: %w", d.name, errDuplicate)
		}
		seen[d.name] = true
	}
	for _, d := range ds {
		r.descs[d.name] = d
	}
	r.cs = append(r.cs, c)
	return nil
}

// MustRegister registers each collector and panics on the first refusal.
func (r *Registry) MustRegister(cs ...Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

type sample struct {
	labels string // rendered variable labels
	v      float64
}

// WriteText writes every registered family with at least one sample in the
// text exposition format: families by name, each with its HELP and TYPE,
// series sorted by labels. A sample whose number of label values does not
// match its family's, or of a family its collector did not describe, is
// left out.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.RLock()
	cs := slices.Clone(r.cs)
	descs := r.descs
	r.mu.RUnlock()
	fams := map[*Desc][]sample{}
	var b strings.Builder
	emit := func(d *Desc, v float64, values ...string) {
		if descs[d.name] != d || len(values) != len(d.labels) {
			return
		}
		b.Reset()
		for i, p := range d.pairs {
			if i > 0 {
				b.WriteByte(',')
			}
			if p.index < 0 {
				b.WriteString(p.constant)
			} else {
				writePair(&b, p.name, values[p.index])
			}
		}
		fams[d] = append(fams[d], sample{b.String(), v})
	}
	for _, c := range cs {
		c.Collect(emit)
	}
	order := make([]*Desc, 0, len(fams))
	for d := range fams {
		order = append(order, d)
	}
	slices.SortFunc(order, func(a, b *Desc) int { return strings.Compare(a.name, b.name) })
	bw := bufio.NewWriter(w)
	for _, d := range order {
		ss := fams[d]
		slices.SortFunc(ss, func(a, b sample) int { return cmp.Compare(a.labels, b.labels) })
		bw.WriteString("# HELP ")
		bw.WriteString(d.name)
		bw.WriteByte(' ')
		bw.WriteString(escapeHelp(d.help))
		bw.WriteString("\n# TYPE ")
		bw.WriteString(d.name)
		bw.WriteByte(' ')
		bw.WriteString(d.typ.String())
		bw.WriteByte('\n')
		for _, s := range ss {
			bw.WriteString(d.name)
			if s.labels != "" {
				bw.WriteByte('{')
				bw.WriteString(s.labels)
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(formatValue(s.v))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// ServeHTTP answers a scrape with WriteText.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	// A failed write is the scraper's connection gone: nothing to answer.
	_ = r.WriteText(w)
}

// writePair writes name="value" with the value escaped (and invalid
// UTF-8, which a scraper refuses, replaced).
func writePair(b *strings.Builder, name, val string) {
	b.WriteString(name)
	b.WriteString(`="`)
	val = strings.ToValidUTF8(val, "\uFFFD")
	for i := 0; i < len(val); i++ {
		switch c := val[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
