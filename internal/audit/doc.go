// Package audit is moat's tamper-evident record of administrative actions.
//
// Every control-plane change is one Entry, appended to a Log through the
// Recorder interface. The log is an RFC 6962 Merkle tree built with
// golang.org/x/mod/sumdb/tlog; every append signs a checkpoint with
// golang.org/x/mod/sumdb/note in the tlog checkpoint text format (origin,
// tree size, base64 root hash). Anyone holding a checkpoint and the public
// verifier key can check an inclusion proof from Prove with CheckProof,
// without the log.
//
// # Storage
//
// A Log is a directory of plain append-only files:
//
//	entries      4-byte big-endian length + stored entry bytes, per entry
//	hashes       tlog's stored hashes, 32 bytes each, in StoredHashIndex order
//	checkpoints  4-byte length + signed checkpoint, one per append
//	checkpoint   a copy of the latest signed checkpoint, for publishing
//	audit.pub    the verifier key, for offline checks
//	audit.key    the note signer key (0600), only when the log keeps its own
//	             key (tests, standalone use); a server passes Config.Signer
//	             from StoreKey, which keeps it sealed in the control-plane store
//
// Flat files rather than bbolt or SQLite, because the log is append-only
// and this is the layout tlog's HashReader design assumes (hash i at byte
// 32·i); because a verifier in another process, or on a copy made with cp
// or rsync, reads it without taking a database's writer lock; and because
// every byte that the hashes cover is visible as is, with no page layout in
// between. A writer holds writer.lock for its lifetime; each append holds an
// exclusive flock on "lock" and readers take it shared for the instant they
// record the file sizes, so a reader never sees half an append.
//
// An append writes the entry, its hashes and its checkpoint, then fsyncs
// the three files; it is committed when its checkpoint is on disk, and
// only then does Record return. A crash can leave a partial or uncommitted
// tail in any of the files: a read-only Verify reports it as the first bad
// index, and a writer's Open cuts it, saves the cut bytes as
// "<file>.cut-<index>", logs a warning and appends an "audit.repair" entry
// saying what was cut. Open never signs what was not signed at append time,
// and refuses to cut anything a signed checkpoint covers: that is damage,
// for Verify to name.
//
// # A log for a cluster
//
// StoreLog keeps the same tree in a store.Store that several servers share
// (etcd): entries, their stored hashes and every signed checkpoint under a
// key prefix, and a head key holding the latest checkpoint. An append is
// one store transaction conditional on the head it extends, so whichever
// server writes an entry, the cluster has one sequence; a server that
// loses the race rebuilds on the winner's tree and tries again. Every
// server signs with the one key StoreKey keeps in the store.
//
// # Witnesses
//
// A log is consistent with itself after someone holding the signer key
// cut it back or rewrote it. Checkpoints kept elsewhere catch that: a
// Witness (an agent, a CLI) remembers the newest checkpoint it checked and
// accepts a new one only with a consistency proof (ProveConsistency) that
// it extends the remembered one, and VerifyOptions.Trusted checks a log
// against checkpoints saved earlier, naming the first entry they no longer
// vouch for.
//
// # Encryption
//
// With Config.Sealer (a tink.AEAD, say) entries are stored encrypted, with
// the index as associated data. The hashes cover the stored bytes, so
// Verify and Prove need no key; Entries needs it to show the plaintext. A
// log is sealed throughout or not at all: a plaintext entry in a sealed
// log (which someone without the key could have written) fails Verify.
//
// A writer verifies the whole log when it opens and refuses to append to
// a damaged one, naming the entry and the file. A failed append (a full
// disk) is cut back before Append returns, so the next one succeeds once
// the disk has room, with no reopen.
//
// # What a checkpoint proves
//
// Verify recomputes the tree from the stored entries and compares it with
// the stored hashes (naming the first entry whose bytes changed) and with
// the root of every checkpoint in the history (naming the first entry a
// rewrite of entries and hashes together reached). A verifier key kept in
// the directory is only as trustworthy as the directory; pass one kept
// elsewhere, and publish checkpoints outside the host, to detect an
// attacker who can write the directory. Whoever holds the signer key can
// rewrite history; keep it where the data directory's readers cannot, and
// keep checkpoints elsewhere (see Witnesses).
package audit
