package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/seal"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func auditCommand() *Command {
	return &Command{
		Name:    "audit",
		Summary: "show, verify and prove entries of the tamper-evident audit log",
		Help: "The audit log records every control-plane change. Each append signs a\n" +
			"checkpoint (origin, size, root hash) published in <data-dir>/audit/checkpoint.\n" +
			"verify recomputes every hash and checks the signatures; prove and check-proof\n" +
			"let someone holding only a checkpoint and the verifier key check one entry.",
		Sub: []*Command{auditLogCommand(), auditVerifyCommand(), auditProveCommand(), auditCheckProofCommand(), auditCheckpointCommand(), auditWitnessCommand()},
	}
}

// auditDirFlag declares --data-dir.
func auditDirFlag(fs *flag.FlagSet, dst *string) {
	fs.StringVar(dst, "data-dir", "", "moat data directory holding audit/ (default $MOAT_DATA_DIR or /var/lib/moat)")
}

// auditDir is the log directory inside the data directory.
func auditDir(e *Env, dataDir string) string {
	if dataDir == "" {
		dataDir = envDefault(e, "MOAT_DATA_DIR", "/var/lib/moat")
	}
	return filepath.Join(dataDir, audit.DirName)
}

func openAuditReadOnly(e *Env, dataDir, keyFile string) (*audit.Log, error) {
	cfg := audit.Config{Dir: auditDir(e, dataDir), ReadOnly: true}
	if _, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("audit: no log in %q: %w", cfg.Dir, err)
	}
	if keyFile != "" {
		v, err := audit.LoadVerifier(keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Verifier = v
	}
	return audit.Open(cfg)
}

func auditLogCommand() *Command {
	var (
		af       adminFlags
		kek      seal.KEKConfig
		dataDir  string
		from, to int64
	)
	return &Command{
		Name:    "log",
		Summary: "print entries",
		Usage:   "[--from N] [--to N] [--output table|json] [--data-dir DIR]",
		Help: "log asks the control plane (--server, with admin credentials of any role) for\n" +
			"the entries from --from (inclusive) to --to (exclusive; default: the end).\n" +
			"With --data-dir it reads a server's data directory instead, opening its\n" +
			"keyring with the key-encryption key (--kek-*) to show sealed entries.\n" +
			"ACCOUNT is the account ID of the administrator who acted (\"moat admin list\n" +
			"--output json\" shows each account's): a name removed and made again is\n" +
			"another account. \"-\" for an entry by no administrator, or written before\n" +
			"entries recorded the account.",
		Flags: func(fs *flag.FlagSet) {
			af.register(fs)
			fs.StringVar(&dataDir, "data-dir", "", "read this server data directory instead of asking the server")
			kekFlags(fs, &kek)
			fs.Int64Var(&from, "from", 0, "first entry to print")
			fs.Int64Var(&to, "to", -1, "entry to stop before (-1: the end)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "audit log"); err != nil {
				return err
			}
			if af.output != "table" && af.output != "json" {
				return usagef("audit log: --output %q: want table or json", af.output)
			}
			if from < 0 || to < -1 || (to >= 0 && to < from) {
				return usagef("audit log: want 0 <= --from <= --to (or --to -1 for the end)")
			}
			var es []audit.Indexed
			var err error
			if dataDir != "" {
				es, err = localAuditEntries(e, &kek, dataDir, from, to)
			} else {
				es, err = remoteAuditEntries(ctx, e, &af, from, to)
			}
			if err != nil {
				return err
			}
			if af.output == "json" {
				for _, x := range es {
					if err := writeJSONLine(e.Stdout, x); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tTIME\tACTOR\tROLE\tACTION\tTARGET\tRESULT\tACCOUNT")
			for _, x := range es {
				en := x.Entry
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Index, en.Time.UTC().Format(time.RFC3339),
					dash(en.Actor), dash(en.Role), dash(en.Action), dash(en.Target), dash(en.Result), dash(en.ActorAccount()))
			}
			return tw.Flush()
		},
	}
}

// localAuditEntries reads entries [from, to) of a data directory's log,
// unsealed with the keyring the KEK opens; to < 0 means the end.
func localAuditEntries(e *Env, kek *seal.KEKConfig, dataDir string, from, to int64) ([]audit.Indexed, error) {
	if err := kek.Validate("kek"); err != nil {
		return nil, usagef("%v", err)
	}
	kr, _, err := openKeyring(e, kek, dataDir, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dataDir, err)
	}
	cfg := audit.Config{Dir: filepath.Join(dataDir, audit.DirName), ReadOnly: true, Sealer: kr.AEAD()}
	if _, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("audit: no log in %q: %w", cfg.Dir, err)
	}
	l, err := audit.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if to < 0 || to > l.Size() {
		to = l.Size()
	}
	return l.Entries(min(from, to), to)
}

