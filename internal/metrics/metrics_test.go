package metrics

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads the registry's exposition back with Prometheus' own parser.
func parse(t *testing.T, r *Registry) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, b.String())
	}
	return fams, b.String()
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestExpositionParses(t *testing.T) {
	r := NewRegistry()
	calls := NewCounterVec(Opts{Name: "moat_calls_total", Help: `Calls by "result", a \ and` + "\na second line.", ConstLabels: Labels{"node": "n1", "az": "a"}}, "result")
	depth := NewGaugeVec(Opts{Name: "moat_depth", Help: "Depth.", ConstLabels: Labels{"node": "n1"}}, "sink", "kind")
	lone := NewCounter(Opts{Name: "moat_lone_total", Help: "No labels."})
	temp := NewGauge(Opts{Name: "moat_temp", Help: "Goes both ways."})
	r.MustRegister(calls, depth, lone, temp,
		Group{CounterFunc("moat_read_total", "Read at scrape.", func() uint64 { return 42 }), GaugeFunc("moat_ratio", "A ratio.", func() float64 { return 0.25 })})

	tricky := "a\"b\\c\nd"
	calls.WithLabelValues("ok").Add(3)
	calls.WithLabelValues("ok").Inc()
	calls.WithLabelValues(tricky).Inc()
	calls.WithLabelValues("neg").Add(-5) // refused: counters only go up
	calls.WithLabelValues("bad\xffutf8").Inc()
	depth.WithLabelValues("pd", "x").Set(7)
	depth.WithLabelValues("pd", "y").Dec()
	lone.Inc()
	temp.Set(-1.5)
	temp.Add(0.5)

	fams, text := parse(t, r)
	f := fams["moat_calls_total"]
	if f == nil || f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != `Calls by "result", a \ and`+"\na second line." {
		t.Fatalf("moat_calls_total: %v\n%s", f, text)
	}
	got := map[string]float64{}
	for _, m := range f.GetMetric() {
		l := labelsOf(m)
		if l["node"] != "n1" || l["az"] != "a" {
			t.Errorf("constant labels missing: %v", l)
		}
		got[l["result"]] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"ok": 4, tricky: 1, "neg": 0, "bad\uFFFDutf8": 1}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("moat_calls_total{result=%q} = %v, want %v", k, got[k], v)
		}
	}
	if f := fams["moat_depth"]; f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 2 {
		t.Errorf("moat_depth: %v", f)
	} else {
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			w := map[string]float64{"x": 7, "y": -1}[l["kind"]]
			if l["sink"] != "pd" || m.GetGauge().GetValue() != w {
				t.Errorf("moat_depth %v = %v", l, m.GetGauge().GetValue())
			}
		}
	}
	if v := fams["moat_lone_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("moat_lone_total = %v", v)
	}
	if v := fams["moat_temp"].GetMetric()[0].GetGauge().GetValue(); v != -1 {
		t.Errorf("moat_temp = %v", v)
	}
	if v := fams["moat_read_total"].GetMetric()[0].GetCounter().GetValue(); v != 42 {
		t.Errorf("moat_read_total = %v", v)
	}
	if v := fams["moat_ratio"].GetMetric()[0].GetGauge().GetValue(); v != 0.25 {
		t.Errorf("moat_ratio = %v", v)
	}
	// Labels by name, constant and variable alike, as Prometheus' client
	// writes them (scrapers and tests match series by their text).
	if want := `moat_calls_total{az="a",node="n1",result="ok"} 4` + "\n"; !strings.Contains(text, want) {
		t.Errorf("exposition lacks %q:\n%s", want, text)
	}
	if want := `moat_calls_total{az="a",node="n1",result="a\"b\\c\nd"} 1` + "\n"; !strings.Contains(text, want) {
		t.Errorf("exposition lacks %q:\n%s", want, text)
	}
	if want := `moat_depth{kind="x",node="n1",sink="pd"} 7` + "\n"; !strings.Contains(text, want) {
		t.Errorf("exposition lacks %q:\n%s", want, text)
	}
	// Families by name, and the same text on every scrape.
	if i, j := strings.Index(text, "# HELP moat_calls_total"), strings.Index(text, "# HELP moat_depth"); i < 0 || j < i {
		t.Errorf("families are not sorted by name:\n%s", text)
	}
	if _, again := parse(t, r); again != text {
		t.Errorf("two scrapes differ:\n%s\n---\n%s", text, again)
	}
}

