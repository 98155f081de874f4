package metrics

import (
	"runtime"
	rm "runtime/metrics"
)

// goMetrics maps runtime/metrics names to the families Runtime exposes,
// named as Prometheus' Go client names them, so dashboards carry over.
var goMetrics = []struct {
	sample, name, help string
	typ                ValueType
}{
	{"/sched/goroutines:goroutines", "go_goroutines", "Goroutines that currently exist.", GaugeValue},
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", GaugeValue},
	{"/gc/gogc:percent", "go_gc_gogc_percent", "Heap size target percentage (GOGC).", GaugeValue},
	{"/gc/gomemlimit:bytes", "go_gc_gomemlimit_bytes", "Go runtime memory limit (GOMEMLIMIT).", GaugeValue},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "Heap size target for the end of the GC cycle.", GaugeValue},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total_gc_cycles_total", "Completed GC cycles.", CounterValue},
	{"/memory/classes/total:bytes", "go_memory_classes_total_bytes", "All memory mapped by the Go runtime into the process.", GaugeValue},
	{"/memory/classes/heap/objects:bytes", "go_memory_classes_heap_objects_bytes", "Memory occupied by live objects and dead objects not yet freed.", GaugeValue},
}

// runtimeCollector is Runtime's collector.
type runtimeCollector struct {
	descs []*Desc
	info  *Desc
	proc  []*Desc
}

// Runtime returns a collector of the Go runtime's figures (goroutines,
// GOMAXPROCS, GOGC, the memory limit, heap goal, GC cycles, mapped memory,
// go_info) and, on Linux, the process's (resident and virtual memory, CPU
// seconds, open and maximum descriptors, start time), under the names
// Prometheus' Go client gives them. Each scrape reads them afresh, with no
// stop-the-world.
func Runtime() Collector {
	c := &runtimeCollector{info: NewDesc("go_info", "Information about the Go environment.", GaugeValue, nil, "version")}
	for _, m := range goMetrics {
		c.descs = append(c.descs, NewDesc(m.name, m.help, m.typ, nil))
	}
	c.proc = processDescs()
	return c
}

func (c *runtimeCollector) Describe() []*Desc {
	return append(append([]*Desc{c.info}, c.descs...), c.proc...)
}

func (c *runtimeCollector) Collect(emit Emit) {
	emit(c.info, 1, runtime.Version())
	s := make([]rm.Sample, len(goMetrics))
	for i, m := range goMetrics {
		s[i].Name = m.sample
	}
	rm.Read(s)
	for i, x := range s {
		switch x.Value.Kind() {
		case rm.KindUint64:
			emit(c.descs[i], float64(x.Value.Uint64()))
		case rm.KindFloat64:
			emit(c.descs[i], x.Value.Float64())
		}
	}
	collectProcess(c.proc, emit)
}
