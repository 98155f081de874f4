package ui

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
)

// world stands for every peer that is not a service of the trust domain:
// internet clients at the gateway, plaintext callers, refused handshakes.
const world = "world"

// gatewayService is the service name the edge gateway calls as.
const gatewayService = "gateway"

// graphNode is one service (or the world) placed on the page.
type graphNode struct {
	ID         string            `json:"id"`
	Kind       string            `json:"kind"` // "service" or "world"
	Node       string            `json:"node,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Group      string            `json:"group"`
	Registered bool              `json:"registered"`
	X          float64           `json:"x"`
	Y          float64           `json:"y"`
}

// graphGroup is a box of nodes: a node (machine) or a label's value.
type graphGroup struct {
	Name string  `json:"name"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
	W    float64 `json:"w"`
	H    float64 `json:"h"`
}

// graphEdge is the traffic of a window from one node of the graph to
// another with one verdict.
type graphEdge struct {
	ID      string `json:"id"`
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Verdict string `json:"verdict"`
	Flows   int64  `json:"flows"`
	Bytes   int64  `json:"bytes"`
}

// graphView is what the page draws.
type graphView struct {
	Nodes     []graphNode  `json:"nodes"`
	Groups    []graphGroup `json:"groups"`
	Edges     []graphEdge  `json:"edges"`
	Since     time.Time    `json:"since"`
	Until     time.Time    `json:"until"`
	GroupBy   string       `json:"group_by"`
	LabelKeys []string     `json:"label_keys"`
	Truncated bool         `json:"truncated,omitempty"`
	// Missing names the control plane's servers that did not answer: the
	// graph lacks their records.
	Missing []string `json:"missing,omitempty"`
	Width   float64  `json:"width"`
	Height  float64  `json:"height"`
}

func edgeID(src, dst, verdict string) string { return src + "|" + dst + "|" + verdict }

// graphEnds maps a stored edge's ends to the graph's nodes: services by
// name (printable: a name a node wrote may hold a direction override),
// everything else to the world. A gateway's HTTP records (the requests it
// refused) are edges from the world to the gateway. It returns false for
// an edge the graph does not draw (world to world, findings).
func (s *Server) graphEnds(class int, src, dst string) (string, string, bool) {
	if class == flow.ClassDetectionFinding {
		return "", "", false
	}
	a, b := flow.PrintableText(s.serviceName(src)), flow.PrintableText(s.serviceName(dst))
	if a == "" {
		a = world
	}
	if class == flow.ClassHTTPActivity {
		b = gatewayService
	}
	if b == "" {
		b = world
	}
	return a, b, !(a == world && b == world)
}

// maxGraphEdges bounds what the dashboard asks the server for: the
// heaviest edges of the window.
const maxGraphEdges = 20000

// fetchGraph asks the control plane for the window's edges, mesh and
// gateway apart (so the gateway's refusals become edges into it), and for
// the registry, and builds the view grouped by groupBy ("node", or
// "label:KEY").
func (s *Server) fetchGraph(ctx context.Context, window time.Duration, groupBy string) (*graphView, error) {
	var regs []api.ServiceListing
	if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathServices, nil, &regs); err != nil {
		return nil, err
	}
	since := s.cfg.Now().Add(-window)
	v := &graphView{Since: since.UTC(), GroupBy: groupBy}
	acc := map[string]*graphEdge{}
	var order []string
	for _, class := range []int{flow.ClassNetworkActivity, flow.ClassHTTPActivity} {
		q := api.FlowValues(flow.Filter{Class: class, Since: since, Limit: maxGraphEdges}, 0)
		var g api.FlowGraph
		if err := s.cfg.Control.Call(ctx, http.MethodGet, api.PathFlowGraph+"?"+q.Encode(), nil, &g); err != nil {
			return nil, err
		}
		v.Truncated = v.Truncated || g.Truncated
		v.Missing = append(v.Missing, g.Missing...)
		if g.Until.After(v.Until) {
			v.Until = g.Until
		}
		for _, e := range g.Edges {
			a, b, ok := s.graphEnds(class, e.Src, e.Dst)
			if !ok {
				continue
			}
			id := edgeID(a, b, e.Verdict)
			ge := acc[id]
			if ge == nil {
				ge = &graphEdge{ID: id, Src: a, Dst: b, Verdict: e.Verdict}
				acc[id] = ge
				order = append(order, id)
			}
			ge.Flows = flow.AddCount(ge.Flows, e.Flows)
			ge.Bytes = flow.AddCount(ge.Bytes, e.Bytes)
		}
	}
	for _, id := range order {
		v.Edges = append(v.Edges, *acc[id])
	}
	layout(v, regs)
	return v, nil
}

// Layout measures, in the page's SVG units.
const (
	cellW   = 210.0
	cellH   = 84.0
	boxPad  = 24.0
	boxHead = 28.0
	gap     = 48.0
)

