package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"moat/internal/flow"
)

// Paths of the flow-record reads (role viewer). Each server answers for the
// records it stores; a client of several servers asks each and merges
// (records by UID and time, talkers by summing the pairs), so the answers
// carry nothing that only one server could merge.
const (
	PathFlowQuery   = "/v1/admin/flows"
	PathFlowTalkers = "/v1/admin/flows/talkers"
	PathFlowFollow  = "/v1/admin/flows/follow"
)

// MaxFlowRecords is the most records one query answers; a query that
// matches more gets the newest MaxFlowRecords and Truncated set.
const MaxFlowRecords = 10000

// PeerReplay is the PathPeerFollow parameter (an RFC 3339 time) asking a
// member for every record of its own from that time on (the newest
// MaxFlowRecords of them, the rest counted in Dropped) before the records
// it stores next: a relay's follow of a member that joined late or whose
// stream broke, so that none stored meanwhile is skipped. With "limit"
// too, the member sends its newest Limit records as well; without it,
// only those from the replay time on.
const PeerReplay = "replay"

// PeerAfter is the PathPeerFollow parameter asking a member for every
// record of its own stored after a position (a FlowFrame's Resume it sent
// before), whatever the records' times: the newest MaxFlowRecords of them
// (the rest counted in Dropped), then the records it stores next. It is
// what a relay asks a member whose stream broke, so that a record stored
// meanwhile with an old time (an agent that kept it while cut off) is not
// skipped. Not with PeerReplay.
const PeerAfter = "after"

// MaxPeerResume bounds a PeerAfter position (a FlowFrame's Resume); a
// member whose position would be longer sends none.
const MaxPeerResume = 32 << 10

// maxFilterValue bounds each name in a flow filter.
const maxFilterValue = 512

