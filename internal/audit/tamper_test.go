package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The tamper matrix: a known-good log of tamperN entries, one change per
// case, at every position; Verify must fail naming the first bad index.

const tamperN = 7

// logFiles is the content of a log directory, split into records.
type logFiles struct {
	dir     string
	entries [][]byte // stored bytes of each entry
	hashes  []byte
	cps     [][]byte // signed checkpoints of the history
	pub     []byte
}

func readFrames(t testing.TB, path string, max int) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(bytes.NewReader(b), max)
	var out [][]byte
	for {
		p, _, err := fr.next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("%s: %v", path, err)
			}
			return out
		}
		out = append(out, bytes.Clone(p))
	}
}

func loadFiles(t testing.TB, dir string) *logFiles {
	t.Helper()
	f := &logFiles{dir: dir}
	f.entries = readFrames(t, filepath.Join(dir, entriesFile), maxEntry)
	f.cps = readFrames(t, filepath.Join(dir, checkpointsFile), maxCheckpoint)
	var err error
	if f.hashes, err = os.ReadFile(filepath.Join(dir, hashesFile)); err != nil {
		t.Fatal(err)
	}
	if f.pub, err = os.ReadFile(filepath.Join(dir, checkpointFile)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *logFiles) save(t *testing.T) {
	t.Helper()
	var e, c []byte
	for _, p := range f.entries {
		e = appendFrame(e, p)
	}
	for _, p := range f.cps {
		c = appendFrame(c, p)
	}
	for name, b := range map[string][]byte{entriesFile: e, hashesFile: f.hashes, checkpointsFile: c, checkpointFile: f.pub} {
		if err := os.WriteFile(filepath.Join(f.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// rehash recomputes the hash file from the entries, as someone without the
// signer key who wants the hashes to agree would.
func (f *logFiles) rehash(t *testing.T) {
	t.Helper()
	var front frontier
	f.hashes = nil
	for i, p := range f.entries {
		hs, err := tlog.StoredHashes(int64(i), p, &front)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			f.hashes = append(f.hashes, h[:]...)
		}
		front.add(hs)
	}
}

func forged(t *testing.T, i int) []byte {
	b, err := EncodeEntry(int64(i), Entry{Actor: "mallory", Action: "policy.apply", Target: "allow-all", Result: "ok"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resign replaces the signature of a signed note with one by another key of
// the same name.
func resign(t *testing.T, signed []byte) []byte {
	t.Helper()
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{9}, 64)), "test-log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	out, err := note.Sign(&note.Note{Text: string(text) + "\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// swapSig puts the signature line of b on the text of a.
func swapSig(a, b []byte) []byte {
	ta, _, _ := bytes.Cut(a, []byte("\n\n"))
	_, sb, _ := bytes.Cut(b, []byte("\n\n"))
	return append(append(ta, "\n\n"...), sb...)
}

type tamperCase struct {
	name   string
	index  int64  // the first bad index Verify must name
	reason string // a fragment of the reason
	mutate func(t *testing.T, f *logFiles)
}

func tamperCases() []tamperCase {
	var cases []tamperCase
	add := func(name string, index int64, reason string, m func(t *testing.T, f *logFiles)) {
		cases = append(cases, tamperCase{name, index, reason, m})
	}
	for i := 0; i < tamperN; i++ {
		add(fmt.Sprintf("modify/%d", i), int64(i), "leaf hash", func(t *testing.T, f *logFiles) {
			f.entries[i][len(f.entries[i])/2] ^= 0x20
		})
		add(fmt.Sprintf("modify-and-rehash/%d", i), int64(i), "differs from the signed checkpoint", func(t *testing.T, f *logFiles) {
			f.entries[i] = bytes.Replace(f.entries[i], []byte(`"ok"`), []byte(`"no"`), 1)
			f.rehash(t)
		})
		add(fmt.Sprintf("delete/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
			f.entries = append(f.entries[:i], f.entries[i+1:]...)
		})
		add(fmt.Sprintf("delete-and-rehash/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
			f.entries = append(f.entries[:i], f.entries[i+1:]...)
			f.rehash(t)
		})
		add(fmt.Sprintf("insert/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
			f.entries = append(f.entries[:i], append([][]byte{forged(t, i)}, f.entries[i:]...)...)
		})
		add(fmt.Sprintf("insert-and-rehash/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
			f.entries = append(f.entries[:i], append([][]byte{forged(t, i)}, f.entries[i:]...)...)
			f.rehash(t)
		})
		if i+1 < tamperN {
			add(fmt.Sprintf("reorder/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
				f.entries[i], f.entries[i+1] = f.entries[i+1], f.entries[i]
			})
			add(fmt.Sprintf("reorder-and-rehash/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
				f.entries[i], f.entries[i+1] = f.entries[i+1], f.entries[i]
				f.rehash(t)
			})
		}
		add(fmt.Sprintf("truncate-entries/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
			f.entries = f.entries[:i]
		})
		add(fmt.Sprintf("truncate-all-files/%d", i), int64(i), "missing", func(t *testing.T, f *logFiles) {
			f.entries = f.entries[:i]
			f.hashes = f.hashes[:tlog.StoredHashCount(int64(i))*tlog.HashSize]
		})
		add(fmt.Sprintf("rewrite-history/%d", i), int64(i), "not covered", func(t *testing.T, f *logFiles) {
			// Rewrite from i on, recompute the hashes, and drop every
			// checkpoint that would disagree: what is left cannot be signed.
			f.entries[i] = forged(t, i)
			f.rehash(t)
			f.cps = f.cps[:i+1] // sizes 0..i
			f.pub = f.cps[i]
		})
		add(fmt.Sprintf("stored-hash/%d", i), int64(i), "", func(t *testing.T, f *logFiles) {
			// Flip the last stored hash written by entry i.
			at := tlog.StoredHashCount(int64(i+1))*tlog.HashSize - 1
			f.hashes[at] ^= 1
		})
		add(fmt.Sprintf("history-signature/%d", i+1), int64(i), "signature", func(t *testing.T, f *logFiles) {
			// A checkpoint of the history re-signed by another key; its
			// root now disagrees too once the entries are rewritten.
			f.entries[i] = forged(t, i)
			f.rehash(t)
			f.cps[i+1] = resign(t, f.cps[i+1])
		})
	}
	add("truncate-mid-record", tamperN-1, "incomplete", func(t *testing.T, f *logFiles) {
		f.entries[tamperN-1] = f.entries[tamperN-1][:10]
		// save writes the frame with its shortened length; cut the length
		// prefix's claim instead below.
	})
	add("append-forged", tamperN, "", func(t *testing.T, f *logFiles) {
		f.entries = append(f.entries, forged(t, tamperN))
	})
	add("append-forged-and-rehash", tamperN, "not covered", func(t *testing.T, f *logFiles) {
		f.entries = append(f.entries, forged(t, tamperN))
		f.rehash(t)
	})
	add("latest-signature-swapped", tamperN-1, "latest checkpoint", func(t *testing.T, f *logFiles) {
		last := len(f.cps) - 1
		f.cps[last] = swapSig(f.cps[last], f.cps[last-1])
		f.pub = f.cps[last]
	})
	add("latest-signature-other-key", tamperN-1, "latest checkpoint", func(t *testing.T, f *logFiles) {
		last := len(f.cps) - 1
		f.cps[last] = resign(t, f.cps[last])
		f.pub = f.cps[last]
	})
	add("published-signature-swapped", tamperN, "published checkpoint", func(t *testing.T, f *logFiles) {
		f.pub = swapSig(f.pub, f.cps[len(f.cps)-2])
	})
	add("published-other-key", tamperN, "published checkpoint", func(t *testing.T, f *logFiles) {
		f.pub = resign(t, f.pub)
	})
	add("published-rolled-back", tamperN, "differs from the latest", func(t *testing.T, f *logFiles) {
		f.pub = f.cps[3]
	})
	add("history-dropped", 0, "no signed checkpoint", func(t *testing.T, f *logFiles) {
		f.cps = nil
	})
	return cases
}

func TestTamperMatrix(t *testing.T) {
	good, v := newTestLog(t, tamperN, nil)
	if err := verifyDir(t, good, v); err != nil {
		t.Fatalf("good log: %v", err)
	}
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, good, dir)
			f := loadFiles(t, dir)
			tc.mutate(t, f)
			f.save(t)
			if tc.name == "truncate-mid-record" {
				// A torn last record: the length prefix promises more bytes
				// than the file holds.
				p := filepath.Join(dir, entriesFile)
				b, _ := os.ReadFile(p)
				b = append(b[:len(b)-14], 0, 0, 0, 40, 1, 2, 3)
				os.WriteFile(p, b, 0o600)
			}
			err := verifyDir(t, dir, v)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			if ve.Index != tc.index || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("Verify = %v; want entry %d and a reason containing %q", err, tc.index, tc.reason)
			}
			t.Log(err)
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(from, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

var _ = context.Background
