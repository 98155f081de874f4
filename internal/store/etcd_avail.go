package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Stale records that a read was answered from one etcd member's copy
// because the cluster had no quorum. See AllowStale.
type Stale struct {
	mu     sync.Mutex // guards reason
	reason string
}

// Reason says why the answer may be stale, or "" when every read under
// the context was a quorum read.
func (s *Stale) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *Stale) mark(reason string) {
	s.mu.Lock()
	s.reason = reason
	s.mu.Unlock()
}

type staleKey struct{}

// AllowStale returns a context under which Get and List, when the cluster
// cannot answer with quorum, answer from the copy of whichever member is
// reachable instead of failing, and note it in the returned Stale. Writes
// never fall back. The embedded store always answers with its one copy.
func AllowStale(ctx context.Context) (context.Context, *Stale) {
	s := &Stale{}
	return context.WithValue(ctx, staleKey{}, s), s
}

// staleReadTimeout bounds the fallback read from one member.
const staleReadTimeout = 2 * time.Second

// read is a Get of key (with opts) bounded by the store's deadline; a
// read that cannot reach quorum falls back to a serializable read when
// ctx allows it (AllowStale).
func (s *Etcd) read(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, key, opts...)
	if err == nil {
		return resp, nil
	}
	err = s.fail(ctx, cctx, err)
	stale, _ := ctx.Value(staleKey{}).(*Stale)
	if stale == nil || !errors.Is(err, ErrUnavailable) {
		return nil, err
	}
	sctx, scancel := context.WithTimeout(ctx, staleReadTimeout)
	defer scancel()
	resp, serr := s.cli.Get(sctx, key, append(opts, clientv3.WithSerializable())...)
	if serr != nil {
		return nil, err
	}
	stale.mark(err.Error() + "; answered from one member's copy, which may be stale")
	return resp, nil
}

// isUnavailable reports whether err means the cluster did not answer: the
// call's deadline passed, or etcd said it has no leader or timed out.
func isUnavailable(callCtx context.Context, err error) bool {
	if callCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, e := range []error{rpctypes.ErrNoLeader, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail,
		rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrLeaderChanged, rpctypes.ErrNotCapable} {
		if errors.Is(err, e) {
			return true
		}
	}
	switch st, _ := status.FromError(err); st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.Unknown:
		// A member without a leader times its own read-index wait out and
		// answers with the bare context error.
		return strings.Contains(st.Message(), context.DeadlineExceeded.Error())
	}
	return false
}

// unavailable names the cause of a failure and returns ErrUnavailable
// with it. It asks every voting member, at once, first whether it takes a
// connection at all and then for its status: no member can be reached
// (out of reach); fewer than a majority of the voting members can be
// reached (no quorum: said as soon as the majority is gone, not only once
// a survivor's election timed out); a majority is there but does not all
// answer, or none of those answering has a leader; or the cluster is
// whole but slow. A member that refuses the connection is down, said at
// once; one that takes it but answers late is slow, not down, so a loaded
// survivor is never taken for a lost one. The members are those the
// cluster lists (a serializable member list, which any one member
// answers); when none answers that, the configured endpoints.
//
// budget is what the failed call was given (the store's timeout), cut to
// what is left of ctx's deadline: the member list gets half of it, the
// probes of the members all of it, so the cause is named within one and
// a half times the call's own bound.
func unavailable(ctx context.Context, cli *clientv3.Client, endpoints []string, budget time.Duration, cause error) error {
	if d, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(d))
	}
	if budget <= 0 {
		return fmt.Errorf("%w: etcd did not answer in time: %v", ErrUnavailable, cause)
	}
	ctx = context.WithoutCancel(ctx)
	probe, voters := endpoints, len(endpoints)
	mctx, cancel := context.WithTimeout(ctx, budget/2)
	ml, err := cli.MemberList(mctx, clientv3.WithSerializable())
	cancel()
	if err == nil {
		var urls []string
		for _, m := range ml.Members {
			if !m.IsLearner && len(m.ClientURLs) > 0 {
				urls = append(urls, m.ClientURLs[0])
			}
		}
		if len(urls) > 0 {
			probe, voters = urls, len(urls)
		}
	}
	answers := make(chan memberState, len(probe))
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	for _, ep := range probe {
		go func() { answers <- probeMember(pctx, cli, ep) }()
	}
	up, answered, leader := 0, 0, 0
	var down []string
	for range probe {
		a := <-answers
		switch {
		case a.down != "":
			down = append(down, a.down)
			continue
		case a.answered && a.leader:
			leader++
			fallthrough
		case a.answered:
			answered++
		}
		up++
	}
	slices.Sort(down)
	switch {
	case up == 0:
		return fmt.Errorf("%w: etcd out of reach (no member of %v answers: %s)", ErrUnavailable, endpoints, strings.Join(down, ", "))
	case up < voters/2+1:
		return fmt.Errorf("%w: no etcd quorum (%d of %d members reachable; %s)", ErrUnavailable, up, voters, strings.Join(down, ", "))
	case answered < voters/2+1:
		return fmt.Errorf("%w: etcd did not answer in time (%d of %d members reachable, %d of them answer within %s): %v",
			ErrUnavailable, up, voters, answered, budget, cause)
	case leader == 0:
		return fmt.Errorf("%w: no etcd quorum (%d of %d members answer, none has a leader)", ErrUnavailable, answered, voters)
	}
	return fmt.Errorf("%w: etcd did not answer in time (%d of %d members up): %v", ErrUnavailable, up, voters, cause)
}

// memberState is what probeMember found of one member.
type memberState struct {
	// down, when set, says which member could not be reached and why.
	down string
	// answered: it answered its status; leader: it knows a leader.
	answered, leader bool
}

// probeMember dials ep once, plainly, to tell a member that is gone (the
// connection refused, or not made before ctx ends) from one that is there,
// then asks it for its status within ctx.
func probeMember(ctx context.Context, cli *clientv3.Client, ep string) memberState {
	network, addr := endpointAddr(ep)
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		reason := "no connection in time"
		var op *net.OpError
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			reason = "connection refused"
		case errors.As(err, &op) && !op.Timeout() && ctx.Err() == nil:
			reason = op.Err.Error()
		}
		return memberState{down: ep + " (" + reason + ")"}
	}
	c.Close()
	st, err := cli.Status(ctx, ep)
	return memberState{answered: err == nil, leader: err == nil && st.Leader != 0}
}

// endpointAddr is the network and address an etcd endpoint names: a URL
// (http, https, unix, unixs) or a bare host:port, or unix:path.
func endpointAddr(ep string) (network, addr string) {
	scheme, rest, ok := strings.Cut(ep, "://")
	if !ok {
		if path, ok := strings.CutPrefix(ep, "unix:"); ok {
			return "unix", path
		}
		if path, ok := strings.CutPrefix(ep, "unixs:"); ok {
			return "unix", path
		}
		return "tcp", ep
	}
	if scheme == "unix" || scheme == "unixs" {
		return "unix", rest
	}
	if u, err := url.Parse(ep); err == nil && u.Host != "" {
		return "tcp", u.Host
	}
	return "tcp", rest
}
