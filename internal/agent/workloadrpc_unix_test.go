//go:build linux || darwin || freebsd

package agent

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"moat/internal/testkit"
)

// TestWorkloadRPCWithGRPCClient serves the hand-written gRPC server on a
// Unix socket and calls it with gRPC's own client and the SPIFFE
// specification's generated stubs (go-spiffe's): what a real workload's
// library speaks.
func TestWorkloadRPCWithGRPCClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "w.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan struct{})
	sent := []x509SVID{
		{ID: "spiffe://td/svc/a", Chain: []byte("chain-a"), Key: []byte("key-a"), Bundle: []byte("ca"), Hint: "a"},
		{ID: "spiffe://td/svc/b", Chain: []byte("chain-b"), Key: []byte("key-b")},
	}
	var callerUID atomic.Int64
	callerUID.Store(-1)
	srv := &rpcServer{service: "SpiffeWorkloadAPI", methods: map[string]rpcMethod{
		"FetchX509SVID": func(s *rpcStream, req []byte) error {
			if err := checkCall(s); err != nil {
				return err
			}
			callerUID.Store(int64(s.caller.UID))
			if err := s.Send(encodeX509SVIDResponse(sent)); err != nil {
				return err
			}
			select {
			case <-next:
			case <-s.ctx.Done():
				return nil
			}
			if err := s.Send(encodeX509SVIDResponse(sent[1:])); err != nil {
				return err
			}
			return rpcErrorf(rpcPermissionDenied, "no identity for uid 5 — 100%% refused")
		},
		"FetchX509Bundles": func(s *rpcStream, req []byte) error {
			return s.Send(encodeX509BundlesResponse(map[string][]byte{"spiffe://td": []byte("der")}))
		},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveRPC(ctx, ln, srv, nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serveRPC: %v", err)
		}
	}()

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := workload.NewSpiffeWorkloadAPIClient(conn)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()

	t.Log("without the security header the call is refused")
	st, err := client.FetchX509SVID(cctx, &workload.X509SVIDRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("without the header: %v, want InvalidArgument", err)
	}

	hctx := metadata.AppendToOutgoingContext(cctx, "workload.spiffe.io", "true")
	st, err = client.FetchX509SVID(hctx, &workload.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want []x509SVID) {
		t.Helper()
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Svids) != len(want) {
			t.Fatalf("got %d SVIDs, want %d", len(resp.Svids), len(want))
		}
		for i, g := range resp.Svids {
			w := want[i]
			if g.SpiffeId != w.ID || !bytes.Equal(g.X509Svid, w.Chain) || !bytes.Equal(g.X509SvidKey, w.Key) ||
				!bytes.Equal(g.Bundle, w.Bundle) || g.Hint != w.Hint {
				t.Errorf("SVID %d decoded as %v, sent %+v", i, g, w)
			}
		}
	}
	check(sent)
	if got := callerUID.Load(); got != int64(os.Getuid()) {
		t.Errorf("the caller's uid read as %d, the test runs as %d", got, os.Getuid())
	}
	close(next)
	check(sent[1:])
	_, err = st.Recv()
	if s, _ := status.FromError(err); s.Code() != codes.PermissionDenied || s.Message() != "no identity for uid 5 — 100% refused" {
		t.Errorf("the stream ended with %v, want PermissionDenied and its message", err)
	}

	bs, err := client.FetchX509Bundles(hctx, &workload.X509BundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Bundles) != 1 || string(b.Bundles["spiffe://td"]) != "der" {
		t.Errorf("bundles decoded as %v", b.Bundles)
	}

	t.Log("methods the agent does not serve are Unimplemented")
	if _, err := client.FetchJWTSVID(hctx, &workload.JWTSVIDRequest{Audience: []string{"x"}}); status.Code(err) != codes.Unimplemented {
		t.Errorf("FetchJWTSVID: %v, want Unimplemented", err)
	}
}

// TestWorkloadRPCBoundsCallsPerUID: a call to the Workload API is held
// for as long as its client wishes, some 15 KB of the agent's memory
// each, and every local user may make them. One uid holds at most
// maxRPCCallsPerUID at once; the call past it is answered
// ResourceExhausted, and once calls end their places are given back.
func TestWorkloadRPCBoundsCallsPerUID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "w.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Int64
	srv := &rpcServer{service: "SpiffeWorkloadAPI", methods: map[string]rpcMethod{
		"FetchX509SVID": func(s *rpcStream, req []byte) error {
			held.Add(1)
			defer held.Add(-1)
			if err := s.Send(encodeX509SVIDResponse([]x509SVID{{ID: "spiffe://td/svc/a"}})); err != nil {
				return err
			}
			<-s.ctx.Done()
			return nil
		},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveRPC(ctx, ln, srv, nil) }()
	defer func() {
		cancel()
		<-served
	}()

	cctx, ccancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "workload.spiffe.io", "true"), 60*time.Second)
	defer ccancel()
	// A connection carries maxRPCStreams calls at once: as many
	// connections as the bound needs, and one more.
	var clients []workload.SpiffeWorkloadAPIClient
	for range maxRPCCallsPerUID/maxRPCStreams + 1 {
		conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		clients = append(clients, workload.NewSpiffeWorkloadAPIClient(conn))
	}
	open := func(ctx context.Context, c workload.SpiffeWorkloadAPIClient) error {
		st, err := c.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		return err
	}
	first, endFirst := context.WithCancel(cctx)
	for i := range maxRPCCallsPerUID {
		ctx := cctx
		if i == 0 {
			ctx = first
		}
		if err := open(ctx, clients[i/maxRPCStreams]); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	last := clients[len(clients)-1]
	if err := open(cctx, last); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call %d of one uid: %v, want ResourceExhausted", maxRPCCallsPerUID+1, err)
	}
	if n := held.Load(); n != maxRPCCallsPerUID {
		t.Fatalf("%d calls held, want %d", n, maxRPCCallsPerUID)
	}
	t.Log("a call that ends gives its place back")
	endFirst()
	testkit.WaitFor(t, "a new call taken once one ended", func() bool { return open(cctx, last) == nil })
}
