package server

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"moat/internal/api"
	"moat/internal/flow/flowstore"
	"moat/internal/identity"
)

// A cluster's flow records are spread over its servers (see cluster.go),
// so a backup taken through one server holds every live member's flow
// store too: the server taking it asks each member for a consistent copy
// of its partitions and sealed index key (PathPeerFlowBackup, over the
// same server-to-server mutual TLS the flow fan-out uses) and keeps it
// under servers/<name>/flows, naming itself in server-name. Restore puts
// each server's records back in that server's data directory, by its
// name. A member listed as gone cannot be asked; the backup then names it
// in servers-missing (and the audit entry says so). A live member that
// does not hand over its records fails the backup: a backup that would
// silently lack a server's evidence is refused.

// Items of a cluster backup beside the taking server's own.
const (
	backupServers    = "servers"
	backupServerName = "server-name"
	backupMissing    = "servers-missing"
)

// defaultName names a server whose configuration names none.
const defaultName = "control"

// maxPeerFlowBackup bounds what one member's flow copy may hold: a
// member's retention of flows, with room.
const maxPeerFlowBackup = 1 << 40

// handlePeerFlowBackup streams this server's flow store, copied
// consistently (copyFlows), as a tar of flat files.
func (s *Server) handlePeerFlowBackup(w http.ResponseWriter, r *http.Request, c *caller) {
	k, err := s.keys()
	if err != nil {
		writeError(w, err)
		return
	}
	if k.cfg.DataDir == "" {
		writeError(w, errorf(http.StatusNotImplemented, "backups need the server's data directory"))
		return
	}
	tmp, err := os.MkdirTemp(k.cfg.DataDir, ".backup-peer-")
	if err != nil {
		writeError(w, err)
		return
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, backupFlows)
	if err := copyFlows(r.Context(), filepath.Join(k.cfg.DataDir, backupFlows), dst); err != nil {
		writeError(w, err)
		return
	}
	ents, _ := os.ReadDir(dst)
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	for _, e := range ents {
		if err := tarFile(tw, filepath.Join(dst, e.Name()), e.Name()); err != nil {
			s.log.Warn("flow backup for a member cut short", "member", c.Name, "err", err)
			return // the member sees a truncated tar and fails its backup
		}
	}
	if err := tw.Close(); err != nil {
		s.log.Warn("flow backup for a member cut short", "member", c.Name, "err", err)
	}
}

func tarFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), Typeflag: tar.TypeReg, ModTime: st.ModTime()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// flowBackupName reports whether name is a file a flow store holds.
func flowBackupName(name string) bool {
	return name == flowstore.IndexKeyFile || strings.HasPrefix(name, "flows-") && strings.HasSuffix(name, ".db") && !strings.ContainsAny(name, `/\`)
}

// copyMemberFlows fetches every other live member's flow store into
// parts/servers/<name>/flows, and writes server-name and, when some
// members are gone, servers-missing. It returns the members copied and
// those gone.
func (s *Server) copyMemberFlows(ctx context.Context, parts string) (copied, gone []string, err error) {
	if err := os.WriteFile(filepath.Join(parts, backupServerName), []byte(s.cfg.Name+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	members, err := s.Members(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("server: backup: listing the cluster's servers: %w", err)
	}
	for _, m := range members {
		if m.Self {
			continue
		}
		if !m.Alive {
			gone = append(gone, m.Name)
			continue
		}
		dir := filepath.Join(parts, backupServers, m.Name, backupFlows)
		if err := s.fetchMemberFlows(ctx, m, dir); err != nil {
			return nil, nil, fmt.Errorf("server: backup: the flow records of server %q: %w (a backup without them is refused; retry, or stop that server so that it is listed as gone)", m.Name, err)
		}
		copied = append(copied, m.Name)
	}
	if len(gone) > 0 {
		sort.Strings(gone)
		if err := os.WriteFile(filepath.Join(parts, backupMissing), []byte(strings.Join(gone, "\n")+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
	}
	return copied, gone, nil
}

func (s *Server) fetchMemberFlows(ctx context.Context, m api.Member, dir string) error {
	if err := identity.ValidName(m.Name); err != nil {
		return fmt.Errorf("member name %q: %w", m.Name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	c := s.peerClient(m.Addr)
	defer c.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := c.Download(ctx, http.MethodGet, api.PathPeerFlowBackup, nil, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	tr := tar.NewReader(io.LimitReader(pr, maxPeerFlowBackup))
	var err error
	for {
		var h *tar.Header
		h, err = tr.Next()
		if errors.Is(err, io.EOF) {
			err = nil
			break
		}
		if err != nil {
			break
		}
		if h.Typeflag != tar.TypeReg || !flowBackupName(h.Name) {
			err = fmt.Errorf("unexpected entry %q in its answer", h.Name)
			break
		}
		if err = writeNew(filepath.Join(dir, h.Name), tr); err != nil {
			break
		}
	}
	pr.CloseWithError(errors.New("stopped reading"))
	if derr := <-done; err == nil {
		err = derr
	}
	return err
}

func writeNew(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PlaceServerFlows makes the flow records of the server named name (""
// meaning the default, "control") the flows of a restored data directory
// dir and removes the other servers' copies. A backup of one server (no
// server-name) is left as it is and "" returned; otherwise the answer says
// whose records dir now holds, or that the backup holds none of this
// server's and whose it holds.
func PlaceServerFlows(dir, name string) (string, error) {
	if name == "" {
		name = defaultName
	}
	b, err := os.ReadFile(filepath.Join(dir, backupServerName))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	taker := strings.TrimSpace(string(b))
	held := []string{taker}
	ents, _ := os.ReadDir(filepath.Join(dir, backupServers))
	for _, e := range ents {
		held = append(held, e.Name())
	}
	sort.Strings(held)
	own := filepath.Join(dir, backupFlows)
	note := fmt.Sprintf("flow records: server %q's (the backup holds those of %s)", name, strings.Join(held, ", "))
	if name != taker {
		if err := os.RemoveAll(own); err != nil {
			return "", err
		}
		mine := filepath.Join(dir, backupServers, name, backupFlows)
		if _, err := os.Stat(mine); err == nil {
			if err := os.Rename(mine, own); err != nil {
				return "", err
			}
		} else {
			note = fmt.Sprintf("flow records: none; the backup holds no records of server %q, only those of %s", name, strings.Join(held, ", "))
		}
	}
	if m, err := os.ReadFile(filepath.Join(dir, backupMissing)); err == nil {
		note += "; servers gone when it was made, whose records it lacks: " + strings.Join(strings.Fields(string(m)), ", ")
	}
	for _, p := range []string{backupServers, backupServerName, backupMissing} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return "", err
		}
	}
	return note, nil
}
