package flowstore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what was produced:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// exportFixture is a fixed set covering the cases of the VPC format.
func exportFixture() []flow.Record {
	at := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	allow := flowtest.NetRecord("0001", "web", "db", flow.VerdictAllow, "web-to-db", 4242, at)
	deny := flowtest.NetRecord("0002", "web", "billing", flow.VerdictDeny, "default-deny", 0, at.Add(time.Second))
	audit := flowtest.NetRecord("0003", "api", "db", flow.VerdictAudit, "audit-api", 10, at.Add(2*time.Second))
	bare := flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, "moat-agent", at.Add(3*time.Second))
	bare.Metadata.UID = "0004"
	bare.ActionID = flow.ActionDenied
	bare.ConnectionInfo = &flow.ConnectionInfo{ProtocolName: "udp"}
	bare.SrcEndpoint = &flow.Endpoint{IP: "192.0.2.7"}
	http := flow.Header(flow.ClassHTTPActivity, 1, "moat-gateway", at)
	http.Metadata.UID = "0005"
	return []flow.Record{allow, deny, audit, bare, http}
}

func TestVPCFlowLogsGolden(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString(VPCHeader + "\n")
	w := NewVPCWriter(&buf, "123456789012")
	for _, r := range exportFixture() {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "vpc.golden", buf.Bytes())
	// Every line has the header's fields.
	n := len(strings.Fields(VPCHeader))
	for i, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if f := strings.Fields(l); len(f) != n {
			t.Fatalf("line %d has %d fields, want %d: %q", i, len(f), n, l)
		}
	}
}

