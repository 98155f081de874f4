// Package metrics is moat's one home for metrics: counters and gauges
// (alone or by label values), values read at scrape time, and a Registry
// that writes them in the Prometheus text exposition format (version
// 0.0.4) at /metrics.
//
// It is small on purpose: every agent links it, and the Prometheus client
// library with its protobuf encoding would cost each node's agent more
// memory than the rest of its metrics (bench/mesh measures it;
// agentdeps_test.go keeps the client out). What a scraper needs is here:
// HELP and TYPE lines, escaped help text and label values, families sorted
// by name and series by label values, constant labels, and the Go runtime
// and process figures (Runtime). No moat metric is a histogram or a
// summary, so neither type is offered.
//
//	reg := metrics.NewRegistry()
//	calls := metrics.NewCounterVec(metrics.Opts{Name: "moat_calls_total", Help: "Calls by result."}, "result")
//	reg.MustRegister(calls)
//	calls.WithLabelValues("ok").Inc()
//	http.Handle("/metrics", reg)
package metrics
