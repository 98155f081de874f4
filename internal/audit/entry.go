package audit

import (
	"context"
	"time"
)

// Entry is one administrative action: who did what to what, when, and how it
// ended. Every control-plane change produces exactly one.
type Entry struct {
	Time   time.Time         `json:"time"`
	Actor  string            `json:"actor"`  // SPIFFE ID of the caller, or "admin" for the admin credential
	Role   string            `json:"role"`   // viewer, operator, admin, node, or "" for an unauthenticated call
	Action string            `json:"action"` // e.g. "node.join", "token.create", "svc.register", "policy.apply", "revoke", "ca.rotate.prepare"
	Target string            `json:"target"` // what was acted on: a node, a service, a serial
	Result string            `json:"result"` // "ok", or "denied: …" / "error: …"
	Detail map[string]string `json:"detail,omitempty"`
}

// Recorder receives every audit entry. Record returns only once the entry is
// durable; a control-plane change whose entry cannot be recorded fails.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, e Entry) error

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, e Entry) error { return f(ctx, e) }
