package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/seal"
)

// Session recordings.
//
// A shell session is recorded as an asciicast v2 file (a JSON header line,
// then one [seconds, "o"|"i"|"r"|"m", data] line per event): what the
// terminal showed, resizes, the commands a shell without a terminal read,
// and optionally what was typed. It is written to
// DATA_DIR/access/rec/<session>.cast as it happens, in chunks sealed under
// the agent's keyring (each bound to the session and its place), so a
// crash loses at most the last second and the disk holds no clear text.
// When the session ends, the SHA-256 of the whole asciicast goes into the
// end report (and the audit log), and the recording is sent to the control
// plane, which keeps it only if its digest is the reported one; the local
// copy is removed once the control plane holds it.

// errRecordingFull ends a session whose recording reached its bound: an
// unrecorded shell is not one moat lets run.
var errRecordingFull = errors.New("the session's recording reached its size limit")

const recDir = "access/rec"

// recorder writes one session's asciicast.
type recorder struct {
	path    string
	session string
	sealer  flow.Sealer
	start   time.Time
	now     func() time.Time
	max     int64
	input   bool

	mu        sync.Mutex // guards the fields below
	f         *os.File
	buf       []byte
	chunk     int
	size      int64
	sum       hash.Hash
	flushed   time.Time
	pending   map[string][]byte // incomplete UTF-8 held back, by stream
	err       error
	closed    bool
	digest    string
	finalSize int64
}

// castHeader is the asciicast v2 header.
type castHeader struct {
	Version   int               `json:"version"`
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
}

func (x *access) newRecorder(session string, width, height int, term, title string) (*recorder, error) {
	dir := filepath.Join(x.a.cfg.DataDir, recDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	path := filepath.Join(dir, session+".cast")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: recording: %w", err)
	}
	now := x.a.cfg.Now()
	r := &recorder{path: path, session: session, sealer: x.a.sealer, start: now, now: x.a.cfg.Now, max: x.maxRecording(),
		input: x.cfg.RecordInput, f: f, sum: sha256.New(), flushed: now, pending: map[string][]byte{}}
	if width <= 0 || height <= 0 {
		width, height = 80, 24
	}
	env := map[string]string{"SHELL": "/bin/sh"}
	if term != "" {
		env["TERM"] = term
	}
	h, _ := json.Marshal(castHeader{Version: 2, Width: width, Height: height, Timestamp: now.Unix(), Title: title, Env: env})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.appendLocked(append(h, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// Output records what the terminal showed.
func (r *recorder) Output(p []byte) error { return r.event("o", p) }

// Input records what the administrator typed, if inputs are recorded.
func (r *recorder) Input(p []byte) error {
	if !r.input {
		return nil
	}
	return r.event("i", p)
}

// Script records the commands a shell without a terminal reads, whether
// or not inputs are recorded: they are what the session did.
func (r *recorder) Script(p []byte) error { return r.event("i", p) }

// Resize records a window change.
func (r *recorder) Resize(cols, rows int) error {
	return r.event("r", []byte(strconv.Itoa(cols)+"x"+strconv.Itoa(rows)))
}

// Marker records a note (asciicast "m" event).
func (r *recorder) Marker(s string) error { return r.event("m", []byte(s)) }

func (r *recorder) event(kind string, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || r.closed {
		return r.err
	}
	// A multi-byte character split across reads is held until complete,
	// so every event is valid UTF-8 as asciicast wants.
	data := append(r.pending[kind], p...)
	cut := completeUTF8(data)
	r.pending[kind] = append([]byte(nil), data[cut:]...)
	data = data[:cut]
	if len(data) == 0 {
		return nil
	}
	t := r.now().Sub(r.start).Seconds()
	line, _ := json.Marshal([]any{json.Number(strconv.FormatFloat(t, 'f', 6, 64)), kind, string(data)})
	return r.appendLocked(append(line, '\n'))
}

// completeUTF8 returns how much of b ends on a character boundary: all of
// it unless its last bytes begin a multi-byte character not yet complete.
func completeUTF8(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// closeRoom is the part of a recording's bound kept for what comes after
// its events: the note that the bound was reached and the characters left
// incomplete at the end. With them the recording is within its bound, which
// is the control plane's too: a recording past it would be refused each
// time it was sent.
const closeRoom = 256

func (r *recorder) appendLocked(line []byte) error {
	if r.size+int64(len(line)) > r.max-closeRoom {
		r.err = errRecordingFull
		// The end says so, in the recording itself.
		note, _ := json.Marshal([]any{json.Number(strconv.FormatFloat(r.now().Sub(r.start).Seconds(), 'f', 6, 64)), "m", "recording limit reached: session ended"})
		r.buf = append(r.buf, note...)
		r.buf = append(r.buf, '\n')
		r.sum.Write(note)
		r.sum.Write([]byte{'\n'})
		r.size += int64(len(note) + 1)
		return r.err
	}
	r.buf = append(r.buf, line...)
	r.sum.Write(line)
	r.size += int64(len(line))
	if len(r.buf) >= 32<<10 || r.now().Sub(r.flushed) >= time.Second {
		return r.flushLocked()
	}
	return nil
}

// flushLocked writes the buffered events as one sealed chunk.
func (r *recorder) flushLocked() error {
	if len(r.buf) == 0 {
		return nil
	}
	ct := r.buf
	if r.sealer != nil {
		var err error
		if ct, err = r.sealer.Encrypt(r.buf, chunkAD(r.session, r.chunk)); err != nil {
			r.err = fmt.Errorf("agent: seal recording: %w", err)
			return r.err
		}
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(ct)))
	if _, err := r.f.Write(append(n[:], ct...)); err != nil {
		r.err = fmt.Errorf("agent: recording: %w", err)
		return r.err
	}
	r.chunk++
	r.buf = r.buf[:0]
	r.flushed = r.now()
	return nil
}

func chunkAD(session string, i int) []byte {
	return seal.RecordAD("access-recording", session, strconv.Itoa(i))
}

// Close writes what is buffered and returns the asciicast's SHA-256 (hex)
// and size. It is idempotent.
func (r *recorder) Close() (string, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.digest, r.finalSize, nil
	}
	r.closed = true
	for kind, rest := range r.pending { // a character never completed
		if len(rest) > 0 {
			line, _ := json.Marshal([]any{json.Number(strconv.FormatFloat(r.now().Sub(r.start).Seconds(), 'f', 6, 64)), kind, string(rest)})
			if r.size+int64(len(line)+1) > r.max {
				continue // three bytes at most, of no character
			}
			r.buf = append(r.buf, line...)
			r.buf = append(r.buf, '\n')
			r.sum.Write(append(line, '\n'))
			r.size += int64(len(line) + 1)
		}
	}
	ferr := r.flushLocked()
	if err := r.f.Sync(); err != nil && ferr == nil {
		ferr = err
	}
	if err := r.f.Close(); err != nil && ferr == nil {
		ferr = err
	}
	r.digest, r.finalSize = hex.EncodeToString(r.sum.Sum(nil)), r.size
	if ferr != nil && !errors.Is(ferr, errRecordingFull) {
		return r.digest, r.finalSize, ferr
	}
	return r.digest, r.finalSize, nil
}

// readRecording opens a recording written by a recorder.
func readRecording(path, session string, sealer flow.Sealer) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for i := 0; len(b) > 0; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("agent: recording %s: truncated chunk header", session)
		}
		n := binary.BigEndian.Uint32(b)
		if int(n) > len(b)-4 {
			return nil, fmt.Errorf("agent: recording %s: truncated chunk %d", session, i)
		}
		ct := b[4 : 4+n]
		b = b[4+n:]
		pt := ct
		if sealer != nil {
			if pt, err = sealer.Decrypt(ct, chunkAD(session, i)); err != nil {
				return nil, fmt.Errorf("agent: recording %s: chunk %d does not open", session, i)
			}
		}
		out.Write(pt)
	}
	return out.Bytes(), nil
}

