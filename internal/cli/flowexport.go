package cli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/seal"
)

func flowsExportCommand() *Command {
	var (
		af                         adminFlags
		kek                        seal.KEKConfig
		ff                         filterFlags
		dataDir, out, format, acct string
		maxMB                      int
	)
	return &Command{
		Name:    "export",
		Summary: "write flow records to rotated, gzipped files (OCSF JSON lines or VPC Flow Logs)",
		Usage:   "--out DIR [--format ocsf|vpc] [filters] [--data-dir DIR]",
		Help: "export writes the records matching the filters, oldest first, into DIR as files\n" +
			"of at most --max-mb each, gzipped (flows-TIMESTAMP.jsonl.gz, or vpcflows-TIMESTAMP.log.gz):\n" +
			"OCSF 1.3.0 JSON lines, or AWS VPC Flow Logs version 2 text (Network Activity\n" +
			"only, with the format's header line). It reads through the control plane's API\n" +
			"(any admin role) or, with --data-dir, a server's data directory with its KEK.\n" +
			"For continuous export, see the server's export setting.",
		Flags: func(fs *flag.FlagSet) {
			af.register(fs)
			fs.StringVar(&dataDir, "data-dir", "", "read this server data directory instead of asking the server")
			kekFlags(fs, &kek)
			fs.StringVar(&out, "out", "", "directory to write the files to (required)")
			fs.StringVar(&format, "format", flowstore.FormatOCSF, "ocsf (JSON lines) or vpc (AWS VPC Flow Logs v2)")
			fs.StringVar(&acct, "account-id", "", "account-id field of VPC lines")
			fs.IntVar(&maxMB, "max-mb", 100, "largest file before compression, in MiB")
			ff.register(fs)
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "flows export"); err != nil {
				return err
			}
			if out == "" {
				return usagef("flows export: --out is required")
			}
			if format != flowstore.FormatOCSF && format != flowstore.FormatVPC {
				return usagef("flows export: --format %q: want ocsf or vpc", format)
			}
			if maxMB < 1 {
				return usagef("flows export: --max-mb must be positive")
			}
			f, err := ff.filter(time.Now())
			if err != nil {
				return err
			}
			var recs []flow.Record
			if dataDir != "" {
				kr, _, err := openKeyring(e, &kek, dataDir, false)
				if err != nil {
					return fmt.Errorf("%s: %w", dataDir, err)
				}
				st, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dataDir, "flows"), ReadOnly: true, Sealer: kr.AEAD()})
				if err != nil {
					return err
				}
				defer st.Close()
				if recs, err = st.Query(ctx, f); err != nil {
					return err
				}
			} else {
				c, err := af.connect(ctx, e)
				if err != nil {
					return err
				}
				defer c.Close()
				if recs, err = exportRemote(ctx, &remoteFlows{c: c.Client, stderr: e.Stderr}, f); err != nil {
					return err
				}
			}
			name := "flows.jsonl"
			if format == flowstore.FormatVPC {
				name = "vpcflows.log"
			}
			fw, err := flowstore.NewFileWriter(flowstore.FileConfig{Path: filepath.Join(out, name), Format: format, AccountID: acct, MaxMegabytes: maxMB})
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := fw.Write(r); err != nil {
					fw.Close()
					return err
				}
			}
			err = fw.Rotate() // the last file is compressed too
			if cerr := fw.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			files, _ := filepath.Glob(filepath.Join(out, "*-*.gz"))
			fmt.Fprintf(e.Stdout, "exported %d records to %s (%d files, %s)\n", len(recs), out, len(files), format)
			return nil
		},
	}
}

// exportRemote reads every record matching f from the server, a page of
// the newest api.MaxFlowRecords at a time, moving the end of the window
// back past each page (records of the page's oldest millisecond are asked
// for again and kept once). It returns them oldest first.
func exportRemote(ctx context.Context, src *remoteFlows, f flow.Filter) ([]flow.Record, error) {
	seen := map[string]bool{}
	var all []flow.Record
	f.Limit = api.MaxFlowRecords
	for {
		page, truncated, err := src.query(ctx, f)
		if err != nil {
			return nil, err
		}
		fresh := 0
		for _, r := range page {
			if !seen[r.Metadata.UID] {
				seen[r.Metadata.UID] = true
				all = append(all, r)
				fresh++
			}
		}
		if !truncated || len(page) == 0 {
			break
		}
		if fresh == 0 {
			return nil, fmt.Errorf("flows export: more than %d records share the millisecond %s; export with --data-dir", api.MaxFlowRecords, time.UnixMilli(page[0].Time).UTC().Format(time.RFC3339Nano))
		}
		f.Until = time.UnixMilli(page[0].Time + 1)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time < all[j].Time })
	return all, nil
}
