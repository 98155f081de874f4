package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
)

// memConfig is one side of the memory comparison.
type memConfig struct {
	name     string
	cacheKiB int
	maxOpen  int
}

// The peer is what the store did before its bounds: a 64 MiB page cache
// per connection and every partition of the retention open.
var memConfigs = map[string]memConfig{
	"unbounded": {"unbounded (64 MiB cache per connection, every day open)", 65536, 1 << 20},
	"default":   {"default (2 MiB cache per connection, 8 days open)", 0, 0},
}

// benchMem runs each configuration in a child process of its own, so that
// each one's resident memory is its own, and prints them side by side.
func benchMem(days, perDay int, idle time.Duration) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("memory under flow load: %d days × %d records (sealed store), then every day queried; idle sample after %s\n", days, perDay, idle)
	for _, side := range []string{"unbounded", "default"} {
		dir, err := os.MkdirTemp("", "flowbench-mem-")
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "-mem-child", side, "-dir", dir, "-days", strconv.Itoa(days), "-per-day", strconv.Itoa(perDay), "-idle", idle.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", side, err)
		}
		fmt.Printf("  %-58s %s", memConfigs[side].name, out)
	}
	return nil
}

// memChild loads a store and reports its process's memory: the high-water
// mark (VmHWM), the resident set right after the load (VmRSS), and again
// after idling.
func memChild(side, dir string, days, perDay int, idle time.Duration) error {
	mc, ok := memConfigs[side]
	if !ok {
		return fmt.Errorf("unknown side %q", side)
	}
	a, err := benchSealer(dir)
	if err != nil {
		return err
	}
	end := time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC)
	st, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: dir + "/flows", Sealer: a, Now: func() time.Time { return end },
		Retention: time.Duration(days+1) * 24 * time.Hour, CacheKiB: mc.cacheKiB, MaxOpen: mc.maxOpen})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	batch := make([]flow.Record, 0, 5000)
	k := 0
	// Agents send what they see as it happens: every day in turn, with
	// a straggler batch for an earlier day now and then (a spool drained
	// after an outage).
	for d := days - 1; d >= 0; d-- {
		day := end.Add(-time.Duration(d) * 24 * time.Hour).Truncate(24 * time.Hour)
		for i := 0; i < perDay; i++ {
			at := day.Add(time.Duration(i) * (24 * time.Hour / time.Duration(perDay)))
			if rng.IntN(20) == 0 {
				at = at.Add(-time.Duration(rng.IntN(days)) * 24 * time.Hour)
			}
			k++
			src, dst := fmt.Sprintf("svc-%03d", rng.IntN(100)), fmt.Sprintf("svc-%03d", rng.IntN(100))
			r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", at)
			r.Metadata.UID = fmt.Sprintf("%016x", k)
			r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.1", Port: 40000, UID: "spiffe://bench.example/svc/" + src, SvcName: src}
			r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.2", Port: 8443, UID: "spiffe://bench.example/svc/" + dst, SvcName: dst}
			r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound}
			r.Traffic = &flow.Traffic{Bytes: int64(rng.IntN(100000))}
			r.FirewallRule = &flow.Rule{Name: "rule-" + src}
			r.Unmapped = &flow.Moat{Verdict: flow.VerdictAllow, Node: "node-1"}
			batch = append(batch, r)
			if len(batch) == cap(batch) {
				if _, err := st.Ingest(ctx, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
	}
	if len(batch) > 0 {
		if _, err := st.Ingest(ctx, batch); err != nil {
			return err
		}
	}
	// An operator looks back over every day.
	for d := 0; d < days; d++ {
		since := end.Add(-time.Duration(d+1) * 24 * time.Hour)
		if _, err := st.TopTalkers(ctx, flow.Filter{Since: since, Until: since.Add(24 * time.Hour)}, 10); err != nil {
			return err
		}
		if _, err := st.Query(ctx, flow.Filter{Since: since, Until: since.Add(24 * time.Hour), Limit: 100}); err != nil {
			return err
		}
	}
	loaded := procStatus("VmRSS")
	time.Sleep(idle)
	debug.FreeOSMemory()
	fmt.Printf("peak %6.1f MiB  after load %6.1f MiB  idle %6.1f MiB  (%d partitions open)\n",
		procStatus("VmHWM"), loaded, procStatus("VmRSS"), st.OpenPartitions())
	return nil
}

// benchSealer is a keyring in dir under a fixed KEK, as a server's.
func benchSealer(dir string) (flow.Sealer, error) {
	kek, err := seal.EnvKEK("K", func(string) (string, bool) { return seal.EncodeKEKKey(make([]byte, 32)), true })
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek})
	if err != nil {
		return nil, err
	}
	return kr.AEAD(), nil
}

// procStatus reads one memory line of /proc/self/status, in MiB.
func procStatus(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return -1
}
