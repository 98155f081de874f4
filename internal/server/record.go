package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"sort"
	"strconv"
	"unicode/utf8"

	"moat/internal/audit"
)

// Caps on what one audit entry carries. Handlers validate what callers
// send before it reaches an entry; these caps hold whatever a handler
// forgets, so that no request can make an entry large.
const (
	maxEntryField  = 256  // bytes of actor, role, target, result
	maxDetailKeys  = 16   // detail keys kept
	maxDetailKey   = 64   // bytes of a detail key
	maxDetailValue = 1024 // bytes of a detail value
)

// resultPending is the result of an intent entry: the call was authorized
// and is about to change something; the entry with the same request ID
// says how it ended.
const resultPending = "pending"

// maxAdminBody bounds an admin call's request body.
const maxAdminBody = 1 << 20

// record bounds e, names this server in it (servers sharing a store write
// one log), and appends it to the audit log.
func (s *Server) record(ctx context.Context, e audit.Entry) error {
	e = boundEntry(e)
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	e.Detail["server"] = s.cfg.Name
	if rev := s.storeRev(ctx); rev != "" {
		e.Detail[DetailStoreRev] = rev
	}
	return s.cfg.Audit.Record(context.WithoutCancel(ctx), e)
}

// boundEntry cuts every field of e to its cap.
func boundEntry(e audit.Entry) audit.Entry {
	e.Actor = cut(e.Actor, maxEntryField)
	e.Role = cut(e.Role, maxEntryField)
	e.Action = cut(e.Action, maxEntryField)
	e.Target = cut(printableTarget(e.Target), maxEntryField)
	e.Result = cut(e.Result, maxEntryField)
	if len(e.Detail) == 0 {
		return e
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := make(map[string]string, min(len(keys), maxDetailKeys+1))
	for i, k := range keys {
		if i == maxDetailKeys {
			d["detail_cut"] = "more keys than an entry keeps"
			break
		}
		d[cut(k, maxDetailKey)] = cut(e.Detail[k], maxDetailValue)
	}
	e.Detail = d
	return e
}

// printableTarget is an entry's target as kept. A target is what a call
// names, often as the caller sent it, and a refused call's target is what
// was refused: one holding a character that is not printable (a line
// break, an escape sequence, a direction override) is kept escaped, as Go
// quotes a string, so that no caller writes a line, or a terminal's
// state, into whatever shows the log.
func printableTarget(s string) string {
	if printable(s) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// requestID names one call in its intent and outcome entries.
func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// bufferBody reads r's body (at most maxAdminBody) so that its digest can
// go in the intent entry before the handler reads it, and returns the
// digest.
func bufferBody(r *http.Request) (string, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxAdminBody))
	if err != nil {
		return "", errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", maxAdminBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