func TestRegisterRefuses(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(NewCounter(Opts{Name: "moat_a_total"}))
	for _, c := range []Collector{
		NewCounter(Opts{Name: "moat_a_total"}),
		NewCounter(Opts{Name: "moat-dash"}),
		NewCounter(Opts{Name: "1starts_with_digit"}),
		NewCounterVec(Opts{Name: "moat_b_total"}, "bad-label"),
		NewCounterVec(Opts{Name: "moat_c_total"}, "__reserved"),
		NewCounterVec(Opts{Name: "moat_d_total", ConstLabels: Labels{"x": "1"}}, "x"),
		Group{GaugeFunc("moat_e", "", func() float64 { return 0 }), GaugeFunc("moat_e", "", func() float64 { return 0 })},
		NewCounterVec(Opts{Name: "moat_f_total"}, "k").WithLabelValues("v"),
	} {
		if err := r.Register(c); err == nil {
			t.Errorf("registered %T %v", c, c.Describe())
		}
	}
	if err := r.Register(NewCounter(Opts{Name: "moat_a_total"})); !errors.Is(err, errDuplicate) {
		t.Errorf("a duplicate: %v", err)
	}
	// A refused group adds none of its families.
	if err := r.Register(NewGauge(Opts{Name: "moat_e"})); err != nil {
		t.Errorf("moat_e after a refused group: %v", err)
	}
}

// stray emits a sample of a family it did not describe and one with the
// wrong number of label values; both are left out.
type stray struct{ own, other *Desc }

func (s stray) Describe() []*Desc { return []*Desc{s.own} }
func (s stray) Collect(emit Emit) {
	emit(s.other, 1)
	emit(s.own, 1, "a", "b")
	emit(s.own, 2, "a")
}

func TestStraySamplesLeftOut(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(stray{NewDesc("moat_own", "Own.", GaugeValue, nil, "l"), NewDesc("moat_other", "Other.", GaugeValue, nil)})
	fams, text := parse(t, r)
	if len(fams) != 1 || len(fams["moat_own"].GetMetric()) != 1 || fams["moat_own"].GetMetric()[0].GetGauge().GetValue() != 2 {
		t.Errorf("exposition:\n%s", text)
	}
}

func TestConcurrentCounts(t *testing.T) {
	v := NewCounterVec(Opts{Name: "moat_n_total"}, "k")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 1000 {
				v.WithLabelValues([]string{"a", "b"}[i%2]).Inc()
			}
		})
	}
	wg.Wait()
	if a, b := v.WithLabelValues("a").Value(), v.WithLabelValues("b").Value(); a != 4000 || b != 4000 {
		t.Errorf("counts %v %v, want 4000 each", a, b)
	}
}

func TestRuntimeServed(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(Runtime())
	srv := httptest.NewServer(r)
	defer srv.Close()
	var body []byte
	var fams map[string]*dto.MetricFamily
	scrape := func() {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != ContentType {
			t.Errorf("Content-Type %q", ct)
		}
		body, _ = io.ReadAll(resp.Body)
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err = p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
	}
	scrape()
	if runtime.GOOS == "linux" {
		// The kernel counts CPU time in clock ticks (10 ms): a test
		// process this young may not have spent one. Spend CPU until
		// the served counter moves, bounded.
		sum := sha256.Sum256(nil)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if f := fams["process_cpu_seconds_total"]; f != nil && len(f.GetMetric()) == 1 && f.GetMetric()[0].GetCounter().GetValue() > 0 {
				break
			}
			for range 100000 {
				sum = sha256.Sum256(sum[:])
			}
			scrape()
		}
	}
	gauge := func(name string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("%s missing:\n%s", name, body)
		}
		m := f.GetMetric()[0]
		if f.GetType() == dto.MetricType_COUNTER {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	if v := gauge("go_sched_gomaxprocs_threads"); v != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go_sched_gomaxprocs_threads = %v, want %d", v, runtime.GOMAXPROCS(0))
	}
	if v := gauge("go_goroutines"); v < 1 {
		t.Errorf("go_goroutines = %v", v)
	}
	if v := gauge("go_memory_classes_total_bytes"); v <= 0 {
		t.Errorf("go_memory_classes_total_bytes = %v", v)
	}
	if l := labelsOf(fams["go_info"].GetMetric()[0]); l["version"] != runtime.Version() {
		t.Errorf("go_info %v", l)
	}
	if runtime.GOOS == "linux" {
		if v := gauge("process_resident_memory_bytes"); v < 1<<20 {
			t.Errorf("process_resident_memory_bytes = %v", v)
		}
		if v := gauge("process_open_fds"); v < 3 {
			t.Errorf("process_open_fds = %v", v)
		}
		for _, n := range []string{"process_cpu_seconds_total", "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes"} {
			if v := gauge(n); v <= 0 {
				t.Errorf("%s = %v", n, v)
			}
		}
	}
}