func TestOCSFLinesGolden(t *testing.T) {
	var buf bytes.Buffer
	w := flow.NewJSONLines(&buf)
	for _, r := range exportFixture() {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "ocsf.golden", buf.Bytes())
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r interface{ Read([]byte) (int, error) } = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = z
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func TestFileWriterRotatesAndGzips(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flows.jsonl")
	fw, err := NewFileWriter(FileConfig{Path: path, MaxMegabytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	// About 1.5 MiB: one rotation by size.
	recs := flowtest.Records("x", 2200)
	for i, r := range recs[:2000] {
		if err := fw.Write(r); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	t.Log("rotate by time (Run calls Rotate on its ticker)")
	if err := fw.Rotate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[2000:] {
		if err := fw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz []string
	waitFor(t, "two gzipped rotated files", func() bool {
		gz, _ = filepath.Glob(filepath.Join(dir, "flows-*.jsonl.gz"))
		plain, _ := filepath.Glob(filepath.Join(dir, "flows-*.jsonl"))
		return len(gz) == 2 && len(plain) == 0
	})
	sort.Strings(gz)
	var all []string
	for _, p := range append(gz, path) {
		all = append(all, readLines(t, p)...)
	}
	if len(all) != len(recs) {
		t.Fatalf("%d lines across files, want %d", len(all), len(recs))
	}
	seen := map[string]bool{}
	for i, l := range all {
		var r flow.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		seen[r.Metadata.UID] = true
	}
	if len(seen) != len(recs) {
		t.Fatalf("%d distinct records, want %d", len(seen), len(recs))
	}
}

func TestFileWriterConfigErrors(t *testing.T) {
	good := FileConfig{Path: filepath.Join(t.TempDir(), "f"), Format: FormatVPC}
	tests := []struct {
		name   string
		mutate func(c *FileConfig)
		want   string
	}{
		{"no path", func(c *FileConfig) { c.Path = "" }, "flow: export: empty path"},
		{"bad format", func(c *FileConfig) { c.Format = "csv" }, `unknown format "csv"`},
		{"negative size", func(c *FileConfig) { c.MaxMegabytes = -1 }, "negative limit"},
	}
	if _, err := NewFileWriter(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			if _, err := NewFileWriter(c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestExporterFinishesAnInterruptedRotation starts an export whose state
// says a rotation was under way when the process died (the rotated name
// saved, the live file not yet renamed, and a line past the last commit):
// the start cuts the line, finishes the rotation and compresses the file,
// and the export goes on without writing a record twice.
func TestExporterFinishesAnInterruptedRotation(t *testing.T) {
	s := openTestStore(t, StoreConfig{Now: time.Now})
	dir := t.TempDir()
	cfg := ExporterConfig{Store: s, File: FileConfig{Path: filepath.Join(dir, "flows.jsonl")}, Batch: 10}
	e, err := NewExporter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	var recs []flow.Record
	for i := range 25 {
		recs = append(recs, flowtest.NetRecord(fmt.Sprintf("r%02d", i), "web", "db", flow.VerdictAllow, "web-to-db", 10, at.Add(time.Duration(i)*time.Millisecond)))
	}
	if _, err := s.Ingest(context.Background(), recs[:15]); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := e.step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n < cfg.Batch {
			break
		}
	}
	if err := e.fw.Close(); err != nil {
		t.Fatal(err)
	}
	// The crash: the rotation's intent saved, a line past the commit.
	e.state.Rotating = rotatedName(e.fw.cfg)
	if err := e.save(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(cfg.File.Path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"uid":"torn`)
	f.Close()

	if _, err := s.Ingest(context.Background(), recs[15:]); err != nil {
		t.Fatal(err)
	}
	e, err = NewExporter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	waitFor(t, "25 records exported", func() bool { return e.Exported() == 10 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "flows*"))
	for _, p := range files {
		for _, l := range readLines(t, p) {
			var r flow.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%s: %v: %q", p, err, l)
			}
			seen[r.Metadata.UID]++
		}
	}
	for _, r := range recs {
		if seen[r.Metadata.UID] != 1 {
			t.Fatalf("record %s exported %d times (files %v)", r.Metadata.UID, seen[r.Metadata.UID], files)
		}
	}
	if gz, _ := filepath.Glob(filepath.Join(dir, "flows-*.jsonl.gz")); len(gz) != 1 {
		t.Fatalf("rotated files %v, want the one the crash interrupted, compressed", files)
	}
}

// TestVPCLineAddressesOnly: an address field holds an address or "-",
// whatever a record a node sent says, so a line is one line of the
// header's fields.
func TestVPCLineAddressesOnly(t *testing.T) {
	r := flowtest.NetRecord("0006", "web", "db", flow.VerdictDeny, "default-deny", 1, time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
	r.SrcEndpoint.IP = "10.9.9.9 10.0.0.2 4444 22 6 - 1 0 0 ACCEPT OK\n2 123456789012 n1 10.9.9.9"
	r.DstEndpoint.IP = "fe80::1%eth0 ACCEPT\n"
	l, ok := VPCLine(&r, "123456789012")
	if !ok {
		t.Fatal("a network record was not written")
	}
	f := strings.Fields(l)
	if strings.ContainsAny(l, "\r\n") || len(f) != len(strings.Fields(VPCHeader)) || f[3] != "-" || f[4] != "fe80::1" {
		t.Fatalf("line %q: want one line, srcaddr \"-\", dstaddr fe80::1", l)
	}
}

// TestOCSFExportEscapesWhatDoesNotPrint: a record's text is what a node
// sent, and an export file is read as text (a SIEM's console, less, jq in
// a terminal). A forged path and host name holding a CSI (U+009B), a
// right-to-left override, ESC and a line break reach the file, and the
// gateway's event file, as one line of JSON with those as escapes and
// the same value read back.
func TestOCSFExportEscapesWhatDoesNotPrint(t *testing.T) {
	const forged = "/srv/\u009b2J\u202egnp.exe\x1b]0;owned\x07\nforged line"
	r := flowtest.NetRecord("0007", "web", "db", flow.VerdictAllow, "web-to-db", 1, time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC))
	r.DstEndpoint.Hostname = forged
	r.HTTPRequest = &flow.HTTPRequest{Method: "GET", URL: &flow.URL{Path: forged}, UserAgent: forged}

	path := filepath.Join(t.TempDir(), "flows.jsonl")
	fw, err := NewFileWriter(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(r); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var jl bytes.Buffer
	if err := flow.NewJSONLines(&jl).Write(r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"export file": file, "JSON lines": jl.Bytes()} {
		line, ok := bytes.CutSuffix(out, []byte("\n"))
		if !ok || bytes.ContainsAny(line, "\r\n") {
			t.Errorf("%s: %q is not one line", name, out)
			continue
		}
		for _, c := range string(line) {
			if c < ' ' || c == 0x7f || c >= 0x80 && !strconv.IsPrint(c) {
				t.Errorf("%s: %U raw in %s", name, c, line)
				break
			}
		}
		for _, esc := range []string{`\u009b`, `\u202e`, `\u001b`, `\n`} {
			if !bytes.Contains(line, []byte(esc)) {
				t.Errorf("%s: no %s escape in %s", name, esc, line)
			}
		}
		var back flow.Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("%s: %v in %s", name, err, line)
		}
		if back.DstEndpoint.Hostname != forged || back.HTTPRequest.URL.Path != forged || back.HTTPRequest.UserAgent != forged {
			t.Errorf("%s reads back as %q, %q, %q, want %q", name, back.DstEndpoint.Hostname, back.HTTPRequest.URL.Path, back.HTTPRequest.UserAgent, forged)
		}
	}
}
