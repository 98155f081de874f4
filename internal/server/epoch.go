package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"moat/internal/audit"
	"moat/internal/store"
)

// A control plane restored from a backup holds the state of the backup's
// day: its store revision, revocation list and policy are older than what
// the agents took since, as those of a store that lags are. What tells
// the two apart is the restore epoch: moat backup restore marks the
// restored store with one above every epoch before it (MarkRestored), the
// watch stream carries it in every frame, and an agent takes the state of
// a newer epoch over the older versions it holds while it still refuses
// an older epoch, or the same one at an older revision. A store that
// lags behind a restore serves the epoch it held before.

// keyEpoch holds the store's restore record; absent until the first
// restore, which is epoch 0.
const keyEpoch = "restore/epoch"

// maxEpoch bounds a stored epoch, far beyond any restore's second, so
// that one more never overflows.
const maxEpoch = 1 << 62

// ActionRestored names the audit entry of a restore, written by the first
// server that starts on the restored store.
const ActionRestored = "store.restore"

// restoreRecord is keyEpoch's value.
type restoreRecord struct {
	// Epoch only grows: each restore sets it above the backup's.
	Epoch int64 `json:"epoch"`
	// From is the backup's epoch.
	From int64 `json:"from_epoch"`
	// Restored is when the restore was made, BackupMade when the backup was.
	Restored   time.Time `json:"restored"`
	BackupMade time.Time `json:"backup_made"`
	// AuditedBy names the server that took the writing of the restore's
	// audit entry (auditRestore), Audited is set once it is written.
	AuditedBy string `json:"audited_by,omitempty"`
	Audited   bool   `json:"audited,omitempty"`
	// Started is when the first server started on the restored store
	// (the one that claimed the audit entry): the credentials it signs
	// are held from then (restorehold.go).
	Started time.Time `json:"started,omitzero"`
}

// readEpoch returns the store's restore record and its revision (0 and a
// zero record when the store was never restored).
func readEpoch(ctx context.Context, st store.Store) (restoreRecord, int64, error) {
	var rec restoreRecord
	modRev, err := getJSONRev(ctx, st, keyEpoch, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return restoreRecord{}, 0, nil
	}
	if err != nil {
		return rec, 0, err
	}
	if rec.Epoch <= 0 || rec.Epoch > maxEpoch || rec.From < 0 || rec.From >= rec.Epoch {
		return rec, 0, fmt.Errorf("server: stored %q: epoch %d from %d is not a restore's", keyEpoch, rec.Epoch, rec.From)
	}
	return rec, modRev, nil
}

// MarkRestored marks st, a store just restored from a backup made at
// backupMade, with a new restore epoch and returns it: the restore's time
// in Unix seconds, or the backup's epoch plus one if that is more (a
// clock behind the backup's). A restore whose clock is behind an epoch
// the agents hold (another restore since the backup) is refused by them
// until moat agent floor reset. The first server started on st records
// the restore in the audit log.
func MarkRestored(ctx context.Context, st store.Store, backupMade, now time.Time) (int64, error) {
	rec, modRev, err := readEpoch(ctx, st)
	if err != nil {
		return 0, err
	}
	next := restoreRecord{Epoch: max(now.Unix(), rec.Epoch+1), From: rec.Epoch, Restored: now.UTC(), BackupMade: backupMade.UTC()}
	if _, err := st.Txn(ctx, []store.Cond{{Key: keyEpoch, ModRevision: modRev}}, []store.Op{store.Put(keyEpoch, mustJSON(next))}); err != nil {
		return 0, fmt.Errorf("server: marking the restored store's epoch: %w", err)
	}
	return next.Epoch, nil
}

// auditRestore writes the audit entry of a restore not yet recorded, then
// marks it recorded. The restored log is the backup's: the entry says
// how many entries it held, so that a witness of a longer log sees where
// it was cut back and why. Of servers starting together on one restored
// store, exactly one writes it: each first claims the writing under a
// check of the restore record's revision (AuditedBy), and only the one
// whose claim lands writes; the others find the claim and leave it. A
// server stopped between its claim and the entry writes it when it starts
// again (under the same name), which the others cannot tell from one
// still writing.
func (s *Server) auditRestore(ctx context.Context) error {
	rec, modRev, err := readEpoch(ctx, s.st)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if modRev == 0 || rec.Audited || (rec.AuditedBy != "" && rec.AuditedBy != s.cfg.Name) {
		return nil
	}
	if rec.AuditedBy == "" {
		rec.AuditedBy, rec.Started = s.cfg.Name, s.now().UTC()
		r, err := s.st.Txn(ctx, []store.Cond{{Key: keyEpoch, ModRevision: modRev}}, []store.Op{store.Put(keyEpoch, mustJSON(rec))})
		if errors.Is(err, store.ErrConflict) {
			// Another server claimed it (or a restore moved the epoch
			// on, which its first server records).
			return nil
		}
		if err != nil {
			return fmt.Errorf("server: claiming the restore's audit entry: %w", err)
		}
		modRev = r
	}
	d := map[string]string{
		"epoch":       strconv.FormatInt(rec.Epoch, 10),
		"from_epoch":  strconv.FormatInt(rec.From, 10),
		"backup_made": rec.BackupMade.Format(time.RFC3339),
		"restored":    rec.Restored.Format(time.RFC3339),
	}
	if s.cfg.AuditLog != nil {
		// The entries before this one are the backup's: those written
		// after the backup was made are not in the restored log.
		d["log_size"] = strconv.FormatInt(s.cfg.AuditLog.Size(), 10)
	}
	if err := s.record(ctx, audit.Entry{Time: s.now().UTC(), Actor: "control-plane", Action: ActionRestored, Target: "store", Result: "ok", Detail: d}); err != nil {
		return fmt.Errorf("server: recording the restore: %w", err)
	}
	rec.Audited = true
	_, err = s.st.Txn(ctx, []store.Cond{{Key: keyEpoch, ModRevision: modRev}}, []store.Op{store.Put(keyEpoch, mustJSON(rec))})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("server: marking the restore recorded: %w", err)
	}
	return nil
}
