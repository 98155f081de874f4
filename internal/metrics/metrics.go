package metrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ValueType is the TYPE of a metric family.
type ValueType uint8

const (
	CounterValue ValueType = iota + 1 // only goes up; a restart resets it
	GaugeValue                        // goes up and down
)

func (t ValueType) String() string {
	switch t {
	case CounterValue:
		return "counter"
	case GaugeValue:
		return "gauge"
	}
	return "untyped"
}

// Labels are constant labels: name → value.
type Labels map[string]string

// Opts names and describes a metric family.
type Opts struct {
	Name        string // e.g. "moat_mesh_tunnels_open"; required
	Help        string // one line for HELP
	ConstLabels Labels // added to every series of the family
}

// Desc describes a metric family: its name, help, type, variable label
// names and constant labels. A Desc with a bad name is refused by
// Registry.Register.
type Desc struct {
	name, help string
	typ        ValueType
	labels     []string
	// pairs are all the labels, constant and variable, sorted by name as
	// Prometheus' client writes them: a constant one's rendered pair, or
	// a variable one's index in labels.
	pairs []labelPair
	err   error
}

type labelPair struct {
	name     string
	constant string // `name="value"`, for a constant label
	index    int    // in Desc.labels, for a variable label (-1 for a constant one)
}

// NewDesc returns a Desc; labels name the variable labels, in the order
// their values are given when a sample is emitted.
func NewDesc(name, help string, typ ValueType, constLabels Labels, labels ...string) *Desc {
	d := &Desc{name: name, help: help, typ: typ, labels: labels}
	if !validName(name, true) {
		d.err = fmt.Errorf("metrics: invalid metric name %q", name)
		return d
	}
	seen := map[string]bool{}
	for n, v := range constLabels {
		var b strings.Builder
		writePair(&b, n, v)
		d.pairs = append(d.pairs, labelPair{name: n, constant: b.String(), index: -1})
	}
	for i, n := range labels {
		d.pairs = append(d.pairs, labelPair{name: n, index: i})
	}
	slices.SortFunc(d.pairs, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	for _, p := range d.pairs {
		if !validName(p.name, false) || strings.HasPrefix(p.name, "__") {
			d.err = fmt.Errorf("metrics: %s: invalid label name %q", name, p.name)
			return d
		}
		if seen[p.name] {
			d.err = fmt.Errorf("metrics: %s: label %q given twice", name, p.name)
			return d
		}
		seen[p.name] = true
	}
	return d
}

// Name returns the family's name.
func (d *Desc) Name() string { return d.name }

// validName reports whether s is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)
// or, without colons, a label name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || colon && c == ':' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// Emit hands one sample of d to the registry: labelValues are d's
// variable labels' values, in order.
type Emit func(d *Desc, v float64, labelValues ...string)

// Collector is anything that has metrics: Describe lists its families
// once, at registration; Collect emits their samples at each scrape and
// must emit only families Describe listed.
type Collector interface {
	Describe() []*Desc
	Collect(emit Emit)
}

// Group is several collectors registered as one.
type Group []Collector

func (g Group) Describe() []*Desc {
	var ds []*Desc
	for _, c := range g {
		ds = append(ds, c.Describe()...)
	}
	return ds
}

func (g Group) Collect(emit Emit) {
	for _, c := range g {
		c.Collect(emit)
	}
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) add(d float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

func (v *value) load() float64 { return math.Float64frombits(v.bits.Load()) }

// Counter is a value that only goes up. NewCounter makes one that is its
// own family; CounterVec.WithLabelValues makes one series of a family.
type Counter struct {
	v      value
	desc   *Desc
	values []string
}

// NewCounter returns a counter without variable labels.
func NewCounter(o Opts) *Counter {
	return &Counter{desc: NewDesc(o.Name, o.Help, CounterValue, o.ConstLabels)}
}

// Inc adds one.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d; a negative d is ignored (a counter does not go down).
func (c *Counter) Add(d float64) {
	if d > 0 {
		c.v.add(d)
	}
}

// Value returns the count so far.
func (c *Counter) Value() float64 { return c.v.load() }

func (c *Counter) Describe() []*Desc { return []*Desc{c.desc} }
func (c *Counter) Collect(emit Emit) { emit(c.desc, c.v.load()) }

// Gauge is a value that goes up and down.
type Gauge struct {
	v      value
	desc   *Desc
	values []string
}

// NewGauge returns a gauge without variable labels.
func NewGauge(o Opts) *Gauge {
	return &Gauge{desc: NewDesc(o.Name, o.Help, GaugeValue, o.ConstLabels)}
}

// Set sets the gauge to x.
func (g *Gauge) Set(x float64) { g.v.bits.Store(math.Float64bits(x)) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) { g.v.add(d) }

// Inc adds one; Dec subtracts one.
func (g *Gauge) Inc() { g.v.add(1) }
func (g *Gauge) Dec() { g.v.add(-1) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return g.v.load() }

func (g *Gauge) Describe() []*Desc { return []*Desc{g.desc} }
func (g *Gauge) Collect(emit Emit) { emit(g.desc, g.v.load()) }

// vec holds the series of one labelled family, keyed by their label values.
type vec[T any] struct {
	desc   *Desc
	mu     sync.RWMutex
	series map[string]*T
	make   func(values []string) *T
}

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.desc.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", v.desc.name, len(v.desc.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	v.mu.RLock()
	s := v.series[key]
	v.mu.RUnlock()
	if s != nil {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s = v.series[key]; s == nil {
		s = v.make(slices.Clone(values))
		v.series[key] = s
	}
	return s
}

// CounterVec is a counter family with variable labels.
type CounterVec struct{ vec[Counter] }

// NewCounterVec returns a counter family whose series are told apart by
// the named labels.
func NewCounterVec(o Opts, labels ...string) *CounterVec {
	v := &CounterVec{vec[Counter]{desc: NewDesc(o.Name, o.Help, CounterValue, o.ConstLabels, labels...), series: map[string]*Counter{}}}
	v.make = func(values []string) *Counter { return &Counter{values: values} }
	return v
}

// WithLabelValues returns the series with these label values (in the
// order the labels were named), making it, at zero, on first use. The
// number of values must match the labels' (it panics otherwise, a
// programming error); callers keep the value sets bounded.
func (v *CounterVec) WithLabelValues(values ...string) *Counter { return v.with(values) }

func (v *CounterVec) Describe() []*Desc { return []*Desc{v.desc} }
func (v *CounterVec) Collect(emit Emit) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, s := range v.series {
		emit(v.desc, s.v.load(), s.values...)
	}
}

// GaugeVec is a gauge family with variable labels.
type GaugeVec struct{ vec[Gauge] }

// NewGaugeVec returns a gauge family whose series are told apart by the
// named labels.
func NewGaugeVec(o Opts, labels ...string) *GaugeVec {
	v := &GaugeVec{vec[Gauge]{desc: NewDesc(o.Name, o.Help, GaugeValue, o.ConstLabels, labels...), series: map[string]*Gauge{}}}
	v.make = func(values []string) *Gauge { return &Gauge{values: values} }
	return v
}

// WithLabelValues is CounterVec.WithLabelValues for gauges.
func (v *GaugeVec) WithLabelValues(values ...string) *Gauge { return v.with(values) }

func (v *GaugeVec) Describe() []*Desc { return []*Desc{v.desc} }
func (v *GaugeVec) Collect(emit Emit) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, s := range v.series {
		emit(v.desc, s.v.load(), s.values...)
	}
}

// Func is a metric without variable labels whose value is read at scrape
// time: make it with CounterFunc or GaugeFunc.
type Func struct {
	desc *Desc
	f    func() float64
}

// CounterFunc is a counter whose value f reads at each scrape.
func CounterFunc(name, help string, f func() uint64) Func {
	return Func{NewDesc(name, help, CounterValue, nil), func() float64 { return float64(f()) }}
}

// GaugeFunc is a gauge whose value f reads at each scrape.
func GaugeFunc(name, help string, f func() float64) Func {
	return Func{NewDesc(name, help, GaugeValue, nil), f}
}

func (m Func) Describe() []*Desc { return []*Desc{m.desc} }
func (m Func) Collect(emit Emit) { emit(m.desc, m.f()) }

// errDuplicate is wrapped by Register's error for a family registered twice.
var errDuplicate = errors.New("already registered")
