package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Stale records that a read was answered from one etcd member's copy
// because the cluster had no quorum. See AllowStale.
type Stale struct {
	mu     sync.Mutex // guards what follows
	reason string
	// member is the client URL of the member whose copy answered: later
	// reads under the same context ask it first.
	member string
}

// Reason says why the answer may be stale, or "" when every read under
// the context was a quorum read.
func (s *Stale) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *Stale) mark(reason, member string) {
	s.mu.Lock()
	s.reason, s.member = reason, member
	s.mu.Unlock()
}

func (s *Stale) from() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.member
}

type staleKey struct{}

// AllowStale returns a context under which Get, List and Rev, when the
// cluster cannot answer with quorum, answer from one member's own copy
// instead of failing, and note it in the returned Stale: the cause, and
// which member answered at which revision. The copy is asked of every
// member that takes a connection, within the read's own bound (its
// context's deadline, or the store's timeout), and the freshest that comes
// is used; when none comes, the error names every member and why it gave
// none. Once one read under the context was answered so, the later ones
// ask that member's copy straight away (given half of their bound, then
// trying the cluster as the first did), so a reader making several reads
// waits for the lost quorum once and reads one member's copy throughout.
// Writes never fall back. The embedded store always answers with its one
// copy. A member's copy may be behind its cluster (cut off from it, or
// slow): a read under AllowStale serves display alone, never a decision
// that lets a caller in or hands out a credential.
func AllowStale(ctx context.Context) (context.Context, *Stale) {
	s := &Stale{}
	return context.WithValue(ctx, staleKey{}, s), s
}

// NoStale returns ctx without what AllowStale gave it: reads under it are
// quorum reads, or fail. A check of who may go on (a stream's caller)
// made while serving a read allowed to be stale reads under it.
func NoStale(ctx context.Context) context.Context {
	return context.WithValue(ctx, staleKey{}, (*Stale)(nil))
}

// read is a Get of key (with opts) within the call's bound; under
// AllowStale, a read that cannot reach quorum is answered from a member's
// own copy.
func (s *Etcd) read(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	stale, _ := ctx.Value(staleKey{}).(*Stale)
	var copyOf *memberRead
	if stale != nil {
		copyOf = &memberRead{key: key, opts: opts}
		if ep := stale.from(); ep != "" {
			cctx, cancel := s.bound(ctx)
			defer cancel()
			if resp, err := s.readCopy(cctx, ep, copyOf); err == nil {
				return resp, nil
			}
			ctx = cctx
		}
	}
	var resp *clientv3.GetResponse
	found, err := s.run(ctx, copyOf, func(cctx context.Context) (err error) {
		resp, err = s.cli.Get(cctx, key, opts...)
		return err
	})
	switch {
	case err == nil:
		return resp, nil
	case copyOf == nil || found == nil:
		return nil, err
	}
	m := found.freshest()
	if m == nil {
		if found.voters == 0 {
			return nil, fmt.Errorf("%w; no time was left to ask a member for its copy", err)
		}
		return nil, fmt.Errorf("%w; no member's own copy came either: %s", err, found.copyFailures())
	}
	stale.mark(fmt.Sprintf("%v; answered from the copy of member %s at revision %d, which may be stale",
		err, m.ep, m.copy.Header.GetRevision()), m.ep)
	return m.copy, nil
}

// readCopy asks the member at ep for its own copy of r, within half of
// what is left of ctx's bound.
func (s *Etcd) readCopy(ctx context.Context, ep string, r *memberRead) (*clientv3.GetResponse, error) {
	deadline, _ := ctx.Deadline()
	ctx, cancel := context.WithTimeout(ctx, time.Until(deadline)/2)
	defer cancel()
	conn, err := s.cli.Dial(ep)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return getCopy(ctx, s.cli, conn, r)
}

