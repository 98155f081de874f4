package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/seal"
)

func accessCommand() *Command {
	return &Command{
		Name:    "access",
		Summary: "break-glass access to nodes and services: request, approve, connect, replay",
		Help: "An administrator asks for a grant (a shell on one node, or one service's port)\n" +
			"with a reason and a duration; unless the target needs none, another administrator\n" +
			"approves it. Sessions go through the control plane to the node's agent: the node\n" +
			"opens no port. Shells are recorded; \"moat access replay\" plays them back, for the\n" +
			"administrator who held the session, the approvers of its grant, and the server's\n" +
			"access.recording_role (admin by default) and above. Grants, approvals and sessions\n" +
			"are an account's, not a name's: an account removed and made again with the same\n" +
			"name is another, which reads none of the earlier one's recordings and uses none\n" +
			"of its grants; a removed account's pending and active grants are revoked.",
		Sub: []*Command{accessApproveCommand(), accessExportCommand(), accessForwardCommand(), accessListCommand(),
			accessProxyCommand(), accessReplayCommand(), accessRequestCommand(), accessRevokeCommand(), accessSSHCertCommand()},
	}
}

func accessRequestCommand() *Command {
	var node, service, reason *string
	var shell *bool
	var port *int
	var dur *time.Duration
	return adminCommand("request", "ask for a grant", "--node NODE (--shell | --service SVC [--port N]) --reason TEXT --for 1h",
		func(fs *flag.FlagSet) {
			node = fs.String("node", "", "the node (for a forward, the service's node, which may be left out)")
			shell = fs.Bool("shell", false, "a shell on the node (ssh, scp, sftp)")
			service = fs.String("service", "", "forward this service's port instead")
			port = fs.Int("port", 0, "the service's port (default: the one registered)")
			reason = fs.String("reason", "", "why: an incident or ticket (required)")
			dur = fs.Duration("for", time.Hour, "how long the grant lasts once approved")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			req := api.AccessRequest{Node: *node, Service: *service, Port: *port, Reason: *reason, For: *dur}
			switch {
			case *shell && *service != "":
				return usagef("access request: --shell and --service exclude each other")
			case *shell:
				req.Mode = api.ModeShell
				if *node == "" {
					return usagef("access request: --shell needs --node")
				}
			case *service != "":
				req.Mode = api.ModeForward
			default:
				return usagef("access request: say --shell or --service")
			}
			if strings.TrimSpace(*reason) == "" {
				return usagef("access request: --reason is required")
			}
			var g api.GrantListing
			if err := s.Call(ctx, http.MethodPost, api.PathAccess, req, &g); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, g)
			}
			fmt.Fprintln(e.Stdout, g.ID)
			if g.State == api.GrantPending {
				fmt.Fprintf(e.Stderr, "grant %s is pending: %d approval(s) by another admin needed (moat access approve %s) before %s\n",
					g.ID, g.Needed, g.ID, g.PendingUntil.Local().Format(time.RFC3339))
			} else {
				fmt.Fprintf(e.Stderr, "grant %s is %s until %s\n", g.ID, g.State, g.Expires.Local().Format(time.RFC3339))
			}
			return nil
		})
}

func grantArg(fs *flag.FlagSet, cmd string) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("access %s takes one argument, the grant ID", cmd)
	}
	return fs.Arg(0), nil
}

func accessApproveCommand() *Command {
	return adminCommand("approve", "approve another administrator's grant", "ID", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			id, err := grantArg(fs, "approve")
			if err != nil {
				return err
			}
			var g api.GrantListing
			if err := s.Call(ctx, http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: id}, &g); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, g)
			}
			if g.State == api.GrantActive {
				fmt.Fprintf(e.Stdout, "grant %s approved: active until %s\n", g.ID, g.Expires.Local().Format(time.RFC3339))
			} else {
				fmt.Fprintf(e.Stdout, "grant %s approved: %d of %d approvals\n", g.ID, len(g.Approvals), g.Needed)
			}
			return nil
		})
}

func accessRevokeCommand() *Command {
	return adminCommand("revoke", "end a grant and its live sessions", "ID", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			id, err := grantArg(fs, "revoke")
			if err != nil {
				return err
			}
			var ans api.RevokeAnswer
			if err := s.Call(ctx, http.MethodPost, api.PathAccessRevoke, api.GrantRef{ID: id}, &ans); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, ans)
			}
			fmt.Fprintf(e.Stdout, "grant %s revoked; %d live session(s) ended", id, ans.Ended)
			if ans.Live > 0 {
				fmt.Fprintf(e.Stdout, ", %d not yet reported ended by the node", ans.Live)
			}
			fmt.Fprintln(e.Stdout)
			return nil
		})
}

