package server

import (
	"context"
	"fmt"
	"strconv"

	"moat/internal/store"
)

// DetailStoreRev is the audit detail holding the store's revision when the
// entry was written.
const DetailStoreRev = "store_rev"

// maxStoreRevLookback bounds how far back from the log's end the start-up
// check looks for an entry carrying the store's revision.
const maxStoreRevLookback = 1000

// storeRev is the store's revision as an audit detail, "" when it cannot
// be read (the entry is written without it rather than not at all).
func (s *Server) storeRev(ctx context.Context) string {
	rev, err := s.st.Rev(context.WithoutCancel(ctx))
	if err != nil {
		return ""
	}
	return strconv.FormatInt(rev, 10)
}

// checkStoreNotOlder refuses an embedded store older than the audit log
// beside it. Each entry the server writes carries the store's revision,
// which only grows, so a store.db put back from an earlier copy (records
// that open under their keys, counts and digest recomputed) is behind the
// newest such entry. The log cannot be cut back to hide it without its
// witnesses seeing. A store in etcd is not checked: a cluster's log lives
// in the same etcd, and a restore there starts the revisions afresh.
func (s *Server) checkStoreNotOlder(ctx context.Context) error {
	if _, ok := s.st.(*store.Bolt); !ok || s.cfg.AuditLog == nil {
		return nil
	}
	size := s.cfg.AuditLog.Size()
	for to := size; to > 0 && size-to < maxStoreRevLookback; {
		from := max(0, to-100, size-maxStoreRevLookback)
		es, err := s.cfg.AuditLog.Entries(from, to)
		if err != nil {
			return fmt.Errorf("server: reading the audit log's last entries: %w", err)
		}
		for i := len(es) - 1; i >= 0; i-- {
			v, ok := es[i].Entry.Detail[DetailStoreRev]
			if !ok {
				continue
			}
			logged, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("server: audit entry %d: %s %q is not a revision", es[i].Index, DetailStoreRev, v)
			}
			rev, err := s.st.Rev(ctx)
			if err != nil {
				return fmt.Errorf("server: %w", err)
			}
			if rev < logged {
				return fmt.Errorf("server: the store (store.db) is at revision %d, older than the audit log: entry %d was written with it at revision %d; store.db was put back from an earlier copy, or lost committed writes",
					rev, es[i].Index, logged)
			}
			return nil
		}
		to = from
	}
	return nil
}
