package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"moat/internal/api"
	"moat/internal/config"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
)

// flowSource is where "moat flows" reads: the control plane's API, or a
// data directory opened offline with its key-encryption key.
type flowSource interface {
	// query returns the newest records matching f, oldest first, and
	// whether more matched than were returned.
	query(ctx context.Context, f flow.Filter) ([]flow.Record, bool, error)
	talkers(ctx context.Context, f flow.Filter, n int) ([]flow.Talker, error)
	// follow calls fn with the newest f.Limit records matching f, then with
	// each matching record as it is stored, until ctx ends.
	follow(ctx context.Context, f flow.Filter, fn func(flow.Record) error) error
	close()
}

func flowsCommand() *Command {
	var (
		af           adminFlags
		kek          seal.KEKConfig
		ff           filterFlags
		dataDir, top string
		limit        int
		follow       bool
		poll         time.Duration
	)
	return &Command{
		Name:    "flows",
		Summary: "query and export flow records and security events",
		Usage:   "[flags]",
		Sub:     []*Command{flowsExportCommand()},
		Help: "flows asks the control plane (--server, with admin credentials of any role) for\n" +
			"the newest records matching the filters and prints them oldest first, or with\n" +
			"--top talkers the source-destination pairs with the most bytes. --follow then\n" +
			"keeps printing records as they are stored. --from and --to take a service name,\n" +
			"a SPIFFE ID or an IP address.\n\n" +
			"With --data-dir, flows reads a server's data directory instead (offline, or\n" +
			"beside a running server, read-only), opening its keyring with the\n" +
			"key-encryption key (--kek-*).",
		Flags: func(fs *flag.FlagSet) {
			af.register(fs)
			fs.StringVar(&dataDir, "data-dir", "", "read this server data directory instead of asking the server")
			kekFlags(fs, &kek)
			ff.register(fs)
			fs.StringVar(&top, "top", "", "\"talkers\": the source-destination pairs with the most bytes")
			fs.IntVar(&limit, "limit", 0, fmt.Sprintf("most records to print, or talkers (default 100 records, 10 talkers; at most %d from a server)", api.MaxFlowRecords))
			fs.BoolVar(&follow, "follow", false, "keep printing records as they are stored")
			fs.DurationVar(&poll, "poll", time.Second, "how often --follow looks for new records in --data-dir")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "flows"); err != nil {
				return err
			}
			if af.output != "table" && af.output != "json" {
				return usagef("flows: --output %q: want table or json", af.output)
			}
			if top != "" && top != "talkers" {
				return usagef("flows: --top %q: the only ranking is \"talkers\"", top)
			}
			if top != "" && follow {
				return usagef("flows: --top and --follow do not go together")
			}
			if limit < 0 || poll <= 0 {
				return usagef("flows: --limit and --since must not be negative, --poll must be positive")
			}
			if limit == 0 {
				limit = 100
				if top != "" {
					limit = 10
				}
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			f.Limit = limit
			var src flowSource
			if dataDir != "" {
				if err := kek.Validate("kek"); err != nil {
					return usagef("%v", err)
				}
				kr, _, err := openKeyring(e, &kek, dataDir, false)
				if err != nil {
					return fmt.Errorf("%s: %w", dataDir, err)
				}
				st, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dataDir, "flows"), ReadOnly: true, Sealer: kr.AEAD()})
				if err != nil {
					return err
				}
				src = &localFlows{st: st, poll: poll}
			} else {
				if limit > api.MaxFlowRecords {
					return usagef("flows: --limit %d: a server answers at most %d (use --data-dir for more)", limit, api.MaxFlowRecords)
				}
				c, err := af.connect(ctx, e)
				if err != nil {
					return err
				}
				src = &remoteFlows{c: c.Client, stderr: e.Stderr}
			}
			defer src.close()
			if top != "" {
				ts, err := src.talkers(ctx, f, limit)
				if err != nil {
					return err
				}
				return printTalkers(e.Stdout, af.output, ts)
			}
			p := newRecordPrinter(e.Stdout, af.output)
			if follow {
				return src.follow(ctx, f, func(r flow.Record) error {
					if err := p.print(r); err != nil {
						return err
					}
					return p.flush()
				})
			}
			recs, truncated, err := src.query(ctx, f)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := p.print(r); err != nil {
					return err
				}
			}
			if truncated && limit == api.MaxFlowRecords {
				fmt.Fprintf(e.Stderr, "moat: flows: more than %d records match; narrow with --since, --from, --to or --verdict\n", limit)
			}
			return p.flush()
		},
	}
}

// filterFlags are the record filters of flows and flows export.
type filterFlags struct {
	from, to, verdict, rule string
	since                   time.Duration
}