func accessListCommand() *Command {
	var all *bool
	return adminCommand("list", "list grants (pending and active, or --all)", "[--all]",
		func(fs *flag.FlagSet) { all = fs.Bool("all", false, "also list ended grants") },
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			path := api.PathAccess
			if *all {
				path += "?all=1"
			}
			var gs []api.GrantListing
			if err := s.Call(ctx, http.MethodGet, path, nil, &gs); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, gs)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tREQUESTER\tNODE\tMODE\tUNTIL\tSESSIONS\tREASON")
			for _, g := range gs {
				target := g.Mode
				if g.Mode == api.ModeForward {
					target = fmt.Sprintf("forward %s:%d", g.Service, g.Port)
				}
				until := "-"
				if !g.Expires.IsZero() {
					until = g.Expires.Local().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(g.ID), cell(g.State), cell(g.Requester), cell(g.Node), cell(target), until, len(g.Sessions), cell(g.Reason))
			}
			return tw.Flush()
		})
}

var sessionIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

// recordedSessions resolves a replay argument: a session ID, or a grant ID
// (its sessions with recordings, in order).
func recordedSessions(ctx context.Context, s *api.AdminClient, id string) ([]string, error) {
	if sessionIDRE.MatchString(id) {
		return []string{id}, nil
	}
	var gs []api.GrantListing
	if err := s.Call(ctx, http.MethodGet, api.PathAccess+"?id="+url.QueryEscape(id), nil, &gs); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range gs {
		for _, x := range g.Sessions {
			if x.Recording != "" {
				out = append(out, x.ID)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("grant %s has no recorded session", id)
	}
	return out, nil
}

// fetchRecording downloads a session's recording and checks it against
// the digest the audit log holds for the session's end: a recording edited
// or swapped on the server is refused.
func fetchRecording(ctx context.Context, s *api.AdminClient, session string) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := s.Download(ctx, http.MethodGet, api.PathAccessRec+"?session="+session, nil, &buf); err != nil {
		return nil, err
	}
	want, err := auditedDigest(ctx, s, session)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("recording of session %s: SHA-256 %s is not the %s in the audit log: the recording was altered", session, got, want)
	}
	return buf.Bytes(), nil
}

// auditedDigest finds the recording digest of session's end in the audit log.
func auditedDigest(ctx context.Context, s *api.AdminClient, session string) (string, error) {
	var page api.AuditEntries
	if err := s.Call(ctx, http.MethodGet, api.PathAudit+"?from=0&to=0", nil, &page); err != nil {
		return "", fmt.Errorf("audit log: %w", err)
	}
	for to := page.Size; to > 0; {
		from := max(0, to-1000)
		if err := s.Call(ctx, http.MethodGet, fmt.Sprintf("%s?from=%d&to=%d", api.PathAudit, from, to), nil, &page); err != nil {
			return "", fmt.Errorf("audit log: %w", err)
		}
		for i := len(page.Entries) - 1; i >= 0; i-- {
			en := page.Entries[i].Entry
			if en.Action == "access.session.end" && en.Detail["session"] == session && en.Result == "ok" {
				if d := en.Detail["recording_sha256"]; d != "" {
					return d, nil
				}
			}
		}
		to = from
	}
	return "", fmt.Errorf("session %s: the audit log holds no recording digest for its end", session)
}

