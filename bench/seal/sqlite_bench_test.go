package sealbench

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"moat/internal/seal"
)

// BenchmarkFlowIngestSQLite is BenchmarkFlowIngest with the embedded event
// database as the sink: each chunk of records is inserted into a SQLite
// table (WAL, one transaction per chunk), as JSON text or as a sealed blob.
func BenchmarkFlowIngestSQLite(b *testing.B) {
	rec := sampleFlow()
	kek, err := seal.EnvKEK("K", func(string) (string, bool) { return seal.EncodeKEKKey(make([]byte, 32)), true })
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	k, err := seal.Open(seal.Config{Dir: dir, KEK: kek})
	if err != nil {
		b.Fatal(err)
	}
	a := k.AEAD()
	db, err := sql.Open("sqlite", filepath.Join(dir, "events.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE plain (uid TEXT, rec TEXT); CREATE TABLE sealed (uid TEXT, rec BLOB)`); err != nil {
		b.Fatal(err)
	}
	const chunk = 128
	run := func(table string, sealIt bool) time.Duration {
		t0 := time.Now()
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.Prepare(`INSERT INTO ` + table + ` (uid, rec) VALUES (?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for range chunk {
			line, err := json.Marshal(rec)
			if err != nil {
				b.Fatal(err)
			}
			var v any = string(line)
			if sealIt {
				ct, err := a.Encrypt(line, []byte(rec.Metadata.UID))
				if err != nil {
					b.Fatal(err)
				}
				v = ct
			}
			if _, err := stmt.Exec(rec.Metadata.UID, v); err != nil {
				b.Fatal(err)
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var tp, ts []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tp = append(tp, run("plain", false))
			ts = append(ts, run("sealed", true))
		} else {
			ts = append(ts, run("sealed", true))
			tp = append(tp, run("plain", false))
		}
	}
	over := make([]float64, len(tp))
	for i := range tp {
		over[i] = float64(ts[i])/float64(tp[i]) - 1
	}
	b.ReportMetric(median(perRecord(tp, chunk)), "plain-ns/rec")
	b.ReportMetric(median(perRecord(ts, chunk)), "sealed-ns/rec")
	b.ReportMetric(median(over), "overhead")
	b.ReportMetric(0, "ns/op")
}
