package server

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/store"
)

func flowRecord(uid, src, dst string, bytes int64, at time.Time) flow.Record {
	r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", at)
	r.Metadata.UID = uid
	r.SrcEndpoint = &flow.Endpoint{IP: "10.0.0.1", Port: 40000, UID: "spiffe://example.org/svc/" + src, SvcName: src}
	r.DstEndpoint = &flow.Endpoint{IP: "10.0.0.2", Port: 5432, UID: "spiffe://example.org/svc/" + dst, SvcName: dst}
	r.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "tcp", ProtocolNum: 6, DirectionID: flow.DirectionInbound}
	r.Traffic = &flow.Traffic{BytesIn: bytes / 2, BytesOut: bytes - bytes/2, Bytes: bytes}
	r.StartTime, r.EndTime = r.Time-1000, r.Time
	r.Unmapped = &flow.Moat{Verdict: flow.VerdictAllow, Node: "n1"}
	r.ActionID, r.Action = flow.ActionAllowed, "Allowed"
	return r
}

// TestClusterFlows runs two servers over one store, each keeping the flow
// records its agents shipped to it: a query through either answers for
// both, a record stored by both (a batch retried across a failover) counts
// once in the records and in the talkers, and a member that does not answer is named.
func TestClusterFlows(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := Init(ctx, st, InitConfig{TrustDomain: "example.org", AdminDir: filepath.Join(dir, "admin")}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	parts := map[string][]flow.Record{
		"s1": {flowRecord("a", "web", "db", 100, t0), flowRecord("shared", "web", "db", 10, t0.Add(2*time.Second))},
		"s2": {flowRecord("b", "web", "db", 200, t0.Add(time.Second)), flowRecord("shared", "web", "db", 10, t0.Add(2*time.Second)),
			flowRecord("c", "api", "db", 50, t0.Add(3*time.Second))},
	}
	servers := map[string]*Server{}
	for _, name := range []string{"s1", "s2"} {
		fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, name, "flows")})
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		if _, err := fs.Ingest(ctx, parts[name]); err != nil {
			t.Fatal(err)
		}
		srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Name: name, Store: st, Flows: fs, Logger: slog.New(slog.DiscardHandler),
			Audit: audit.RecorderFunc(func(context.Context, audit.Entry) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Run(ctx)
		servers[name] = srv
	}
	waitUntil(t, "both members listed", func() bool {
		ms, err := servers["s1"].Members(ctx)
		return err == nil && len(ms) == 2 && ms[0].Alive && ms[1].Alive
	})

	got, err := servers["s1"].ClusterFlows(ctx, api.PeerFlowQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, r := range got.Records {
		uids = append(uids, r.Metadata.UID)
	}
	if want := []string{"a", "b", "shared", "c"}; !slices.Equal(uids, want) || len(got.Missing) != 0 || !slices.Equal(got.Servers, []string{"s1", "s2"}) {
		t.Fatalf("cluster query through s1 = %v from %v (missing %v), want %v from both", uids, got.Servers, got.Missing, want)
	}
	limited, err := servers["s2"].ClusterFlows(ctx, api.PeerFlowQuery{Filter: flow.Filter{Limit: 2}})
	if err != nil || len(limited.Records) != 2 || limited.Records[1].Metadata.UID != "c" || !limited.Truncated {
		t.Fatalf("limit 2 through s2 = %+v, %v; want the two newest, truncated", limited.Records, err)
	}
	talk, err := servers["s2"].ClusterFlows(ctx, api.PeerFlowQuery{Talkers: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(talk.Talkers) != 2 || talk.Talkers[0].Bytes != 310 || talk.Talkers[0].Flows != 3 || talk.Talkers[1].Bytes != 50 || talk.Talkers[1].Flows != 1 {
		t.Fatalf("cluster talkers = %+v; want web→db 310 bytes over 3 flows (the record both servers hold once), then api→db 50", talk.Talkers)
	}

	edges, err := servers["s1"].ClusterFlows(ctx, api.PeerFlowQuery{Edges: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(edges.Edges) != 2 || edges.Edges[0].Bytes != 310 || edges.Edges[0].Flows != 3 || edges.Edges[1].Bytes != 50 {
		t.Fatalf("cluster edges = %+v; want web→db 310 bytes over 3 flows, then api→db 50", edges.Edges)
	}

	t.Log("a member that does not answer is named, and the rest still answers")
	if err := putJSON(ctx, st, prefixMember+"s3", memberRecord{Name: "s3", Addr: "127.0.0.1:1", Started: time.Now(), Seen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err = servers["s1"].ClusterFlows(ctx, api.PeerFlowQuery{})
	if err != nil || len(got.Records) != 4 || len(got.Missing) != 1 || got.Missing[0][:2] != "s3" {
		t.Fatalf("with s3 unreachable: %d records, missing %v, %v", len(got.Records), got.Missing, err)
	}
	t.Logf("missing: %v", got.Missing)

	t.Log("only servers may ask for a member's part")
	anon := api.NewClient(servers["s1"].Addr(), api.ClientTLS(nil, servers["s2"].trust))
	defer anon.Close()
	if err := anon.Call(ctx, "POST", api.PathPeerFlows, api.PeerFlowQuery{}, nil); err == nil {
		t.Fatal("an anonymous caller read a member's flow records")
	}
	for _, path := range []string{api.PathPeerFollow, api.PathPeerFlowBackup} {
		var got bytes.Buffer
		if _, err := anon.Download(ctx, "GET", path, nil, &got); err == nil || got.Len() > 0 {
			t.Fatalf("an anonymous caller was answered on %s: %v, %d bytes", path, err, got.Len())
		}
	}
}