// layout places every node: one box per group, its services on a grid
// sorted by name, the boxes in rows of about the same width, the world's
// box first. It is deterministic and linear in the number of nodes, so a
// thousand services lay out in well under a frame.
func layout(v *graphView, regs []api.ServiceListing) {
	byName := map[string]*graphNode{}
	keys := map[string]bool{}
	add := func(n graphNode) {
		if byName[n.ID] == nil {
			nn := n
			byName[n.ID] = &nn
		}
	}
	for _, r := range regs {
		for k := range r.Labels {
			keys[k] = true
		}
		add(graphNode{ID: r.Name, Kind: "service", Node: r.Node, Labels: r.Labels, Registered: true})
	}
	for _, e := range v.Edges {
		for _, end := range []string{e.Src, e.Dst} {
			if end == world {
				add(graphNode{ID: world, Kind: world})
			} else {
				add(graphNode{ID: end, Kind: "service"})
			}
		}
	}
	v.LabelKeys = []string{}
	for k := range keys {
		v.LabelKeys = append(v.LabelKeys, k)
	}
	sort.Strings(v.LabelKeys)
	label, byLabel := strings.CutPrefix(v.GroupBy, "label:")
	groups := map[string][]*graphNode{}
	for _, n := range byName {
		switch {
		case n.Kind == world:
			n.Group = "outside the mesh"
		case !n.Registered:
			n.Group = "not registered"
		case byLabel:
			n.Group = label + "=" + n.Labels[label]
			if _, ok := n.Labels[label]; !ok {
				n.Group = "no " + label
			}
		default:
			n.Group = "node " + n.Node
		}
		groups[n.Group] = append(groups[n.Group], n)
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		if (a == "outside the mesh") != (b == "outside the mesh") {
			return a == "outside the mesh"
		}
		return a < b
	})
	// Boxes: each a near-square grid of its nodes.
	type box struct {
		name       string
		nodes      []*graphNode
		cols, rows int
		w, h       float64
	}
	var boxes []box
	area := 0.0
	for _, g := range names {
		ns := groups[g]
		sort.Slice(ns, func(i, j int) bool { return ns[i].ID < ns[j].ID })
		cols := int(math.Ceil(math.Sqrt(float64(len(ns)) * cellH / cellW * 2)))
		cols = max(1, min(cols, len(ns)))
		rows := (len(ns) + cols - 1) / cols
		b := box{name: g, nodes: ns, cols: cols, rows: rows,
			w: float64(cols)*cellW + 2*boxPad, h: float64(rows)*cellH + 2*boxPad + boxHead}
		area += (b.w + gap) * (b.h + gap)
		boxes = append(boxes, b)
	}
	// Rows of boxes, about 16:10 overall.
	rowW := math.Max(math.Sqrt(area*1.6), 0)
	x, y, rowH := gap, gap, 0.0
	for _, b := range boxes {
		if x > gap && x+b.w > rowW {
			x, y, rowH = gap, y+rowH+gap, 0
		}
		v.Groups = append(v.Groups, graphGroup{Name: b.name, X: x, Y: y, W: b.w, H: b.h})
		for i, n := range b.nodes {
			n.X = x + boxPad + float64(i%b.cols)*cellW + cellW/2
			n.Y = y + boxHead + boxPad + float64(i/b.cols)*cellH + cellH/2
			v.Nodes = append(v.Nodes, *n)
		}
		x += b.w + gap
		rowH = math.Max(rowH, b.h)
		v.Width = math.Max(v.Width, x)
	}
	v.Height = y + rowH + gap
	if v.Nodes == nil {
		v.Nodes = []graphNode{}
	}
	if v.Edges == nil {
		v.Edges = []graphEdge{}
	}
}

// graphQuery reads the graph's window and grouping.
func graphQuery(q url.Values) (time.Duration, string, error) {
	w, err := window(q.Get("window"), time.Hour)
	if err != nil {
		return 0, "", err
	}
	g := q.Get("group")
	switch {
	case g == "" || g == "node":
		g = "node"
	case strings.HasPrefix(g, "label:") && len(g) <= 6+63:
	default:
		return 0, "", badRequest("group %q: want node or label:KEY", g)
	}
	return w, g, nil
}

// liveDelta is what the graph's live stream sends: the edges whose sums
// grew since the last delta, by how much.
type liveDelta struct {
	Edges []graphEdge `json:"edges"`
	// Dropped counts records the control plane could not send in time.
	Dropped uint64 `json:"dropped,omitempty"`
}

// liveEdges adds records to per-edge increments until taken.
type liveEdges struct {
	acc   map[string]*graphEdge
	order []string
}

func (l *liveEdges) add(s *Server, r *flow.Record) {
	e := flow.EdgeOf(r)
	if e.Flows == 0 && e.Bytes == 0 {
		return
	}
	a, b, ok := s.graphEnds(r.ClassUID, e.Src, e.Dst)
	if !ok {
		return
	}
	id := edgeID(a, b, e.Verdict)
	if l.acc == nil {
		l.acc = map[string]*graphEdge{}
	}
	ge := l.acc[id]
	if ge == nil {
		ge = &graphEdge{ID: id, Src: a, Dst: b, Verdict: e.Verdict}
		l.acc[id] = ge
		l.order = append(l.order, id)
	}
	ge.Flows = flow.AddCount(ge.Flows, e.Flows)
	ge.Bytes = flow.AddCount(ge.Bytes, e.Bytes)
}

// take returns the increments so far and starts over.
func (l *liveEdges) take() []graphEdge {
	out := make([]graphEdge, 0, len(l.order))
	for _, id := range l.order {
		out = append(out, *l.acc[id])
	}
	l.acc, l.order = nil, nil
	return out
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
