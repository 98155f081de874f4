package seal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var testBucket = []byte("records")

func recKey(i int) []byte { return fmt.Appendf(nil, "rec/%05d", i) }
func recVal(i int) string { return fmt.Sprintf("value of record %d", i) }

// fillBolt writes n records sealed by k into a fresh bbolt file.
func fillBolt(t testing.TB, path string, k *Keyring, n int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := k.AEAD()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(testBucket)
		if err != nil {
			return err
		}
		for i := range n {
			ct, err := a.Encrypt([]byte(recVal(i)), recKey(i))
			if err != nil {
				return err
			}
			if err := b.Put(recKey(i), ct); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkAll opens every record and returns how many sit under each key.
func checkAll(t testing.TB, db *bolt.DB, k *Keyring, n int) map[uint32]Usage {
	t.Helper()
	a := k.AEAD()
	got := 0
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(testBucket).ForEach(func(key, v []byte) error {
			var i int
			if _, err := fmt.Sscanf(string(key), "rec/%05d", &i); err != nil {
				return err
			}
			pt, err := a.Decrypt(v, key)
			if err != nil {
				return fmt.Errorf("record %q unreadable: %w", key, err)
			}
			if string(pt) != recVal(i) {
				return fmt.Errorf("record %q = %q", key, pt)
			}
			got++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("%d records, want %d", got, n)
	}
	u, err := CountUsage(context.Background(), BoltSource{DB: db, Bucket: testBucket}, 7)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func openBolt(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// failingSource fails (or cancels) at the failAt-th compare-and-swap.
type failingSource struct {
	Source
	n, failAt int
	cancel    context.CancelFunc
}

var errInjected = errors.New("injected write failure")

func (s *failingSource) CompareAndSwap(ctx context.Context, key, old, nv []byte) (bool, error) {
	s.n++
	if s.n == s.failAt {
		if s.cancel != nil {
			s.cancel()
			return false, ctx.Err()
		}
		return false, errInjected
	}
	return s.Source.CompareAndSwap(ctx, key, old, nv)
}

// TestReencryptInterrupted fails the writer or cancels the context at a
// random record, again and again (a bounded loop), checks after each stop
// that every record opens, and that the pass resumes to completion.
func TestReencryptInterrupted(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const n = 300
	dir := t.TempDir()
	c := newClock()
	k := openTest(t, dir, testKEK(t, 1), c)
	dbPath := filepath.Join(dir, "data.db")
	fillBolt(t, dbPath, k, n)
	first := k.Primary()
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	db := openBolt(t, dbPath)
	defer db.Close()
	src := BoltSource{DB: db, Bucket: testBucket}

	var lastScanned int64
	finished := false // the interrupted rounds may complete the pass themselves
	for i := range 12 {
		ctx, cancel := context.WithCancel(context.Background())
		fs := &failingSource{Source: src, failAt: 1 + rng.IntN(40)}
		if i%2 == 1 {
			fs.cancel = cancel
		}
		p, err := k.Reencrypt(ctx, ReencryptConfig{Name: "store", Source: fs, Batch: 16})
		cancel()
		if p.Done {
			t.Logf("round %d: finished: %+v", i, p)
			finished = true
			break
		}
		if err == nil || !(errors.Is(err, errInjected) || errors.Is(err, context.Canceled)) {
			t.Fatalf("round %d: err = %v, want the injected failure", i, err)
		}
		saved, err2 := k.LoadProgress("store")
		if err2 != nil {
			t.Fatal(err2)
		}
		if saved.Scanned < lastScanned {
			t.Fatalf("round %d: saved progress went back from %d to %d", i, lastScanned, saved.Scanned)
		}
		lastScanned = saved.Scanned
		u := checkAll(t, db, k, n)
		t.Logf("round %d: stopped at write %d (%v); saved cursor %q; under old key %d, new %d", i, fs.failAt, err, saved.Cursor, u[first].Records, u[k.Primary()].Records)
	}
	var reports int
	p, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "store", Source: src, Batch: 16, Progress: func(Progress) { reports++ }})
	if err != nil || !p.Done {
		t.Fatalf("final pass: %+v %v", p, err)
	}
	if reports == 0 && !finished {
		t.Fatal("no progress reported by a pass with work left")
	}
	if p.Rewritten >= n {
		t.Fatalf("final pass rewrote %d of %d records: it did not resume", p.Rewritten, n)
	}
	u := checkAll(t, db, k, n)
	if u[k.Primary()].Records != n || len(u) != 1 {
		t.Fatalf("usage after pass = %v, want all %d under %d", u, n, k.Primary())
	}
	// A finished pass is a no-op until the next rotation.
	p2, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "store", Source: src})
	if err != nil || !p2.Done || p2.Rewritten != p.Rewritten {
		t.Fatalf("second run: %+v %v", p2, err)
	}
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	p3, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "store", Source: src})
	if err != nil || p3.Rewritten != n || p3.Target != k.Primary() {
		t.Fatalf("pass after second rotation: %+v %v", p3, err)
	}
}

// racingSource changes a record between the scan and the swap, as a
// concurrent writer would.
type racingSource struct {
	BoltSource
	k    *Keyring
	done bool
}

