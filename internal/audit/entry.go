package audit

import (
	"context"
	"time"
)

// Entry is one administrative action: who did what to what, when, and how it
// ended. Every control-plane change produces exactly one.
type Entry struct {
	Time   time.Time         `json:"time"`
	Actor  string            `json:"actor"`  // SPIFFE ID of the caller, or "admin" for the admin credential; an administrator's account is Detail[DetailAccount]
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

// Detail keys naming administrators' accounts. An administrator is named
// by a SPIFFE ID (spiffe://<td>/admin/<name>), and a name removed may be
// made again for someone else; the account ID (128 random bits drawn when
// the account is made) is never given again. Entry has no field for it: a
// detail key keeps the stored format as it was, so entries written before
// still read and verify as they did, and a reader that knows nothing of
// accounts (an older moat, which refuses unknown fields) still reads the
// entries written since.
const (
	// DetailAccount is the account ID of the administrator who acted
	// (Actor). Absent in an entry written before entries recorded it, in
	// one by an account made before accounts carried an ID, and in one
	// not by an administrator.
	DetailAccount = "account"
	// DetailTargetAccount is the account ID an entry about an account is
	// about: the one "admin.create" made (or gave a new credential), the
	// one "admin.remove" removed, the one "admin.recover" recovered, the
	// one whose first authenticator "mfa.approve" approved (online or on
	// the server's host), the one whose second factors "mfa.reset" reset.
	DetailTargetAccount = "target_account"
)

// ActorAccount is the account ID of the administrator who acted, "" when
// the entry does not record one (see DetailAccount).
func (e *Entry) ActorAccount() string { return e.Detail[DetailAccount] }

// Who names the actor as the one person it stands for: the Actor and,
// when the entry records it, the account, as in
// "spiffe://example.org/admin/alice (account 3f…)". Two accounts of one
// name are two; an entry without an account is named by Actor alone, as
// entries were before accounts were recorded. What counts or matches
// actions by who took them keys by Who, not by Actor.
func (e *Entry) Who() string { return Who(e.Actor, e.ActorAccount()) }

// TargetAccount is the account ID the entry is about, "" when the entry
// does not record one (see DetailTargetAccount).
func (e *Entry) TargetAccount() string { return e.Detail[DetailTargetAccount] }

// TargetWho names the administrator the entry is about as Who names the
// actor: Target with the account it records (DetailTargetAccount), or,
// for an entry about its own actor (an enrolment, a security key
// registered) that records none, the actor's account; Target alone
// otherwise. What counts or matches entries by whom they are about keys
// by TargetWho, so two accounts of one name are two.
func (e *Entry) TargetWho() string {
	if a := e.TargetAccount(); a != "" {
		return Who(e.Target, a)
	}
	if e.Target != "" && e.Target == e.Actor {
		return e.Who()
	}
	return e.Target
}

// Who names one person acting: the SPIFFE ID id with the account, as in
// "spiffe://example.org/admin/alice (account 3f…)", or id alone when the
// account is "" (not recorded, or not an administrator's). Entry.Who and
// the agents' refusal records (flow.Moat.Account) name the acting
// administrator this way, so both count toward one subject.
func Who(id, account string) string {
	if account != "" {
		return id + " (account " + account + ")"
	}
	return id
}
