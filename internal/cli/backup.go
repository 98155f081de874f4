package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/backup"
	"moat/internal/flow"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

func backupCommand() *Command {
	create := adminCommand("create", "write an encrypted backup of the server's state to FILE", "FILE", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if fs.NArg() != 1 {
				return usagef("backup create: want one FILE")
			}
			path := fs.Arg(0)
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("backup create: %q already exists; nothing was written", path)
			}
			tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-")
			if err != nil {
				return fmt.Errorf("backup create: %w", err)
			}
			defer os.Remove(tmp.Name())
			n, err := c.Download(ctx, http.MethodPost, api.PathBackup, api.BackupRequest{}, tmp)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("backup create: %w", err)
			}
			if err := os.Link(tmp.Name(), path); err != nil {
				return fmt.Errorf("backup create: %w", err)
			}
			fmt.Fprintf(e.Stdout, "backup written to %s (%d bytes, encrypted under the server's KEK)\n", path, n)
			return nil
		})
	return &Command{Name: "backup", Summary: "encrypted backups of the control plane's state",
		Sub: []*Command{create, backupRestoreCommand(), backupVerifyCommand()}}
}

// backupKEK holds the --kek-* flags of the local backup commands.
type backupKEK struct {
	c         server.File
	file      *string
	flowsOnly bool
	// otherTD restores a backup of another trust domain than c's.
	otherTD bool
	// caRoot, when set, is the fingerprint of the target cluster's root
	// (--ca-fingerprint); otherCA restores a backup of another CA.
	caRoot  string
	otherCA bool
}

func (b *backupKEK) flags(fs *flag.FlagSet) {
	b.file = fs.String("config", "", "the server's configuration file: its data_dir, kek and, for a cluster, store (etcd)")
	fs.StringVar(&b.c.DataDir, "data-dir", "", "the data directory to restore into: absent or empty (required)")
	kekFlags(fs, &b.c.KEK)
}

