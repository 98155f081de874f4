package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	a.log.Info("workload API listening", "socket", path)
	err = serveRPC(ctx, ln, &rpcServer{service: "SpiffeWorkloadAPI", methods: map[string]rpcMethod{
		"FetchX509SVID":    a.fetchX509SVID,
		"FetchX509Bundles": a.fetchX509Bundles,
	}}, a.workloadShed)
	if err != nil {
		return fmt.Errorf("agent: workload API: %w", err)
	}
	return nil
}

// workloadShed counts a Workload API connection closed at accept for a
// bound, and logs the first of a run and then one in a thousand.
func (a *Agent) workloadShed(uid int) {
	if n := a.workloadShedCount.Add(1); n%1000 == 1 {
		a.log.Warn("too many Workload API connections; closing new ones", "uid", uid,
			"per_uid", maxRPCConnsPerUID, "in_all", maxRPCConns, "closed", n)
	}
}

// callerInfo is who called on the Workload API socket.
type callerInfo struct {
	UID, PID int // PID is -1 where the system does not tell
}

// checkCall enforces the Workload API's security header.
func checkCall(s *rpcStream) error {
	if v := s.header.Values("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return rpcErrorf(rpcInvalidArgument, "security header missing from request")
	}
	return nil
}

// fetchX509SVID streams the SVIDs the caller's uid may hold, again after
// each change.
func (a *Agent) fetchX509SVID(s *rpcStream, _ []byte) error {
	if err := checkCall(s); err != nil {
		return err
	}
	for {
		changed := a.SVIDChanged()
		svids, err := a.x509SVIDs(s.caller.UID)
		if err != nil {
			return err
		}
		if err := s.Send(encodeX509SVIDResponse(svids)); err != nil {
			return err
		}
		select {
		case <-s.ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// fetchX509Bundles streams the trust domain's bundle, again after each
// change.
func (a *Agent) fetchX509Bundles(s *rpcStream, _ []byte) error {
	if err := checkCall(s); err != nil {
		return err
	}
	for {
		changed := a.SVIDChanged()
		if err := s.Send(encodeX509BundlesResponse(map[string][]byte{a.td.IDString(): a.bundleDER()})); err != nil {
			return err
		}
		select {
		case <-s.ctx.Done():
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

// x509SVIDs lists the SVIDs uid may hold. With none, the Workload API
// answers PermissionDenied, as the specification asks.
func (a *Agent) x509SVIDs(uid int) ([]x509SVID, error) {
	bundle := a.bundleDER()
	a.mu.RLock()
	defer a.mu.RUnlock()
	var svids []x509SVID
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
			return nil, rpcErrorf(rpcInternal, "key encoding failed")
		}
		var chain []byte
		for _, c := range s.cert.Certificate {
			chain = append(chain, c...)
		}
		svids = append(svids, x509SVID{ID: s.id.String(), Chain: chain, Key: keyDER, Bundle: bundle, Hint: r.Name})
	}
	if len(svids) == 0 {
		return nil, rpcErrorf(rpcPermissionDenied, "no identity issued")
	}
	return svids, nil
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