func (ff *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&ff.from, "from", "", "source service name, SPIFFE ID or IP")
	fs.StringVar(&ff.to, "to", "", "destination service name, SPIFFE ID or IP")
	fs.StringVar(&ff.verdict, "verdict", "", "allow, deny or audit")
	fs.StringVar(&ff.rule, "rule", "", "name of the deciding rule (or WAF rule ID)")
	fs.Func("since", "only records of the last `duration` (e.g. 15m, 1h, 7d)", func(v string) error {
		d, err := config.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < 0 {
			return fmt.Errorf("%s is negative", v)
		}
		ff.since = d
		return nil
	})
}

// filter is the flow.Filter the flags name, as of now.
func (ff *filterFlags) filter(now time.Time) (flow.Filter, error) {
	f := flow.Filter{From: ff.from, To: ff.to, Verdict: ff.verdict, Rule: ff.rule}
	if ff.since > 0 {
		f.Since = now.Add(-ff.since)
	}
	if err := f.Validate(); err != nil {
		return f, usagef("%v", err)
	}
	return f, nil
}

// remoteFlows reads through the control plane's API.
type remoteFlows struct {
	c      *api.Client
	stderr io.Writer
}

func (r *remoteFlows) close() { r.c.Close() }

func (r *remoteFlows) query(ctx context.Context, f flow.Filter) ([]flow.Record, bool, error) {
	var out api.FlowRecords
	if err := r.c.Call(ctx, http.MethodGet, api.PathFlowQuery+"?"+api.FlowValues(f, 0).Encode(), nil, &out); err != nil {
		return nil, false, err
	}
	r.partial(out.Missing)
	return out.Records, out.Truncated, nil
}

func (r *remoteFlows) talkers(ctx context.Context, f flow.Filter, n int) ([]flow.Talker, error) {
	f.Limit = 0
	var out api.FlowTalkers
	if err := r.c.Call(ctx, http.MethodGet, api.PathFlowTalkers+"?"+api.FlowValues(f, n).Encode(), nil, &out); err != nil {
		return nil, err
	}
	r.partial(out.Missing)
	return out.Talkers, nil
}

// partial warns that servers of the cluster did not answer: their records
// are not in what is printed.
func (r *remoteFlows) partial(missing []string) {
	if len(missing) > 0 {
		fmt.Fprintf(r.stderr, "warning: partial answer: no records from %s\n", strings.Join(missing, ", "))
	}
}

