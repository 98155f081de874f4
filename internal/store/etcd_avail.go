package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// probeTimeout bounds the status probe that names the cause of a failure.
const probeTimeout = time.Second

// unavailable names the cause of a failure, asking every voting member for
// its status, at once and briefly, and returns ErrUnavailable with it:
// no member answers (out of reach); fewer than a majority of the voting
// members answer, or none of those has a leader (no quorum: said as soon
// as the majority is gone, not only once a survivor's election timed
// out); or the cluster is whole but slow. The members are those the
// cluster lists (a serializable member list, which any one member
// answers); when none answers that, the configured endpoints.
func unavailable(ctx context.Context, cli *clientv3.Client, endpoints []string, cause error) error {
	probe, voters := endpoints, len(endpoints)
	mctx, cancel := context.WithTimeout(ctx, probeTimeout)
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
	type answer struct {
		ok, leader bool
	}
	answers := make(chan answer, len(probe))
	for _, ep := range probe {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			st, err := cli.Status(pctx, ep)
			answers <- answer{ok: err == nil, leader: err == nil && st.Leader != 0}
		}()
	}
	up, leader := 0, 0
	for range probe {
		a := <-answers
		if a.ok {
			up++
		}
		if a.leader {
			leader++
		}
	}
	switch {
	case up == 0:
		return fmt.Errorf("%w: etcd out of reach (no member of %v answers)", ErrUnavailable, endpoints)
	case up < voters/2+1:
		return fmt.Errorf("%w: no etcd quorum (%d of %d members answer)", ErrUnavailable, up, voters)
	case leader == 0:
		return fmt.Errorf("%w: no etcd quorum (%d of %d members answer, none has a leader)", ErrUnavailable, up, voters)
	}
	return fmt.Errorf("%w: etcd did not answer in time (%d of %d members up): %v", ErrUnavailable, up, voters, cause)
}
