package cli

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/server"
	"moat/internal/testkit"
)

// exportedUIDs reads every record line of an export directory (the live
// file and the rotated, gzipped ones) and counts each record ID. While the
// export runs, it reads a moment's view, where the live file's last line may
// be partly written (it is not counted); once it stopped (final), all of it,
// and every line must be whole.
func exportedUIDs(t *testing.T, dir string, final bool) map[string]int {
	t.Helper()
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "flows*"))
	for _, p := range files {
		if !strings.HasSuffix(p, ".gz") && filepath.Base(p) != "flows.jsonl" {
			continue // a rotated file being compressed, or a compression's temporary file
		}
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue // pruned or renamed meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			r = zr
		}
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			line, err := br.ReadBytes('\n')
			if err == io.EOF {
				if len(line) > 0 && final {
					t.Fatalf("%s ends in a partial line once the export stopped: %q", p, line)
				}
				break // a line being written
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			var rec flow.Record
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatalf("%s: a line that is not a record: %v: %q", p, err, line)
			}
			out[rec.Metadata.UID]++
		}
		f.Close()
	}
	return out
}

func exportRecords(from, n int, at time.Time) []flow.Record {
	recs := make([]flow.Record, 0, n)
	for i := from; i < from+n; i++ {
		r := flow.Header(flow.ClassNetworkActivity, flow.ActivityClose, "moat-agent", at.Add(time.Duration(i)*time.Millisecond))
		r.Metadata.UID = fmt.Sprintf("rec-%07d", i)
		r.SrcEndpoint = &flow.Endpoint{SvcName: "web"}
		r.DstEndpoint = &flow.Endpoint{SvcName: "db"}
		r.Traffic = &flow.Traffic{Bytes: int64(i)}
		recs = append(recs, r)
	}
	return recs
}

// TestContinuousExportLosesNothing runs the server's continuous export
// against a sink slower than ingestion (more records stored than any
// in-memory buffer holds before the export reads one), stops it midway,
// leaves a line half-written as a crash would, stores more while it is
// down, and starts it again: every stored record is exported exactly once.
func TestContinuousExportLosesNothing(t *testing.T) {
	dir := t.TempDir()
	st, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, "flows")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ex := server.ExportFile{Dir: filepath.Join(dir, "export"), MaxMB: 2}
	logger := slog.New(slog.DiscardHandler)
	at := time.Now().Add(-time.Hour)
	ingest := func(from, n int) {
		for i := from; i < from+n; i += 10000 {
			if _, err := st.Ingest(context.Background(), exportRecords(i, min(10000, from+n-i), at)); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := 70000 // more than 2^16
	run, err := exportFlows(st, ex, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("storing %d records before the export reads any", first)
	ingest(0, first)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	waitFor(t, "a part of the records exported", func() bool { return len(exportedUIDs(t, ex.Dir, false)) >= first/4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped after %d records; a crash leaves half a line behind", len(exportedUIDs(t, ex.Dir, true)))
	live := filepath.Join(ex.Dir, "flows.jsonl")
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"class_uid":4001,"metadata":{"uid":"half`)
	f.Close()
	ingest(first, 5000)

	run, err = exportFlows(st, ex, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- run(ctx) }()
	total := first + 5000
	var got map[string]int
	waitForDetail(t, "every record exported", func() (bool, string) {
		got = exportedUIDs(t, ex.Dir, false)
		return len(got) >= total, fmt.Sprintf("%d of %d records", len(got), total)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got = exportedUIDs(t, ex.Dir, true)
	for i := range total {
		uid := fmt.Sprintf("rec-%07d", i)
		if got[uid] != 1 {
			t.Fatalf("record %s exported %d times", uid, got[uid])
		}
	}
	if len(got) != total {
		t.Fatalf("%d records exported, %d stored", len(got), total)
	}
	gz, _ := filepath.Glob(filepath.Join(ex.Dir, "flows-*.jsonl.gz"))
	t.Logf("%d records exported exactly once, over %d rotated files and the live one", total, len(gz))
}

var waitForDetail = testkit.WaitForDetail