// follow streams the cluster's records through the server it reaches (which
// relays every member's). When the stream breaks (that server stopped), it
// connects again, to another server if that one is gone, asking for the
// records since the last one shown, and shows each record once.
func (r *remoteFlows) follow(ctx context.Context, f flow.Filter, fn func(flow.Record) error) error {
	var dropped uint64
	missing := ""
	seen := flow.NewSeenUIDs(1 << 16)
	wait := 200 * time.Millisecond
	for {
		err := r.c.FollowFlows(ctx, api.FlowValues(f, 0), func(fr api.FlowFrame) error {
			if fr.Dropped > dropped {
				fmt.Fprintf(r.stderr, "moat: flows: %d records missed: this stream fell behind the server\n", fr.Dropped-dropped)
				dropped = fr.Dropped
			}
			if fr.Heartbeat {
				wait = 200 * time.Millisecond
				if m := strings.Join(fr.Missing, ", "); m != missing {
					if m == "" {
						fmt.Fprintf(r.stderr, "moat: flows: following every server again: %s\n", strings.Join(fr.Servers, ", "))
					} else {
						fmt.Fprintf(r.stderr, "warning: not following %s: their records are not shown until they are back\n", m)
					}
					missing = m
				}
			}
			if fr.Record == nil || !seen.Add(fr.Record.Metadata.UID) {
				return nil
			}
			if t := time.UnixMilli(fr.Record.Time); t.After(f.Since) {
				f.Since = t
			}
			return fn(*fr.Record)
		})
		if ctx.Err() != nil {
			return nil
		}
		var se *api.StatusError
		if errors.As(err, &se) && se.Code < 500 {
			return err
		}
		if err == nil {
			// The server ends a stream whose certificate ended (an MFA
			// session's 15 minutes, a revocation); the next one shows
			// what this client holds now.
			fmt.Fprintf(r.stderr, "moat: flows: the server ended the follow stream; reconnecting\n")
		} else {
			fmt.Fprintf(r.stderr, "moat: flows: follow stream broke (%v); reconnecting\n", err)
		}
		// A new stream from a server dropped nothing yet.
		dropped = 0
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// localFlows reads a data directory's flow store, read-only.
type localFlows struct {
	st   *flowstore.Store
	poll time.Duration
}

func (l *localFlows) close() { l.st.Close() }

func (l *localFlows) query(ctx context.Context, f flow.Filter) ([]flow.Record, bool, error) {
	want := f.Limit
	f.Limit++
	recs, err := l.st.Query(ctx, f)
	if err != nil || len(recs) <= want {
		return recs, false, err
	}
	return recs[len(recs)-want:], true, nil
}

func (l *localFlows) talkers(ctx context.Context, f flow.Filter, n int) ([]flow.Talker, error) {
	return l.st.TopTalkers(ctx, f, n)
}

func (l *localFlows) follow(ctx context.Context, f flow.Filter, fn func(flow.Record) error) error {
	mark, err := l.st.Mark(ctx)
	if err != nil {
		return err
	}
	recs, err := l.st.Query(ctx, f)
	if err != nil {
		return err
	}
	shown := map[string]bool{}
	for _, r := range recs {
		shown[r.Metadata.UID] = true
		if err := fn(r); err != nil {
			return err
		}
	}
	f.Limit = 0
	return l.st.Tail(ctx, mark, f, l.poll, func(r flow.Record) error {
		if shown[r.Metadata.UID] {
			return nil
		}
		return fn(r)
	})
}

type recordPrinter struct {
	out    io.Writer
	json   bool
	tw     *tabwriter.Writer
	header bool
}

func newRecordPrinter(w io.Writer, output string) *recordPrinter {
	return &recordPrinter{out: w, json: output == "json", tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

func (p *recordPrinter) print(r flow.Record) error {
	if p.json {
		return writeJSONLine(p.out, r)
	}
	if !p.header {
		p.header = true
		fmt.Fprintln(p.tw, "TIME\tCLASS\tEVENT\tSRC\tDST\tPORT\tVERDICT\tRULE\tBYTES")
	}
	src, dst, port := "-", "-", "-"
	if e := r.SrcEndpoint; e != nil {
		src = endpointLabel(&r, e)
	}
	if e := r.DstEndpoint; e != nil {
		dst = endpointLabel(&r, e)
		if e.Port > 0 {
			port = strconv.Itoa(e.Port)
		}
	}
	rule := "-"
	switch {
	case r.FirewallRule != nil && r.FirewallRule.Name != "":
		rule = r.FirewallRule.Name
	case r.Unmapped != nil && len(r.Unmapped.Rules) > 0:
		rule = r.Unmapped.Rules[0]
	}
	var bytes int64
	if r.Traffic != nil {
		bytes = r.Traffic.Bytes
	}
	v := r.Verdict()
	if v == "" {
		v = "-"
	}
	_, err := fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
		time.UnixMilli(r.Time).UTC().Format("2006-01-02T15:04:05.000Z"), className(r.ClassUID), cell(activityName(r)), cell(src), cell(dst), port, cell(v), cell(rule), bytes)
	return err
}

func (p *recordPrinter) flush() error { return p.tw.Flush() }

// endpointLabel names side e of r: by its service, SPIFFE ID or name,
// else as the identity a refused peer claimed ("claimed: ID", which it is
// not), else by its address.
func endpointLabel(r *flow.Record, e *flow.Endpoint) string {
	if c := flow.ShownClaim(r, e); c != "" {
		return c
	}
	switch {
	case e.SvcName != "":
		return e.SvcName
	case e.UID != "":
		return e.UID
	case e.Name != "":
		return e.Name
	case e.IP != "":
		return e.IP
	}
	return "-"
}

// activityName says which event of a connection a network record is: its
// open, an interim count while it lasts, its close, or a refusal.
func activityName(r flow.Record) string {
	if r.ClassUID != flow.ClassNetworkActivity {
		return "-"
	}
	switch r.ActivityID {
	case flow.ActivityOpen:
		return "open"
	case flow.ActivityClose:
		return "close"
	case flow.ActivityReset:
		return "reset"
	case flow.ActivityFail:
		return "fail"
	case flow.ActivityRefuse:
		return "refuse"
	case flow.ActivityTraffic:
		return "traffic"
	}
	return strconv.Itoa(r.ActivityID)
}

func className(c int) string {
	switch c {
	case flow.ClassNetworkActivity:
		return "network"
	case flow.ClassHTTPActivity:
		return "http"
	case flow.ClassDetectionFinding:
		return "finding"
	}
	return strconv.Itoa(c)
}

func printTalkers(w io.Writer, output string, ts []flow.Talker) error {
	if output == "json" {
		for _, t := range ts {
			if err := writeJSONLine(w, t); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SRC\tDST\tFLOWS\tBYTES\tDENIED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", cell(t.Src), cell(t.Dst), t.Flows, t.Bytes, t.Denied)
	}
	return tw.Flush()
}