func accessReplayCommand() *Command {
	var speed *float64
	var instant *bool
	var idle *time.Duration
	var programs *bool
	return adminCommand("replay", "play a session's recording (checked against the audit log)", "[--instant] [--speed 2] [--programs] ID",
		func(fs *flag.FlagSet) {
			speed = fs.Float64("speed", 1, "playback speed")
			instant = fs.Bool("instant", false, "print the output without its timing")
			idle = fs.Duration("idle", 2*time.Second, "longest pause played")
			programs = fs.Bool("programs", false, "list the programs the session ran and the agent's notes, without its output")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if fs.NArg() != 1 {
				return usagef("access replay takes one argument, a session or grant ID")
			}
			if *speed <= 0 {
				return usagef("--speed must be positive")
			}
			ids, err := recordedSessions(ctx, s, fs.Arg(0))
			if err != nil {
				return err
			}
			for _, id := range ids {
				rec, err := fetchRecording(ctx, s, id)
				if err != nil {
					return err
				}
				// The agent's notes and the programs run go to stderr as
				// they come, or alone to stdout.
				marks := &castMarks{w: e.Stderr}
				out := e.Stdout
				if *programs {
					marks.w, out = e.Stdout, io.Discard
				}
				dropped, err := playCastMarks(ctx, out, rec, *speed, *idle, *instant || *programs, marks)
				if err == nil {
					fmt.Fprintf(e.Stderr, "moat: %s\n", marks.summary(id))
				}
				if dropped > 0 {
					fmt.Fprintf(e.Stderr, "moat: session %s: %d terminal control sequence(s) that act on a terminal (clipboard, reports, titles) were not played; \"moat access export\" writes the recording as it is\n", id, dropped)
				}
				if err != nil {
					return fmt.Errorf("session %s: %w", id, err)
				}
			}
			return nil
		})
}

// playCast writes an asciicast v2 recording's output with its timing,
// through termSafe: it returns how many control sequences it did not play.
func playCast(ctx context.Context, out io.Writer, rec []byte, speed float64, idle time.Duration, instant bool) (int, error) {
	return playCastMarks(ctx, out, rec, speed, idle, instant, nil)
}

// playCastMarks is playCast that also hands every marker to marks.
func playCastMarks(ctx context.Context, out io.Writer, rec []byte, speed float64, idle time.Duration, instant bool, marks *castMarks) (int, error) {
	w := &termSafe{w: out}
	err := playEvents(ctx, w, rec, speed, idle, instant, marks)
	if rerr := w.restore(); err == nil {
		err = rerr
	}
	return w.dropped, err
}

func playEvents(ctx context.Context, w io.Writer, rec []byte, speed float64, idle time.Duration, instant bool, marks *castMarks) error {
	sc := bufio.NewScanner(bytes.NewReader(rec))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	if !sc.Scan() {
		return errors.New("empty recording")
	}
	var h struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Version != 2 {
		return errors.New("not an asciicast v2 recording")
	}
	prev, line := 0.0, 1
	malformed := func() error {
		text := sc.Text()
		if len(text) > 80 {
			text = text[:80] + "…"
		}
		return fmt.Errorf("malformed event on line %d: %q", line, text)
	}
	for sc.Scan() {
		line++
		var ev []json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			return malformed()
		}
		var t float64
		var kind, data string
		if json.Unmarshal(ev[0], &t) != nil || json.Unmarshal(ev[1], &kind) != nil || json.Unmarshal(ev[2], &data) != nil {
			return malformed()
		}
		if kind != "o" && (kind != "m" || marks == nil) {
			continue
		}
		if !instant {
			d := min(time.Duration((t-prev)/speed*float64(time.Second)), idle)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		prev = t
		if kind == "m" {
			if err := marks.mark(t, data); err != nil {
				return err
			}
			continue
		}
		if _, err := io.WriteString(w, data); err != nil {
			return err
		}
	}
	return sc.Err()
}

func accessExportCommand() *Command {
	var out *string
	return adminCommand("export", "write a session's recording as an asciicast file (asciinema play FILE)", "-o FILE SESSION",
		func(fs *flag.FlagSet) { out = fs.String("o", "", "output file (required)") },
		func(ctx context.Context, e *Env, fs *flag.FlagSet, s *api.AdminClient, af *adminFlags) error {
			if fs.NArg() != 1 || *out == "" {
				return usagef("access export takes a session (or grant) ID and -o FILE")
			}
			ids, err := recordedSessions(ctx, s, fs.Arg(0))
			if err != nil {
				return err
			}
			if len(ids) > 1 {
				return fmt.Errorf("grant %s has %d recorded sessions; name one: %s", fs.Arg(0), len(ids), strings.Join(ids, " "))
			}
			rec, err := fetchRecording(ctx, s, ids[0])
			if err != nil {
				return err
			}
			// A new file of mode 0600 renamed over the name, as the
			// recording holds what the session showed (passwords typed
			// in the clear among it): not a file already there, readable
			// by others, nor a link to someone else's file.
			if err := seal.WriteFileAtomic(*out, rec, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(e.Stderr, "session %s: %s bytes, digest matches the audit log\n", ids[0], strconv.Itoa(len(rec)))
			return nil
		})
}

var _ = audit.Entry{}