func backupRestoreCommand() *Command {
	b := &backupKEK{}
	flags := func(fs *flag.FlagSet) {
		b.flags(fs)
		fs.BoolVar(&b.flowsOnly, "flows-only", false, "restore only this server's flow records into its data directory (a cluster whose control plane was restored through another server)")
		fs.StringVar(&b.c.TrustDomain, "trust-domain", "", "the trust domain of the cluster restored to (the configuration's trust_domain): a backup of another is refused")
		fs.BoolVar(&b.otherTD, "allow-other-trust-domain", false, "restore a backup of another trust domain than --trust-domain's, or one that records none (a deliberate migration)")
		fs.StringVar(&b.caRoot, "ca-fingerprint", "", "the SHA-256 fingerprint of the target cluster's root certificate (as moat server init and moat ca show print it): a backup of another CA is refused")
		fs.BoolVar(&b.otherCA, "allow-other-ca", false, "restore a backup of another CA than --ca-fingerprint's, or one that records none (a deliberate migration)")
	}
	return &Command{
		Name:    "restore",
		Summary: "restore a backup into a fresh data directory",
		Usage:   "--data-dir DIR [--kek-source ...] [--kek-file PATH] FILE | --config server.yaml FILE",
		Help: "Checks the whole backup (authenticity under the KEK, every segment, the\n" +
			"manifest) while unpacking it beside DIR, and moves it into place only then:\n" +
			"a corrupt, truncated or wrongly keyed backup leaves nothing behind. DIR must\n" +
			"be absent or empty. The KEK is the server's (default DIR.kek).\n" +
			"The restored store is marked with a new epoch, above every one before it:\n" +
			"agents take its state over the newer versions they hold (no moat agent\n" +
			"floor reset), keeping the revocations they hold that it lacks and handing\n" +
			"them back (the control plane applies again those it tagged itself), and\n" +
			"still refuse a store of an earlier epoch. One server started on it records\n" +
			"the restore in the audit log; the log restored is the backup's, which the\n" +
			"witnesses of a longer one refuse until moat agent witness reset.\n" +
			"With --config naming an etcd store, the state and keyring are then loaded\n" +
			"into the cluster's etcd prefix, which must hold no key, all or nothing (a\n" +
			"load cut short is taken out again, and DIR with it); every server of the\n" +
			"cluster then starts on it.\n" +
			"A cluster's backup holds every server's flow records; each server gets its\n" +
			"own, by its name (the configuration's name): the server restored first\n" +
			"with the rest, every other one with --flows-only --config its own file.\n" +
			"A backup records the trust domain it was made in: when the target names\n" +
			"one (--trust-domain, or trust_domain in --config), a backup of another, or\n" +
			"one made before backups recorded it, is refused unless\n" +
			"--allow-other-trust-domain says the migration is meant. Two clusters of\n" +
			"one trust domain differ in their CA: a backup records the SHA-256 of each\n" +
			"root certificate of its trust bundle, and with --ca-fingerprint (the\n" +
			"target's root, as moat server init and moat ca show print it) a backup\n" +
			"of another CA, or one made before backups recorded it, is refused unless\n" +
			"--allow-other-ca. With none of these, as for a disaster recovery into an\n" +
			"empty directory, any backup the KEK opens is restored.",
		Flags: flags,
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() != 1 {
				return usagef("backup restore: want one FILE")
			}
			if err := withConfigFile(fs, *b.file, &b.c); err != nil {
				return err
			}
			if b.c.DataDir == "" {
				return usagef("backup restore: --data-dir is required")
			}
			if err := b.c.Validate(false); err != nil {
				return err
			}
			caRoot := ""
			if b.caRoot != "" {
				var err error
				if caRoot, err = backup.ParseCAFingerprint(b.caRoot); err != nil {
					return usagef("backup restore: --ca-fingerprint: %v", err)
				}
			}
			kek, err := b.c.KEK.Load(b.c.DataDir, e.Getenv, false)
			if err != nil {
				return fmt.Errorf("backup restore: %w", err)
			}
			check := sameCluster(b.c.TrustDomain, b.otherTD, caRoot, b.otherCA)
			if b.flowsOnly {
				return restoreFlowsOnly(e, &b.c, kek, fs.Arg(0), check)
			}
			if b.c.Store.Backend == "etcd" {
				if err := etcdPrefixFree(ctx, &b.c); err != nil {
					return fmt.Errorf("backup restore: %w; nothing was restored", err)
				}
			}
			f, err := os.Open(fs.Arg(0))
			if err != nil {
				return fmt.Errorf("backup restore: %w", err)
			}
			defer f.Close()
			m, err := backup.RestoreChecked(f, kek, b.c.DataDir, check)
			if err != nil {
				return fmt.Errorf("backup restore %q: %w; nothing was restored", fs.Arg(0), kekOfItsDay(err))
			}
			kr, err := seal.Open(seal.Config{Dir: b.c.DataDir, KEK: kek, NoCreate: true})
			if err != nil {
				return fmt.Errorf("backup restore: restored %q but its keyring does not open: %w", b.c.DataDir, err)
			}
			epoch, err := markRestored(ctx, b.c.DataDir, kr, m)
			if err != nil {
				return fmt.Errorf("backup restore: restored %q, but %w", b.c.DataDir, err)
			}
			note, err := server.PlaceServerFlows(b.c.DataDir, b.c.Name)
			if err != nil {
				return fmt.Errorf("backup restore: %w", err)
			}
			if note != "" {
				fmt.Fprintln(e.Stdout, note)
			}
			if b.c.Store.Backend == "etcd" {
				if err := restoreToEtcd(ctx, &b.c, kr); err != nil {
					// All or nothing: the directory goes with what etcd
					// did not take.
					if rerr := os.RemoveAll(b.c.DataDir); rerr != nil {
						return fmt.Errorf("backup restore: loading the state into etcd: %w; %q is left (%v)", err, b.c.DataDir, rerr)
					}
					if errors.Is(err, errLeftInEtcd) {
						return fmt.Errorf("backup restore: loading the state into etcd: %w", err)
					}
					return fmt.Errorf("backup restore: loading the state into etcd: %w; nothing was restored", err)
				}
				fmt.Fprintf(e.Stdout, "restored %d entries of the backup made %s into %s and the state into etcd %v prefix %q\nnext: moat server run --config %s\n",
					len(m.Files), m.Created.Format("2006-01-02T15:04:05Z"), b.c.DataDir, b.c.Store.Endpoints, etcdPrefix(b.c.Store), *b.file)
			} else {
				fmt.Fprintf(e.Stdout, "restored %d entries of the backup made %s into %s\nnext: moat server run --data-dir %s\n",
					len(m.Files), m.Created.Format("2006-01-02T15:04:05Z"), b.c.DataDir, b.c.DataDir)
			}
			fmt.Fprintf(e.Stdout, "store epoch %d: agents take the restored state over the older one they hold, keeping the revocations they hold and handing back those it lacks\n", epoch)
			return nil
		},
	}
}

