package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"moat/internal/config"
	"moat/internal/flow"
)

func flowsCommand() *Command {
	var (
		dataDir, from, to, verdict, rule, top, output string
		since                                         time.Duration
		limit                                         int
		follow                                        bool
		poll                                          time.Duration
	)
	return &Command{
		Name:    "flows",
		Summary: "query stored flow records and security events",
		Usage:   "[flags]",
		Help: "flows reads the flow store under --data-dir (read-only, beside a running server)\n" +
			"and prints the newest records matching the filters, oldest first, or with\n" +
			"--top talkers the source-destination pairs with the most bytes. --follow then\n" +
			"keeps printing new records as they are stored. --from and --to take a service\n" +
			"name, a SPIFFE ID or an IP address.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", "", "moat's data directory (default $MOAT_DATA_DIR, else /var/lib/moat); flows live in its flows/ subdirectory")
			fs.StringVar(&from, "from", "", "source service name, SPIFFE ID or IP")
			fs.StringVar(&to, "to", "", "destination service name, SPIFFE ID or IP")
			fs.StringVar(&verdict, "verdict", "", "allow, deny or audit")
			fs.StringVar(&rule, "rule", "", "name of the deciding rule (or WAF rule ID)")
			fs.Func("since", "only records of the last `duration` (e.g. 15m, 1h, 7d)", func(v string) error {
				d, err := config.ParseDuration(v)
				if err != nil {
					return err
				}
				since = d
				return nil
			})
			fs.StringVar(&top, "top", "", "\"talkers\": the source-destination pairs with the most bytes")
			fs.StringVar(&output, "output", "table", "table or json (one JSON object per line)")
			fs.IntVar(&limit, "limit", 100, "most records to print (0 prints every record), or talkers (default 10)")
			fs.BoolVar(&follow, "follow", false, "keep printing records as they are stored")
			fs.DurationVar(&poll, "poll", time.Second, "how often --follow looks for new records")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("flows takes no arguments, got %q", fs.Arg(0))
			}
			if output != "table" && output != "json" {
				return usagef("flows: --output %q: want table or json", output)
			}
			if top != "" && top != "talkers" {
				return usagef("flows: --top %q: the only ranking is \"talkers\"", top)
			}
			if top != "" && follow {
				return usagef("flows: --top and --follow do not go together")
			}
			if limit < 0 || since < 0 || poll <= 0 {
				return usagef("flows: --limit and --since must not be negative, --poll must be positive")
			}
			limitSet := false
			fs.Visit(func(fl *flag.Flag) { limitSet = limitSet || fl.Name == "limit" })
			if top != "" && !limitSet {
				limit = 10
			}
			if top != "" && limit == 0 {
				return usagef("flows: --top talkers needs a positive --limit")
			}
			if dataDir == "" {
				dataDir = envDefault(e, "MOAT_DATA_DIR", "/var/lib/moat")
			}
			f := flow.Filter{From: from, To: to, Verdict: verdict, Rule: rule, Limit: limit}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			if err := f.Validate(); err != nil {
				return usagef("%v", err)
			}
			st, err := flow.OpenStore(flow.StoreConfig{Dir: filepath.Join(dataDir, "flows"), ReadOnly: true})
			if err != nil {
				return err
			}
			defer st.Close()
			if top != "" {
				ts, err := st.TopTalkers(ctx, f, limit)
				if err != nil {
					return err
				}
				return printTalkers(e.Stdout, output, ts)
			}
			var mark *flow.Cursor
			if follow {
				if mark, err = st.Mark(ctx); err != nil {
					return err
				}
			}
			recs, err := st.Query(ctx, f)
			if err != nil {
				return err
			}
			p := newRecordPrinter(e.Stdout, output)
			shown := map[string]bool{}
			for _, r := range recs {
				shown[r.Metadata.UID] = follow
				if err := p.print(r); err != nil {
					return err
				}
			}
			if err := p.flush(); err != nil || !follow {
				return err
			}
			f.Limit = 0
			return st.Tail(ctx, mark, f, poll, func(r flow.Record) error {
				if shown[r.Metadata.UID] {
					return nil
				}
				if err := p.print(r); err != nil {
					return err
				}
				return p.flush()
			})
		},
	}
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
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	}
	if !p.header {
		p.header = true
		fmt.Fprintln(p.tw, "TIME\tCLASS\tSRC\tDST\tPORT\tVERDICT\tRULE\tBYTES")
	}
	src, dst, port := "-", "-", "-"
	if e := r.SrcEndpoint; e != nil {
		src = endpointLabel(e)
	}
	if e := r.DstEndpoint; e != nil {
		dst = endpointLabel(e)
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
	_, err := fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
		time.UnixMilli(r.Time).UTC().Format("2006-01-02T15:04:05.000Z"), className(r.ClassUID), src, dst, port, v, rule, bytes)
	return err
}

func (p *recordPrinter) flush() error { return p.tw.Flush() }

func endpointLabel(e *flow.Endpoint) string {
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
			b, err := json.Marshal(t)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SRC\tDST\tFLOWS\tBYTES\tDENIED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", t.Src, t.Dst, t.Flows, t.Bytes, t.Denied)
	}
	return tw.Flush()
}