// FlowRecords answers a query: the newest matching records, oldest first.
type FlowRecords struct {
	Records []flow.Record `json:"records"`
	// Truncated says that more records matched than were answered.
	Truncated bool `json:"truncated,omitempty"`
	// Servers are the cluster's servers whose records are in the answer;
	// Missing names those that did not answer (the answer is partial).
	Servers []string `json:"servers,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// FlowTalkers answers a top-talkers query, most bytes first.
type FlowTalkers struct {
	Talkers []flow.Talker `json:"talkers"`
	// Servers and Missing are as in FlowRecords.
	Servers []string `json:"servers,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// FlowFrame is one line of the follow stream: a record, or a heartbeat that
// keeps the stream's liveness visible. Dropped counts the records this
// stream missed so far because the client read too slowly.
type FlowFrame struct {
	Record    *flow.Record `json:"record,omitempty"`
	Heartbeat bool         `json:"heartbeat,omitempty"`
	Dropped   uint64       `json:"dropped,omitempty"`
	// Servers and Missing, on every heartbeat of a stream that follows a
	// cluster, name the servers whose records the stream carries now and
	// those it does not (out of reach; being reconnected).
	Missing []string `json:"missing,omitempty"`
	Servers []string `json:"servers,omitempty"`
	// Resume, on a heartbeat of a member's stream to its relay
	// (PathPeerFollow), is the member's storage position after every
	// record the stream carried so far: opaque, given back in PeerAfter.
	Resume string `json:"resume,omitempty"`
}

// FlowValues encodes a filter (and, for talkers, n) as query parameters.
func FlowValues(f flow.Filter, n int) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("from", f.From)
	set("to", f.To)
	set("verdict", f.Verdict)
	set("rule", f.Rule)
	if f.Class != 0 {
		v.Set("class", strconv.Itoa(f.Class))
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if n != 0 {
		v.Set("n", strconv.Itoa(n))
	}
	return v
}

// ParseFlowValues decodes what FlowValues encoded, refusing unknown
// parameters, oversized names and bad numbers or times.
func ParseFlowValues(v url.Values) (f flow.Filter, n int, err error) {
	for k, vs := range v {
		switch k {
		case "from", "to", "verdict", "rule", "class", "since", "until", "limit", "n":
		default:
			return f, 0, fmt.Errorf("unknown parameter %q", k)
		}
		if len(vs) != 1 {
			return f, 0, fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
		if len(vs[0]) > maxFilterValue {
			return f, 0, fmt.Errorf("parameter %q: longer than %d bytes", k, maxFilterValue)
		}
	}
	f.From, f.To, f.Verdict, f.Rule = v.Get("from"), v.Get("to"), v.Get("verdict"), v.Get("rule")
	num := func(k string) (int, error) {
		s := v.Get(k)
		if s == "" {
			return 0, nil
		}
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 {
			return 0, fmt.Errorf("%s %q: want a number ≥ 0", k, s)
		}
		return i, nil
	}
	if f.Class, err = num("class"); err != nil {
		return f, 0, err
	}
	if f.Limit, err = num("limit"); err != nil {
		return f, 0, err
	}
	if n, err = num("n"); err != nil {
		return f, 0, err
	}
	tm := func(k string) (time.Time, error) {
		s := v.Get(k)
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time", k, s)
		}
		return t, nil
	}
	if f.Since, err = tm("since"); err != nil {
		return f, 0, err
	}
	if f.Until, err = tm("until"); err != nil {
		return f, 0, err
	}
	if err := f.Validate(); err != nil {
		return f, 0, err
	}
	return f, n, nil
}

// FollowFlows streams the follow answer of path (PathFlowFollow with its
// query) to fn until ctx ends (it then returns nil), the stream breaks or fn
// fails.
func (c *Client) FollowFlows(ctx context.Context, query url.Values, fn func(FlowFrame) error) error {
	return c.stream(ctx, PathFlowFollow+"?"+query.Encode(), 0, func(line []byte) error {
		var fr FlowFrame
		if err := json.Unmarshal(line, &fr); err != nil {
			return fmt.Errorf("api: follow frame: %w", err)
		}
		return fn(fr)
	})
}

// FollowPeer streams another server's own records (PathPeerFollow), as
// FollowFlows does; a stream silent for longer than idle is broken off
// (ErrWatchSilent).
func (c *Client) FollowPeer(ctx context.Context, query url.Values, idle time.Duration, fn func(FlowFrame) error) error {
	return c.stream(ctx, PathPeerFollow+"?"+query.Encode(), idle, func(line []byte) error {
		var fr FlowFrame
		if err := json.Unmarshal(line, &fr); err != nil {
			return fmt.Errorf("api: follow frame: %w", err)
		}
		return fn(fr)
	})
}

// ErrWatchSilent is returned by a stream (Watch) that carried nothing, not
// even a heartbeat, for longer than its idle limit: a half-open connection
// (a peer gone without a reset, a proxy that stopped forwarding).
var ErrWatchSilent = errors.New("api: watch stream silent")

// stream GETs path and hands each line of the answer to fn until ctx ends
// (it then returns nil), the stream breaks, fn fails or (idle > 0) no line
// arrives for idle.
func (c *Client) stream(ctx context.Context, path string, idle time.Duration, fn func([]byte) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var alive *time.Timer
	if idle > 0 {
		alive = time.AfterFunc(idle, func() { cancel(ErrWatchSilent) })
		defer alive.Stop()
	}
	ended := func() (bool, error) {
		if cause := context.Cause(ctx); errors.Is(cause, ErrWatchSilent) {
			// Try another server first next time: this one may be hung.
			c.srv.bad()
			return true, fmt.Errorf("%w for %v: reconnecting", ErrWatchSilent, idle)
		}
		return ctx.Err() != nil, nil
	}
	resp, err := c.do(ctx, failoverAny, func(base string) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	})
	if err != nil {
		if done, werr := ended(); done {
			return werr
		}
		return fmt.Errorf("api: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		if alive != nil {
			alive.Reset(idle)
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if done, werr := ended(); done {
		return werr
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("api: GET %s: %w", path, err)
	}
	return fmt.Errorf("api: GET %s: %w: stream ended", path, ErrUnavailable)
}