// remoteAuditEntries pages through the server's log; to < 0 means the end
// as the first answer saw it.
func remoteAuditEntries(ctx context.Context, e *Env, af *adminFlags, from, to int64) ([]audit.Indexed, error) {
	c, err := af.connect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []audit.Indexed
	for {
		q := url.Values{"from": {strconv.FormatInt(from, 10)}}
		if to >= 0 {
			q.Set("to", strconv.FormatInt(to, 10))
		}
		var page api.AuditEntries
		if err := c.Call(ctx, http.MethodGet, api.PathAudit+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		if to < 0 || to > page.Size {
			to = page.Size
		}
		out = append(out, page.Entries...)
		if len(page.Entries) == 0 || from+int64(len(page.Entries)) >= to {
			return out, nil
		}
		from += int64(len(page.Entries))
	}
}

// dash is s as a table cell, "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return cell(s)
}

// trustedFlag collects --trusted checkpoint files.
type trustedFlag []string

func (t *trustedFlag) String() string     { return strings.Join(*t, ",") }
func (t *trustedFlag) Set(v string) error { *t = append(*t, v); return nil }

func (t trustedFlag) read() ([][]byte, error) {
	var out [][]byte
	for _, p := range t {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("audit verify: --trusted: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

// remoteAudit is the CLI's view of a server's audit log: the verifier key
// pinned beside the admin credentials (written by "moat server init") and
// the newest checkpoint this CLI checked, which it witnesses.
type remoteAudit struct {
	c        *api.Client
	v        note.Verifier
	witness  *audit.Witness
	keySaid  string // where the verifier key came from
	adminDir string
}

// openRemoteAudit connects to the server's log. keyFile, when set, is the
// verifier key to use; else the one pinned in the admin directory; else
// (credentials from before the key was pinned at init) the server's, pinned
// now, with a warning.
func openRemoteAudit(e *Env, af *adminFlags, keyFile string) (*remoteAudit, error) {
	c, err := af.connect(context.Background(), e)
	if err != nil {
		return nil, err
	}
	r := &remoteAudit{c: c.Client, adminDir: af.dir(e)}
	pinned := filepath.Join(r.adminDir, api.AuditKeyFile)
	switch {
	case keyFile != "":
		r.keySaid = keyFile
	case fileExists(pinned):
		keyFile, r.keySaid = pinned, pinned
	default:
		var cp api.AuditCheckpoint
		if err := c.Call(context.Background(), http.MethodGet, api.PathCheckpoint, nil, &cp); err != nil {
			c.Close()
			return nil, err
		}
		if _, err := audit.ParseVerifier(cp.Key); err != nil {
			c.Close()
			return nil, fmt.Errorf("audit: the server's verifier key: %w", err)
		}
		if err := os.WriteFile(pinned, []byte(cp.Key+"\n"), 0o644); err != nil {
			c.Close()
			return nil, err
		}
		fmt.Fprintf(e.Stderr, "moat: audit: no verifier key was pinned; pinned the server's (%s) in %s\n", cp.Key, pinned)
		keyFile, r.keySaid = pinned, pinned
	}
	if r.v, err = audit.LoadVerifier(keyFile); err != nil {
		c.Close()
		return nil, err
	}
	if r.witness, err = audit.OpenWitness(filepath.Join(r.adminDir, api.AuditCheckpointFile), r.v); err != nil {
		c.Close()
		return nil, err
	}
	return r, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// witnessed fetches the server's latest checkpoint with a proof that it
// extends the newest one this CLI checked before, checks both, and
// remembers it. A checkpoint that does not extend it fails cmd with exit
// status 1.
func (r *remoteAudit) witnessed(ctx context.Context, cmd string) ([]byte, error) {
	_, err := r.witness.Update(func(from int64) ([]byte, tlog.TreeProof, error) {
		var resp api.AuditConsistency
		if err := r.c.Call(ctx, http.MethodGet, fmt.Sprintf("%s?from=%d", api.PathAuditConsistency, from), nil, &resp); err != nil {
			return nil, nil, err
		}
		p, err := audit.ParseProofBytes(resp.Proof)
		return []byte(resp.Checkpoint), p, err
	})
	if errors.Is(err, audit.ErrInconsistent) {
		return nil, &ExitError{Code: 1, Msg: fmt.Sprintf("%s: FAILED: %v (the checkpoint kept in %s); if the control plane was restored from a backup on purpose, the log shows it (moat audit log: store.restore, with the restored log's size) and moat audit witness reset drops the checkpoint", cmd, err, filepath.Join(r.adminDir, api.AuditCheckpointFile))}
	}
	if err != nil {
		return nil, err
	}
	signed, _ := r.witness.Latest()
	return signed, nil
}

// page fetches stored entries [from, to) (one page at most).
func (r *remoteAudit) page(ctx context.Context) func(from, to int64) ([][]byte, error) {
	return func(from, to int64) ([][]byte, error) {
		var resp api.AuditStored
		if err := r.c.Call(ctx, http.MethodGet, fmt.Sprintf("%s?from=%d&to=%d", api.PathAuditStored, from, to), nil, &resp); err != nil {
			return nil, err
		}
		return resp.Entries, nil
	}
}

func auditVerifyCommand() *Command {
	var (
		dataDir, key string
		all          bool
		trusted      trustedFlag
		af           adminFlags
	)
	return &Command{
		Name:    "verify",
		Summary: "recompute every hash and check the signed checkpoints",
		Usage:   "[--data-dir DIR | --server ADDR] [--key FILE] [--trusted CHECKPOINT]... [--all-checkpoints]",
		Help: "verify exits 0 only when every stored entry matches its stored hashes, the\n" +
			"recomputed tree matches every checkpoint of the history, the latest checkpoint\n" +
			"and the published copy carry a valid signature, and the latest covers every\n" +
			"entry. Otherwise it names the first entry that is not vouched for and exits 1.\n" +
			"Pass --key with a verifier key kept outside the data directory: a key read\n" +
			"from the directory is only as trustworthy as the directory.\n\n" +
			"A log cut back to an earlier checkpoint, or rewritten and re-signed by\n" +
			"someone holding the signer key, is consistent with itself. --trusted names a\n" +
			"checkpoint saved earlier (\"moat audit checkpoint > FILE\"); the log must still\n" +
			"hold every entry it covers, with the same tree.\n\n" +
			"With --server (or MOAT_SERVER set and no --data-dir) verify asks the server:\n" +
			"it fetches the entries as stored and recomputes the tree itself, checks the\n" +
			"checkpoint with the verifier key pinned beside the admin credentials, and\n" +
			"witnesses the log: it keeps the newest checkpoint it checked in the admin\n" +
			"directory and fails if the server's no longer extends it. That is how a\n" +
			"cluster's log (kept in etcd) is verified.",
		Flags: func(fs *flag.FlagSet) {
			auditDirFlag(fs, &dataDir)
			fs.StringVar(&af.server, "server", "", "verify the log of this control plane over its API (env MOAT_SERVER)")
			fs.StringVar(&af.adminDir, "admin-dir", "", "admin credentials directory, with --server (env MOAT_ADMIN_DIR)")
			fs.StringVar(&key, "key", "", "verifier key file (default <data-dir>/audit/audit.pub, or with --server the key pinned in the admin directory)")
			fs.Var(&trusted, "trusted", "a checkpoint saved earlier that the log must still extend (repeatable)")
			fs.BoolVar(&all, "all-checkpoints", false, "also check the signature of every checkpoint in the history (offline)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "audit verify"); err != nil {
				return err
			}
			tr, err := trusted.read()
			if err != nil {
				return err
			}
			if remoteMode(e, &af, dataDir) {
				return verifyRemote(ctx, e, &af, key, tr)
			}
			keyPath := key
			if keyPath == "" {
				keyPath = filepath.Join(auditDir(e, dataDir), audit.VerifierKeyFile)
				fmt.Fprintf(e.Stderr, "moat: audit verify: using the verifier key in the data directory (%s); pass --key for an independent check\n", keyPath)
			}
			l, err := openAuditReadOnly(e, dataDir, keyPath)
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.VerifyWith(ctx, audit.VerifyOptions{AllCheckpoints: all, Trusted: tr}); err != nil {
				return &ExitError{Code: 1, Msg: fmt.Sprintf("audit verify: FAILED: %v", err)}
			}
			signed, err := l.Checkpoint()
			if err != nil {
				return err
			}
			c, err := audit.OpenCheckpoint(signed, l.Verifier())
			if err != nil {
				return err
			}
			printVerified(e, c, len(tr))
			return nil
		},
	}
}

// remoteMode reports whether an audit command asks the server: --server
// given, or MOAT_SERVER set and no --data-dir.
func remoteMode(e *Env, af *adminFlags, dataDir string) bool {
	return af.server != "" || (dataDir == "" && e.Getenv("MOAT_SERVER") != "")
}

func verifyRemote(ctx context.Context, e *Env, af *adminFlags, key string, trusted [][]byte) error {
	r, err := openRemoteAudit(e, af, key)
	if err != nil {
		return err
	}
	defer r.c.Close()
	signed, err := r.witnessed(ctx, "audit verify")
	if err != nil {
		return err
	}
	c, err := audit.CheckEntries(ctx, r.v, signed, r.page(ctx), audit.VerifyOptions{Trusted: trusted})
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("audit verify: FAILED: %v", err)}
		}
		return err
	}
	printVerified(e, c, len(trusted))
	return nil
}

func printVerified(e *Env, c audit.Checkpoint, trusted int) {
	fmt.Fprintf(e.Stdout, "ok: %d entries verified; checkpoint %s size %d root %s\n",
		c.Size, c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	if trusted > 0 {
		fmt.Fprintf(e.Stdout, "ok: the log extends the %d trusted checkpoint(s)\n", trusted)
	}
}

func auditProveCommand() *Command {
	var (
		dataDir, cpOut string
		af             adminFlags
	)
	return &Command{
		Name:    "prove",
		Summary: "print an inclusion proof of entry N",
		Usage:   "[--data-dir DIR | --server ADDR] [--checkpoint FILE] N",
		Help: "prove prints a proof that entry N is in the tree of the latest signed\n" +
			"checkpoint. Give it, with that checkpoint, to \"moat audit check-proof\".\n" +
			"With --server (a cluster's log lives in etcd) the server's proof is checked\n" +
			"here before it is printed: signed by the pinned verifier key, the entry in\n" +
			"that tree, and the tree no smaller than the newest this CLI witnessed.\n" +
			"--checkpoint writes the signed checkpoint the proof holds against.",
		Flags: func(fs *flag.FlagSet) {
			auditDirFlag(fs, &dataDir)
			fs.StringVar(&cpOut, "checkpoint", "", "write the signed checkpoint the proof holds against to this file")
			fs.StringVar(&af.server, "server", "", "ask this control plane over its API (env MOAT_SERVER)")
			fs.StringVar(&af.adminDir, "admin-dir", "", "admin credentials directory, with --server (env MOAT_ADMIN_DIR)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() != 1 {
				return usagef("audit prove: want one entry index")
			}
			n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
			if err != nil || n < 0 {
				return usagef("audit prove: bad entry index %q", fs.Arg(0))
			}
			var proof, cp []byte
			if remoteMode(e, &af, dataDir) {
				if proof, cp, err = proveRemote(ctx, e, &af, n); err != nil {
					return err
				}
			} else {
				l, err := openAuditReadOnly(e, dataDir, "")
				if err != nil {
					return err
				}
				defer l.Close()
				p, err := l.Prove(n)
				if err != nil {
					return err
				}
				if proof, err = p.MarshalText(); err != nil {
					return err
				}
				if cp, err = l.Checkpoint(); err != nil {
					return err
				}
			}
			if cpOut != "" {
				if err := os.WriteFile(cpOut, cp, 0o644); err != nil {
					return fmt.Errorf("audit prove: %w", err)
				}
			}
			_, err = e.Stdout.Write(proof)
			return err
		},
	}
}

// proveRemote prints the server's proof of entry n once it holds: signed
// by the pinned key, the entry in that tree, and the tree at least the
// newest this CLI witnessed (a server cannot answer from a log it cut
// back).
func proveRemote(ctx context.Context, e *Env, af *adminFlags, n int64) (proof, checkpoint []byte, err error) {
	r, err := openRemoteAudit(e, af, "")
	if err != nil {
		return nil, nil, err
	}
	defer r.c.Close()
	signed, err := r.witnessed(ctx, "audit prove")
	if err != nil {
		return nil, nil, err
	}
	seen, err := audit.OpenCheckpoint(signed, r.v)
	if err != nil {
		return nil, nil, err
	}
	var resp api.AuditProof
	if err := r.c.Call(ctx, http.MethodGet, fmt.Sprintf("%s?n=%d", api.PathAuditProof, n), nil, &resp); err != nil {
		return nil, nil, err
	}
	_, cp, err := audit.CheckProofWith([]byte(resp.Checkpoint), r.v, []byte(resp.Proof))
	if err == nil && cp.Size < seen.Size {
		err = fmt.Errorf("the proof is against a tree of %d entries, smaller than the %d this CLI witnessed", cp.Size, seen.Size)
	}
	if err != nil {
		return nil, nil, &ExitError{Code: 1, Msg: fmt.Sprintf("audit prove: FAILED: the server's proof of entry %d: %v", n, err)}
	}
	return []byte(resp.Proof), []byte(resp.Checkpoint), nil
}

func auditCheckpointCommand() *Command {
	var (
		dataDir string
		af      adminFlags
	)
	return &Command{
		Name:    "checkpoint",
		Summary: "print the latest signed checkpoint",
		Help: "checkpoint prints the log's latest signed checkpoint; keep it somewhere the\n" +
			"server cannot write, and pass it later to \"moat audit verify --trusted\".\n" +
			"With --server it prints the server's, after checking that it extends the\n" +
			"newest this CLI checked before.",
		Flags: func(fs *flag.FlagSet) {
			auditDirFlag(fs, &dataDir)
			fs.StringVar(&af.server, "server", "", "ask this control plane over its API (env MOAT_SERVER)")
			fs.StringVar(&af.adminDir, "admin-dir", "", "admin credentials directory, with --server (env MOAT_ADMIN_DIR)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "audit checkpoint"); err != nil {
				return err
			}
			if remoteMode(e, &af, dataDir) {
				r, err := openRemoteAudit(e, &af, "")
				if err != nil {
					return err
				}
				defer r.c.Close()
				signed, err := r.witnessed(ctx, "audit checkpoint")
				if err != nil {
					return err
				}
				_, err = e.Stdout.Write(signed)
				return err
			}
			l, err := openAuditReadOnly(e, dataDir, "")
			if err != nil {
				return err
			}
			defer l.Close()
			cp, err := l.Checkpoint()
			if err != nil {
				return err
			}
			_, err = e.Stdout.Write(cp)
			return err
		},
	}
}

func auditWitnessCommand() *Command {
	var af adminFlags
	reset := &Command{
		Name:    "reset",
		Summary: "drop the audit checkpoint this CLI witnessed, after a deliberate restore of the control plane",
		Usage:   "[--admin-dir DIR]",
		Help: "The admin CLI keeps the newest checkpoint of the server's audit log it\n" +
			"checked (ADMIN_DIR/audit.checkpoint) and refuses a log that does not extend\n" +
			"it: a log cut back or rewritten, and also one restored from a backup on\n" +
			"purpose. After such a restore, reset prints the checkpoint it drops (its\n" +
			"size and root, for the record) and moves it to\n" +
			"ADMIN_DIR/audit.checkpoint.dropped-TIME, where moat audit verify --trusted\n" +
			"can still check a log against it. The next command that reads the log\n" +
			"trusts the checkpoint it is shown on first use. Nothing is asked of the\n" +
			"server.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&af.adminDir, "admin-dir", "", "admin credentials directory (env MOAT_ADMIN_DIR)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "audit witness reset"); err != nil {
				return err
			}
			dir := af.dir(e)
			if dir == "" {
				return usagef("audit witness reset: --admin-dir (or MOAT_ADMIN_DIR) is required")
			}
			v, verr := audit.LoadVerifier(filepath.Join(dir, api.AuditKeyFile))
			if verr != nil {
				v = nil
			}
			d, err := audit.DropWitnessed(filepath.Join(dir, api.AuditCheckpointFile), v, time.Now())
			if errors.Is(err, audit.ErrNoWitnessed) {
				fmt.Fprintf(e.Stdout, "%s holds no witnessed audit checkpoint; nothing to drop\n", dir)
				return nil
			}
			if err != nil {
				return err
			}
			if verr != nil {
				d.Unverified = verr.Error()
			}
			if d.Unverified != "" {
				fmt.Fprintf(e.Stdout, "dropped the audit checkpoint this CLI witnessed, which does not verify: %s\n", d.Unverified)
			} else {
				fmt.Fprintf(e.Stdout, "dropped the audit checkpoint this CLI witnessed: %d entries, root %s\n", d.Checkpoint.Size, d.Checkpoint.Root)
			}
			fmt.Fprintf(e.Stdout, "kept as %s\nthe next command that reads the log trusts its checkpoint on first use\n", d.Kept)
			return nil
		},
	}
	return &Command{Name: "witness", Summary: "the audit checkpoint this CLI witnessed", Sub: []*Command{reset}}
}