// finish records a session's end: the report is kept on disk beside the
// recording until the control plane has both.
func (x *access) finish(info api.AccessSession) {
	dir := filepath.Join(x.a.cfg.DataDir, recDir)
	if err := os.MkdirAll(dir, 0o700); err == nil {
		b, _ := json.Marshal(info)
		if err := seal.WriteFileAtomic(filepath.Join(dir, info.ID+".json"), b, 0o600); err != nil {
			x.a.log.Error("access: session end not kept", "session", info.ID, "err", err)
		}
	}
	select {
	case x.shipWake <- struct{}{}:
	default:
	}
}

// ship delivers ended sessions' reports and recordings, each on its own,
// retrying with backoff while the control plane is away.
func (x *access) ship(ctx context.Context) {
	fails := 0
	for {
		wait := 30 * time.Second
		if err := x.shipAll(ctx); err != nil && ctx.Err() == nil {
			fails++
			wait = x.a.backoff(fails)
			x.a.log.Debug("access: recordings not shipped", "err", err)
		} else {
			fails = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-x.shipWake:
		case <-x.a.cfg.After(wait):
		}
	}
}

func (x *access) shipAll(ctx context.Context) error {
	dir := filepath.Join(x.a.cfg.DataDir, recDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Each session is sent on its own: one the control plane refuses
	// does not hold back the recordings after it.
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if err := x.shipOne(ctx, dir, id); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (x *access) shipOne(ctx context.Context, dir, id string) error {
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		return err
	}
	var info api.AccessSession
	if err := json.Unmarshal(b, &info); err != nil {
		return err
	}
	c := x.a.api()
	if err := c.Call(ctx, http.MethodPost, api.PathNodeAccessEvent, api.AccessEvent{Kind: "end", Session: info}, nil); err != nil {
		return err
	}
	cast := filepath.Join(dir, id+".cast")
	if info.Recording != "" {
		rec, err := readRecording(cast, id, x.a.sealer)
		if err != nil {
			return err
		}
		head, _ := json.Marshal(api.RecordingUpload{Session: info, Size: int64(len(rec))})
		body := append(append(head, '\n'), rec...)
		if err := c.Upload(ctx, api.PathNodeAccessRec, body, nil); err != nil {
			var se *api.StatusError
			if errors.As(err, &se) && se.Code == http.StatusRequestEntityTooLarge {
				// Recorded before the control plane's bound was known, or
				// under a server that takes less: kept until one takes it.
				x.a.log.Warn("access: recording larger than the control plane takes: kept on the node, sent again until access.max_recording_bytes on the servers allows it",
					"session", id, "bytes", len(rec), "err", err)
			}
			return err
		}
	}
	if err := os.Remove(cast); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Remove(filepath.Join(dir, id+".json"))
}
