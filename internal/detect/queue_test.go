package detect

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"moat/internal/flow"
	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
)

// fromNode is a record node wrote, numbered i.
func fromNode(node string, i int) flow.Record {
	r := *denyFlow("10.0.0.1", "10.0.0.2", 1)
	r.Metadata.UID = node + "-" + strconv.Itoa(i)
	r.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny, Node: node}
	return r
}

// TestQueueFairAcrossNodes: a node that fills the queue loses its own
// excess; another node's records still get in, each costing the flooding
// node its newest, and are served in turn rather than behind the flood.
func TestQueueFairAcrossNodes(t *testing.T) {
	e, err := New(Config{Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		err := e.Write(fromNode("n1", i))
		if i < 4 && err != nil || i >= 4 && !errors.Is(err, ErrQueueFull) {
			t.Fatalf("n1's write %d: %v", i, err)
		}
	}
	for i := range 2 {
		if err := e.Write(fromNode("n2", i)); err != nil {
			t.Fatalf("n2's write %d to a queue n1 filled: %v", i, err)
		}
	}
	t.Log("n1 and n2 now hold two each: the next of either is refused")
	if err := e.Write(fromNode("n2", 2)); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("n2's third: %v, want ErrQueueFull", err)
	}
	st := e.Stats()
	if st.Queued != 6 || st.Dropped != 5 || st.DroppedByNode["n1"] != 4 || st.DroppedByNode["n2"] != 1 || len(st.DroppedByNode) != 2 {
		t.Fatalf("stats %+v: want 6 queued, 5 dropped: n1 4, n2 1", st)
	}
	var order []string
	for {
		it, ok := e.queue.pop()
		if !ok {
			break
		}
		order = append(order, it.rec.Metadata.UID)
	}
	want := []string{"n1-0", "n2-0", "n1-1", "n2-1"}
	if len(order) != len(want) {
		t.Fatalf("served %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("served %v, want %v", order, want)
		}
	}
}

// TestQueueNewSourceWhenEachHoldsOne: with every source holding one, a
// new source's record takes the place of another's, which leaves its turn.
func TestQueueNewSourceWhenEachHoldsOne(t *testing.T) {
	e, err := New(Config{Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if err := e.Write(fromNode(n, 0)); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	var served []string
	for {
		it, ok := e.queue.pop()
		if !ok {
			break
		}
		served = append(served, it.rec.Metadata.UID)
	}
	st := e.Stats()
	if len(served) != 2 || served[1] != "n3-0" || st.Dropped != 1 || st.DroppedByNode["n3"] != 0 {
		t.Fatalf("served %v, stats %+v: want one of n1's and n2's, then n3's, the other dropped", served, st)
	}
	if err := e.Write(fromNode("n1", 1)); err != nil {
		t.Fatal(err)
	}
	if it, ok := e.queue.pop(); !ok || it.rec.Metadata.UID != "n1-1" {
		t.Fatalf("after draining: %v %v", it.rec.Metadata.UID, ok)
	}
}

// TestQueueQuietNodeAmongManyFloods: twenty nodes flood a queue together;
// a quiet node's one record still gets in, at the cost of the fullest
// flood's newest, and is served within one turn of the floods.
func TestQueueQuietNodeAmongManyFloods(t *testing.T) {
	const queue, floods = 100, 20
	e, err := New(Config{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * queue {
		for f := range floods {
			_ = e.Write(fromNode("flood"+strconv.Itoa(f), i))
		}
	}
	if err := e.Write(fromNode("quiet", 0)); err != nil {
		t.Fatalf("the quiet node's record, with twenty floods holding the queue: %v", err)
	}
	t.Log("the floods keep writing after it: none of theirs takes its place")
	for i := range queue {
		for f := range floods {
			_ = e.Write(fromNode("flood"+strconv.Itoa(f), 3*queue+i))
		}
	}
	for n := 1; ; n++ {
		it, ok := e.queue.pop()
		if !ok {
			t.Fatal("the quiet node's record was dropped")
		}
		if it.rec.Unmapped.Node == "quiet" {
			if n > floods+1 {
				t.Fatalf("the quiet node's record was served %dth, want within one turn of the %d floods", n, floods)
			}
			break
		}
	}
	if n := e.Stats().DroppedByNode["quiet"]; n != 0 {
		t.Fatalf("%d of the quiet node's records counted dropped", n)
	}
}

// TestDropCountsBounded: nodes come and go, and each loses a record; the
// drop counts (and so the metric's series) name the first MaxDropNodes
// of them and count the rest under OtherNodes, and the queue forgets a
// node with nothing waiting.
func TestDropCountsBounded(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Queue: 1, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	const nodes = MaxDropNodes + 50
	t.Log("each node's record takes the place of the one before it")
	for i := range nodes + 1 {
		if err := e.Write(fromNode("n"+strconv.Itoa(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	st := e.Stats()
	if st.Dropped != nodes {
		t.Fatalf("dropped %d, want %d", st.Dropped, nodes)
	}
	if len(st.DroppedByNode) != MaxDropNodes+1 || st.DroppedByNode["n0"] != 1 || st.DroppedByNode[OtherNodes] != nodes-MaxDropNodes {
		t.Fatalf("counts for %d names (n0 %d, %s %d); want %d, n0 1, %d under %s",
			len(st.DroppedByNode), st.DroppedByNode["n0"], OtherNodes, st.DroppedByNode[OtherNodes], MaxDropNodes+1, nodes-MaxDropNodes, OtherNodes)
	}
	var text strings.Builder
	if err := reg.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	fam := metricstest.Parse(t, text.String())["moat_detect_records_dropped_total"]
	if fam == nil || len(fam.GetMetric()) != MaxDropNodes+1 {
		t.Fatalf("moat_detect_records_dropped_total has %d series, want %d", len(fam.GetMetric()), MaxDropNodes+1)
	}
	e.queue.mu.Lock()
	held := len(e.queue.srcs)
	e.queue.mu.Unlock()
	if held != 1 {
		t.Fatalf("the queue remembers %d sources, want the one with a record waiting", held)
	}
}