func auditCheckProofCommand() *Command {
	var cpFile, keyFile string
	return &Command{
		Name:    "check-proof",
		Summary: "check an inclusion proof against a checkpoint and a verifier key",
		Usage:   "--checkpoint FILE --key FILE [PROOF_FILE]",
		Help: "check-proof needs no log: only the signed checkpoint, the public verifier key\n" +
			"and the proof (from PROOF_FILE, or standard input when absent or \"-\").\n" +
			"It exits 0 and prints the entry when the proof holds.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cpFile, "checkpoint", "", "signed checkpoint file (required)")
			fs.StringVar(&keyFile, "key", "", "verifier key file (required)")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if cpFile == "" || keyFile == "" {
				return usagef("audit check-proof: --checkpoint and --key are required")
			}
			if fs.NArg() > 1 {
				return usagef("audit check-proof: at most one proof file")
			}
			cp, err := os.ReadFile(cpFile)
			if err != nil {
				return fmt.Errorf("audit check-proof: %w", err)
			}
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("audit check-proof: %w", err)
			}
			var proof []byte
			if fs.NArg() == 0 || fs.Arg(0) == "-" {
				proof, err = io.ReadAll(io.LimitReader(e.Stdin, 4<<20))
			} else {
				proof, err = os.ReadFile(fs.Arg(0))
			}
			if err != nil {
				return fmt.Errorf("audit check-proof: %w", err)
			}
			p, err := audit.CheckProof(cp, string(key), proof)
			if err != nil {
				return &ExitError{Code: 1, Msg: fmt.Sprintf("audit check-proof: FAILED: %v", err)}
			}
			fmt.Fprintf(e.Stdout, "ok: entry %d is in the signed tree of %d entries\n", p.Index, p.Size)
			if audit.IsSealed(p.Entry) {
				fmt.Fprintln(e.Stdout, "(the entry is sealed)")
				return nil
			}
			en, err := audit.DecodeEntry(p.Index, p.Entry, nil)
			if err != nil {
				return &ExitError{Code: 1, Msg: fmt.Sprintf("audit check-proof: the proved entry does not decode: %v", err)}
			}
			return writeJSONLine(e.Stdout, en)
		},
	}
}
