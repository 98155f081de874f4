// Package faults holds fault-injection tests: the built moat binary, real
// etcd members and real agents as separate processes on loopback, with
// processes killed and restarted while traffic flows. Each step waits for
// its event with a bounded deadline.
package faults