// kekOfItsDay adds to a backup that the KEK does not open that it may be
// sealed under a KEK rotated away since.
func kekOfItsDay(err error) error {
	if errors.Is(err, seal.ErrWrongKEK) {
		return fmt.Errorf("%w; a backup made before a KEK rotation (moat keys rotate --kek) opens only under the KEK of its day", err)
	}
	return err
}

// markRestored gives the store restored into dir a new epoch
// (server.MarkRestored), before it is loaded into etcd if it is.
func markRestored(ctx context.Context, dir string, kr *seal.Keyring, m *backup.Manifest) (int64, error) {
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: kr.AEAD()})
	if err != nil {
		return 0, fmt.Errorf("its store does not open: %w", err)
	}
	epoch, err := server.MarkRestored(ctx, st, m.Created, time.Now())
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return epoch, err
}

// restoreFlowsOnly puts this server's flow records from a cluster's
// backup into its data directory, which must not hold flow records yet.
func restoreFlowsOnly(e *Env, c *server.File, kek seal.KEK, file string, check func(*backup.Manifest) error) error {
	flows := filepath.Join(c.DataDir, "flows")
	if ents, err := os.ReadDir(flows); err == nil && len(ents) > 0 {
		return fmt.Errorf("backup restore --flows-only: %q already holds flow records; nothing was restored", flows)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	tmp, err := os.MkdirTemp(c.DataDir, ".restore-flows-")
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	defer f.Close()
	unpacked := filepath.Join(tmp, "backup")
	if _, err := backup.RestoreChecked(f, kek, unpacked, check); err != nil {
		return fmt.Errorf("backup restore %q: %w; nothing was restored", file, kekOfItsDay(err))
	}
	note, err := server.PlaceServerFlows(unpacked, c.Name)
	if err != nil {
		return fmt.Errorf("backup restore: %w", err)
	}
	if _, err := os.Stat(filepath.Join(unpacked, "flows")); err == nil {
		os.Remove(flows) // empty, if there
		if err := os.Rename(filepath.Join(unpacked, "flows"), flows); err != nil {
			return fmt.Errorf("backup restore: %w", err)
		}
	}
	// The keyring's copy, for tools that read the directory offline (a
	// server of the cluster refreshes it from etcd when it starts).
	if kr := filepath.Join(c.DataDir, seal.KeyringFile); !fileExists(kr) {
		if err := os.Rename(filepath.Join(unpacked, seal.KeyringFile), kr); err != nil {
			return fmt.Errorf("backup restore: %w", err)
		}
	}
	fmt.Fprintln(e.Stdout, note)
	return nil
}

// sameTrustDomain refuses a backup of another control plane than the one
// restored to: want is its trust domain, empty when the target names none
// (a disaster recovery into an empty directory), which checks nothing. A
// passphrase or KEK shared by two clusters opens either's backups, so the
// KEK alone does not say whose a backup is. A backup that records no trust
// domain (made before backups did) is refused too when want is set: fail
// closed, allow says the operator means it.
func sameTrustDomain(want string, allow bool) func(*backup.Manifest) error {
	return func(m *backup.Manifest) error {
		switch {
		case want == "" || allow || m.TrustDomain == want:
			return nil
		case m.TrustDomain == "":
			return fmt.Errorf("the backup records no trust domain (made before backups did) and the target is trust domain %q; if it is this cluster's, --allow-other-trust-domain restores it", want)
		}
		return fmt.Errorf("the backup is of trust domain %q, the target is trust domain %q; --allow-other-trust-domain restores it for a deliberate migration", m.TrustDomain, want)
	}
}

// sameCluster is sameTrustDomain, then sameCA.
func sameCluster(td string, otherTD bool, root string, otherCA bool) func(*backup.Manifest) error {
	checkTD, checkCA := sameTrustDomain(td, otherTD), sameCA(root, otherCA)
	return func(m *backup.Manifest) error {
		if err := checkTD(m); err != nil {
			return err
		}
		return checkCA(m)
	}
}

// sameCA refuses a backup of another CA than the one restored to: root
// is the fingerprint of the target's root certificate, empty when the
// target names none, which checks nothing. Two clusters of one trust
// domain under one KEK open each other's backups; their roots differ. A
// backup of the target is one whose trust bundle held root when it was
// made (before, during or after a rotation). One that records no roots
// (made before backups did) is refused when root is set: fail closed,
// allow says the operator means it.
func sameCA(root string, allow bool) func(*backup.Manifest) error {
	return func(m *backup.Manifest) error {
		switch {
		case root == "" || allow || slices.Contains(m.CARoots, root):
			return nil
		case len(m.CARoots) == 0:
			return fmt.Errorf("the backup records no CA (made before backups did) and the target's root is sha256 %s; if it is this cluster's, --allow-other-ca restores it", root)
		}
		return fmt.Errorf("the backup is of the CA with %s, the target's root is sha256 %s; --allow-other-ca restores it for a deliberate migration", caRoots(m.CARoots), root)
	}
}

// caRoots names a backup's CA roots: "root sha256 X", or "roots sha256 X,
// sha256 Y" during a rotation.
func caRoots(roots []string) string {
	named := make([]string, len(roots))
	for i, r := range roots {
		named[i] = "sha256 " + r
	}
	if len(named) == 1 {
		return "root " + named[0]
	}
	return "roots " + strings.Join(named, ", ")
}

func backupVerifyCommand() *Command {
	b := &backupKEK{}
	return &Command{
		Name:    "verify",
		Summary: "check a backup's integrity under the KEK without restoring it",
		Usage:   "[--kek-source ...] [--kek-file PATH] FILE",
		Flags: func(fs *flag.FlagSet) {
			kekFlags(fs, &b.c.KEK)
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() != 1 {
				return usagef("backup verify: want one FILE")
			}
			if b.c.KEK.File == "" && (b.c.KEK.Source == "" || b.c.KEK.Source == "file") {
				return usagef("backup verify: --kek-file is required with a key file")
			}
			kek, err := b.c.KEK.Load("", e.Getenv, false)
			if err != nil {
				return fmt.Errorf("backup verify: %w", err)
			}
			f, err := os.Open(fs.Arg(0))
			if err != nil {
				return fmt.Errorf("backup verify: %w", err)
			}
			defer f.Close()
			m, err := backup.Verify(f, kek)
			if err != nil {
				return fmt.Errorf("backup verify %q: %w", fs.Arg(0), kekOfItsDay(err))
			}
			td := "trust domain " + flow.PrintableText(m.TrustDomain)
			if m.TrustDomain == "" {
				td = "no trust domain recorded (made before backups recorded one)"
			}
			cas := "CA " + caRoots(m.CARoots)
			if len(m.CARoots) == 0 {
				cas = "no CA recorded (made before backups recorded it)"
			}
			fmt.Fprintf(e.Stdout, "backup OK: %d entries, made %s, %s, %s\n", len(m.Files), m.Created.Format("2006-01-02T15:04:05Z"), td, cas)
			return nil
		},
	}
}