func (s *racingSource) CompareAndSwap(ctx context.Context, key, old, nv []byte) (bool, error) {
	if !s.done {
		s.done = true
		ct, _ := s.k.AEAD().Encrypt([]byte("written meanwhile"), key)
		if err := s.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put(key, ct) }); err != nil {
			return false, err
		}
	}
	return s.BoltSource.CompareAndSwap(ctx, key, old, nv)
}

func TestReencryptConflictAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	k := openTest(t, dir, testKEK(t, 1), newClock())
	dbPath := filepath.Join(dir, "data.db")
	fillBolt(t, dbPath, k, 10)
	k.Rotate()
	db := openBolt(t, dbPath)
	defer db.Close()
	p, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "race", Source: &racingSource{BoltSource: BoltSource{db, testBucket}, k: k}})
	if err != nil || p.Conflicts != 1 || p.Rewritten != 9 {
		t.Fatalf("conflict: %+v %v", p, err)
	}
	var got []byte
	db.View(func(tx *bolt.Tx) error { got = tx.Bucket(testBucket).Get(recKey(0)); return nil })
	if pt, _ := k.AEAD().Decrypt(got, recKey(0)); string(pt) != "written meanwhile" {
		t.Fatalf("the concurrent write was lost: %q", pt)
	}

	// A ciphertext swapped into another record stops the pass, named.
	k.Rotate()
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(testBucket)
		return b.Put(recKey(5), b.Get(recKey(6)))
	})
	_, err = k.Reencrypt(context.Background(), ReencryptConfig{Name: "race", Source: BoltSource{db, testBucket}})
	if !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), `record "rec/00005"`) {
		t.Fatalf("swapped record: err = %v", err)
	}
	if _, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "Bad Name", Source: BoltSource{db, testBucket}}); err == nil {
		t.Fatal("bad pass name accepted")
	}
}

const childEnv = "SEAL_REENCRYPT_CHILD_DIR"

// stepSource announces each write on stdout and waits for a byte on stdin
// before doing it, so the parent picks where to kill.
type stepSource struct {
	BoltSource
	in  *bufio.Reader
	out io.Writer
}

func (s stepSource) CompareAndSwap(ctx context.Context, key, old, nv []byte) (bool, error) {
	fmt.Fprintf(s.out, "cas %s\n", key)
	if _, err := s.in.ReadByte(); err != nil {
		return false, err
	}
	return s.BoltSource.CompareAndSwap(ctx, key, old, nv)
}

// TestReencryptChild is the re-encryption process TestReencryptKilled
// starts and kills; run on its own it does nothing.
func TestReencryptChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Log("helper process for TestReencryptKilled; nothing to do on its own")
		return
	}
	k, err := Open(Config{Dir: dir, KEK: testKEK(t, 1), NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	db := openBolt(t, filepath.Join(dir, "data.db"))
	defer db.Close()
	src := stepSource{BoltSource: BoltSource{db, testBucket}, in: bufio.NewReader(os.Stdin), out: os.Stdout}
	if _, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "store", Source: src, Batch: 16}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// TestReencryptKilled runs the pass in a child process and SIGKILLs it at a
// random write, some rounds while the write is in flight, in a bounded
// loop; after each kill every record opens, and the pass resumes.
func TestReencryptKilled(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	const n = 200
	dir := t.TempDir()
	k := openTest(t, dir, testKEK(t, 1), newClock())
	dbPath := filepath.Join(dir, "data.db")
	fillBolt(t, dbPath, k, n)
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	var lastScanned int64
	finished := false
	for round := 0; round < 8 && !finished; round++ {
		killAt := 17 + rng.IntN(48) // past the first batch, so progress is saved
		inFlight := rng.IntN(2) == 0
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReencryptChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		writes := 0
		for sc.Scan() {
			line := sc.Text()
			if line == "done" {
				finished = true
				break
			}
			if !strings.HasPrefix(line, "cas ") {
				continue
			}
			writes++
			if writes == killAt {
				if inFlight {
					stdin.Write([]byte{1}) // let the write start, then kill
				}
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
			if _, err := stdin.Write([]byte{1}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		stdin.Close()
		io.Copy(io.Discard, stdout)
		werr := cmd.Wait()
		cancel()
		if !finished && werr == nil {
			t.Fatalf("round %d: child exited cleanly without finishing", round)
		}
		saved, err := k.LoadProgress("store")
		if err != nil {
			t.Fatal(err)
		}
		if !finished && saved.Scanned <= lastScanned {
			t.Fatalf("round %d: saved progress did not advance (%d → %d)", round, lastScanned, saved.Scanned)
		}
		lastScanned = saved.Scanned
		db := openBolt(t, dbPath)
		u := checkAll(t, db, k, n)
		db.Close()
		if finished {
			t.Logf("round %d: the pass finished after %d writes", round, writes)
		} else {
			t.Logf("round %d: killed at write %d (in flight %v): cursor %q, under primary %d of %d", round, killAt, inFlight, saved.Cursor, u[k.Primary()].Records, n)
		}
	}
	db := openBolt(t, dbPath)
	defer db.Close()
	p, err := k.Reencrypt(context.Background(), ReencryptConfig{Name: "store", Source: BoltSource{db, testBucket}, Batch: 16})
	if err != nil || !p.Done {
		t.Fatalf("resumed pass: %+v %v", p, err)
	}
	if u := checkAll(t, db, k, n); u[k.Primary()].Records != n {
		t.Fatalf("after the resumed pass: %v", u)
	}
}