// getCopy is a serializable read of r on conn: what its member holds,
// answered without its cluster.
func getCopy(ctx context.Context, cli *clientv3.Client, conn *grpc.ClientConn, r *memberRead) (*clientv3.GetResponse, error) {
	opts := append(slices.Clip(r.opts), clientv3.WithSerializable())
	return clientv3.NewKVFromKVClient(pb.NewKVClient(conn), cli).Get(ctx, r.key, opts...)
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

// etcdCall is what the calls of a store on etcd share: the client, the
// configured endpoints and the bound of one call.
type etcdCall struct {
	cli       *clientv3.Client
	endpoints []string
	// timeout bounds a call whose context has no earlier deadline.
	timeout time.Duration
	// tls is the client's TLS configuration (nil: none given).
	tls *tls.Config
	// closed, when set, says the store was closed; nil means never.
	closed *atomic.Bool
}

// memberRead is a read that, when the cluster cannot answer it with
// quorum, may be answered from one member's own copy (see AllowStale).
type memberRead struct {
	key  string
	opts []clientv3.OpOption
}

// bound returns the context a call runs under: ctx, bounded by the
// timeout when it has no earlier deadline.
func (c *etcdCall) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= c.timeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// run runs op under the call's context (see bound) and turns its failure
// into one that wraps ErrClosed or the caller's cancellation when either
// explains it, and ErrUnavailable naming the cause (see survey.cause) when
// the cluster did not answer.
//
// A failed call ends, cause included, at its own deadline: the members
// are asked why alongside the call, from the moment half of its bound has
// passed without an answer (or it failed, if sooner) until its deadline.
// What they had not said by then is told as such ("no connection in
// time", not answering), never waited for. A call answered in the first
// half of its bound asks nobody. When copyOf is set, every member that
// takes a connection is asked for its own copy of that read as well; the
// survey returned with an ErrUnavailable holds the copies that came.
func (c *etcdCall) run(ctx context.Context, copyOf *memberRead, op func(context.Context) error) (*survey, error) {
	cctx, cancel := c.bound(ctx)
	defer cancel()
	d := &diagnosis{c: c, ctx: cctx, copyOf: copyOf, done: make(chan struct{})}
	deadline, _ := cctx.Deadline()
	t := time.AfterFunc(time.Until(deadline)/2, d.start)
	err := op(cctx)
	t.Stop()
	switch {
	case err == nil:
		return nil, nil
	case c.closed != nil && c.closed.Load():
		return nil, ErrClosed
	case errors.Is(ctx.Err(), context.Canceled):
		return nil, ctx.Err()
	case !isUnavailable(cctx, err):
		return nil, err
	}
	d.start()
	<-d.done
	return &d.found, d.found.cause(c.endpoints, err)
}

// diagnosis is the one survey of the members made alongside a call.
type diagnosis struct {
	c      *etcdCall
	ctx    context.Context // the call's: it ends at the call's deadline
	copyOf *memberRead
	once   sync.Once
	done   chan struct{} // closed once found is set
	found  survey
}

func (d *diagnosis) start() {
	d.once.Do(func() {
		go func() {
			defer close(d.done)
			d.found = d.c.survey(d.ctx, d.copyOf)
		}()
	})
}

// survey is what asking the voting members found.
type survey struct {
	// voters is how many voting members were asked; 0 when there was no
	// time left to ask any.
	voters int
	// members is what each one said, in the order of their endpoints.
	members []memberState
	// within is how long the members were given.
	within time.Duration
}

// survey asks every voting member, at once, until ctx ends: first whether
// it takes a connection at all, then for its status and, with copyOf, for
// its own copy of that read. The members are those the cluster lists (a
// serializable member list, which any one member answers, given half of
// the time there is); when none answers that, the configured endpoints.
func (c *etcdCall) survey(ctx context.Context, copyOf *memberRead) survey {
	deadline, _ := ctx.Deadline()
	within := time.Until(deadline)
	if within <= 0 || ctx.Err() != nil {
		return survey{}
	}
	probe := c.endpoints
	mctx, cancel := context.WithTimeout(ctx, within/2)
	ml, err := c.cli.MemberList(mctx, clientv3.WithSerializable())
	cancel()
	if err == nil {
		var urls []string
		for _, m := range ml.Members {
			if !m.IsLearner && len(m.ClientURLs) > 0 {
				urls = append(urls, m.ClientURLs[0])
			}
		}
		if len(urls) > 0 {
			probe = urls
		}
	}
	answers := make(chan memberState, len(probe))
	for _, ep := range probe {
		go func() { answers <- probeMember(ctx, c.cli, c.tls, ep, copyOf) }()
	}
	sv := survey{voters: len(probe), within: within}
	for range probe {
		sv.members = append(sv.members, <-answers)
	}
	slices.SortFunc(sv.members, func(a, b memberState) int { return strings.Compare(a.ep, b.ep) })
	return sv
}

// cause names why the call failed with err, from what the members said:
// no member can be reached (out of reach); fewer than a majority of the
// voting members can be reached (no quorum: said as soon as the majority
// is gone, not only once a survivor's election timed out); a majority is
// there but does not all answer, or none of those answering has a
// leader; or the cluster is whole but slow. A member that refuses the
// connection is down; one that takes it but answers late is slow, not
// down, so a loaded survivor is never taken for a lost one.
func (sv *survey) cause(endpoints []string, err error) error {
	if sv.voters == 0 {
		return fmt.Errorf("%w: etcd did not answer in time: %v", ErrUnavailable, err)
	}
	up, answered, leader := 0, 0, 0
	// notes names every member that is down and every one that took the
	// connection but did not answer, each with why.
	var notes []string
	for _, m := range sv.members {
		switch {
		case m.down != "":
			notes = append(notes, m.ep+" ("+m.down+")")
			continue
		case m.answered && m.leader:
			leader++
			fallthrough
		case m.answered:
			answered++
		default:
			notes = append(notes, m.ep+" (took the connection, no answer in time)")
		}
		up++
	}
	note := strings.Join(notes, ", ")
	if note != "" {
		note = "; " + note
	}
	voters := sv.voters
	switch {
	case up == 0:
		return fmt.Errorf("%w: etcd out of reach (no member of %v answers%s)", ErrUnavailable, endpoints, note)
	case up < voters/2+1:
		return fmt.Errorf("%w: no etcd quorum (%d of %d members reachable%s)", ErrUnavailable, up, voters, note)
	case answered < voters/2+1:
		return fmt.Errorf("%w: etcd did not answer in time (%d of %d members reachable, %d of them answer within %s%s): %v",
			ErrUnavailable, up, voters, answered, sv.within.Round(time.Millisecond), note, err)
	case leader == 0:
		return fmt.Errorf("%w: no etcd quorum (%d of %d members answer, none has a leader%s)", ErrUnavailable, answered, voters, note)
	}
	return fmt.Errorf("%w: etcd did not answer in time (%d of %d members up%s): %v", ErrUnavailable, up, voters, note, err)
}

// freshest is the member copy at the highest revision, or nil when no
// member gave its copy.
func (sv *survey) freshest() *memberState {
	var best *memberState
	for i := range sv.members {
		m := &sv.members[i]
		if m.copy != nil && (best == nil || m.copy.Header.GetRevision() > best.copy.Header.GetRevision()) {
			best = m
		}
	}
	return best
}

// copyFailures says, for every member asked for its copy, why none came.
func (sv *survey) copyFailures() string {
	var out []string
	for _, m := range sv.members {
		why := m.down
		if why == "" {
			why = m.copyErr
		}
		out = append(out, m.ep+" ("+why+")")
	}
	return strings.Join(out, ", ")
}

// memberState is what probeMember found of one member.
type memberState struct {
	// ep is the member's client URL.
	ep string
	// down, when set, says why the member could not be reached.
	down string
	// answered: it answered its status; leader: it knows a leader.
	answered, leader bool
	// copy is the member's own copy of the read asked for, or nil, and
	// then copyErr says why.
	copy    *clientv3.GetResponse
	copyErr string
}

// probeMember dials ep once, plainly, to tell a member that is gone (the
// connection refused, or not made before ctx ends) from one that is there,
// then asks it for its status and, with copyOf, for its own copy of that
// read (a serializable read, which the member answers without its
// cluster), both within ctx.
func probeMember(ctx context.Context, cli *clientv3.Client, tc *tls.Config, ep string, copyOf *memberRead) memberState {
	m := memberState{ep: ep}
	network, addr := endpointAddr(ep)
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		m.down = "no connection in time"
		var op *net.OpError
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			m.down = "connection refused"
		case errors.As(err, &op) && !op.Timeout() && ctx.Err() == nil:
			m.down = op.Err.Error()
		}
		return m
	}
	if why := tlsRefused(ctx, c, endpointTLS(ep, tc), addr); why != "" {
		m.down = "TLS handshake failed: " + why
		return m
	}
	c.Close()
	conn, err := cli.Dial(ep)
	if err != nil {
		m.copyErr = err.Error()
		return m
	}
	defer conn.Close()
	var wg sync.WaitGroup
	if copyOf != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := getCopy(ctx, cli, conn, copyOf)
			if err != nil {
				m.copyErr = answerError(ctx, err)
				return
			}
			m.copy = resp
		}()
	} else {
		m.copyErr = "not asked"
	}
	st, err := clientv3.NewMaintenanceFromMaintenanceClient(pb.NewMaintenanceClient(conn), cli).Status(ctx, ep)
	m.answered, m.leader = err == nil, err == nil && st.Leader != 0
	wg.Wait()
	return m
}

