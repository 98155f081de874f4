package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// serveWorkloadAPI serves the SPIFFE Workload API on the Unix socket until
// ctx ends.
func (a *Agent) serveWorkloadAPI(ctx context.Context) error {
	path := a.cfg.Socket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("agent: workload socket: %w", err)
	}
	if dir := closedAncestor(path); dir != "" {
		a.log.Warn("the Workload API socket is under a directory other users cannot enter; workloads not running as root will not reach it", "socket", path, "dir", dir)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: workload socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent: workload socket: %w", err)
	}
	// Any local user may connect; what each gets is decided by its uid.
	if err := os.Chmod(path, 0o777); err != nil {
		ln.Close()
		return fmt.Errorf("agent: workload socket: %w", err)
	}
	srv := grpc.NewServer(grpc.Creds(peerCreds{}))
	workload.RegisterSpiffeWorkloadAPIServer(srv, &workloadAPI{a: a})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("workload API listening", "socket", path)
	select {
	case <-ctx.Done():
		srv.Stop()
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("agent: workload API: %w", err)
	}
}

// peerCreds reads the connecting process's credentials (peerCredentials)
// at accept time; it adds no encryption, as the Workload API runs on a local
// socket.
type peerCreds struct{}

// callerInfo is the AuthInfo of a Workload API connection.
type callerInfo struct {
	UID, PID int // PID is -1 where the system does not tell
}

func (callerInfo) AuthType() string { return "peercred" }

func (peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, errors.New("agent: workload API accepts Unix sockets only")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var info callerInfo
	var credErr error
	if err := raw.Control(func(fd uintptr) { info, credErr = peerCredentials(int(fd)) }); err != nil {
		return nil, nil, err
	}
	if credErr != nil {
		return nil, nil, fmt.Errorf("agent: peer credentials: %w", credErr)
	}
	return conn, info, nil
}

func (peerCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("agent: peerCreds is server-side only")
}
func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}
func (p peerCreds) Clone() credentials.TransportCredentials { return p }
func (peerCreds) OverrideServerName(string) error           { return nil }

type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	a *Agent
}

// checkCall enforces the Workload API's security header and returns the
// caller's uid.
func checkCall(ctx context.Context) (int, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return 0, status.Error(codes.InvalidArgument, "security header missing from request")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return 0, status.Error(codes.PermissionDenied, "unknown caller")
	}
	ci, ok := p.AuthInfo.(callerInfo)
	if !ok {
		return 0, status.Error(codes.PermissionDenied, "unknown caller")
	}
	return ci.UID, nil
}

func (w *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	ctx := stream.Context()
	uid, err := checkCall(ctx)
	if err != nil {
		return err
	}
	for {
		changed := w.a.SVIDChanged()
		resp, err := w.a.x509Response(uid)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func (w *workloadAPI) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	ctx := stream.Context()
	if _, err := checkCall(ctx); err != nil {
		return err
	}
	for {
		changed := w.a.SVIDChanged()
		resp := &workload.X509BundlesResponse{Bundles: map[string][]byte{
			w.a.td.IDString(): w.a.bundleDER(),
		}}
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func (a *Agent) bundleDER() []byte {
	var out []byte
	if b := a.trust.Bundle(); b != nil {
		for _, r := range b.X509Authorities() {
			out = append(out, r.Raw...)
		}
	}
	return out
}

// x509Response lists the SVIDs uid may hold. With none, the Workload API
// answers PermissionDenied, as the specification asks.
func (a *Agent) x509Response(uid int) (*workload.X509SVIDResponse, error) {
	bundle := a.bundleDER()
	a.mu.RLock()
	defer a.mu.RUnlock()
	resp := &workload.X509SVIDResponse{}
	for _, r := range a.sortedLocalLocked() {
		s := a.svids[r.Name]
		if s == nil || s.cert == nil {
			continue
		}
		if r.UID != nil && *r.UID != uid {
			continue
		}
		if r.UID == nil && a.cfg.RequireUID {
			continue
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(s.cert.PrivateKey)
		if err != nil {
			return nil, status.Error(codes.Internal, "key encoding failed")
		}
		var chain []byte
		for _, c := range s.cert.Certificate {
			chain = append(chain, c...)
		}
		resp.Svids = append(resp.Svids, &workload.X509SVID{
			SpiffeId: s.id.String(), X509Svid: chain, X509SvidKey: keyDER, Bundle: bundle, Hint: r.Name,
		})
	}
	if len(resp.Svids) == 0 {
		return nil, status.Error(codes.PermissionDenied, "no identity issued")
	}
	return resp, nil
}

// closedAncestor returns the first directory above path that users other
// than its owner cannot enter (no search permission for others), or "".
func closedAncestor(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return dir
		}
		if dir == filepath.Dir(dir) {
			return ""
		}
	}
}