// endpointTLS is the TLS configuration the client uses for ep, or nil for
// plaintext: an https or unixs URL is TLS (with the system's roots when
// none was given), a bare host:port is TLS when a configuration was given.
func endpointTLS(ep string, tc *tls.Config) *tls.Config {
	scheme, _, hasScheme := strings.Cut(ep, "://")
	switch {
	case hasScheme && (scheme == "https" || scheme == "unixs"), strings.HasPrefix(ep, "unixs:"):
		if tc == nil {
			return &tls.Config{}
		}
		return tc
	case !hasScheme && !strings.HasPrefix(ep, "unix:"):
		return tc
	}
	return nil
}

// tlsRefused takes c through a TLS handshake with tc (nothing when tc is
// nil) and the opening of HTTP/2, as the client would, and says why the
// member refused it: a certificate the client cannot verify, or the
// member's alert about the client's (with TLS 1.3 that comes after the
// client's side of the handshake ended, so it is read). It closes c.
// "" means no refusal was seen before ctx ended.
func tlsRefused(ctx context.Context, c net.Conn, tc *tls.Config, addr string) string {
	defer c.Close()
	if tc == nil {
		return ""
	}
	cfg := tc.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	cfg.NextProtos = []string{"h2"}
	t := tls.Client(c, cfg)
	if err := t.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return ""
		}
		return err.Error()
	}
	if d, ok := ctx.Deadline(); ok {
		t.SetDeadline(d)
	}
	// The client preface and an empty SETTINGS frame: a member that took
	// the client answers with its own SETTINGS.
	if _, err := t.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
		return tlsAlert(err)
	}
	var b [1]byte
	if _, err := t.Read(b[:]); err != nil {
		return tlsAlert(err)
	}
	return ""
}

// tlsAlert is err's text when it is the peer's TLS alert, else "".
func tlsAlert(err error) string {
	var alert tls.AlertError
	if errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:") {
		return err.Error()
	}
	return ""
}

// answerError says why a member that took the connection did not answer.
func answerError(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "no answer in time"
	}
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
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
