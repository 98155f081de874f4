package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"moat/internal/api"
)

func keysCommand() *Command {
	var kekNewSource, kekNewFile, kekNewEnv *string
	var useKEK *bool
	rotate := adminCommand("rotate", "add a new primary data key, or re-wrap the data keys under a new KEK",
		"[--kek [--kek-new-source file|env|passphrase] [--kek-new-file PATH] [--kek-new-env NAME]]",
		func(fs *flag.FlagSet) {
			useKEK = fs.Bool("kek", false, "re-wrap the data keys under a new key-encryption key instead")
			kekNewSource = fs.String("kek-new-source", "file", "where the server finds the new KEK: file, env or passphrase")
			kekNewFile = fs.String("kek-new-file", "", "new key file on the server (created if missing; default: a fresh key replaces the server's key file)")
			kekNewEnv = fs.String("kek-new-env", "", "server-side variable holding the new key or passphrase")
		},
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if err := noArgs(fs, "keys rotate"); err != nil {
				return err
			}
			var req api.KeyRotateRequest
			if *useKEK {
				req.KEK = &api.KEKSource{Source: *kekNewSource, File: *kekNewFile, Env: *kekNewEnv}
				switch *kekNewSource {
				case "file":
				case "env", "passphrase":
					if *kekNewEnv == "" {
						return usagef("keys rotate: --kek-new-source %s needs --kek-new-env", *kekNewSource)
					}
				default:
					return usagef("keys rotate: --kek-new-source %q: want file, env or passphrase", *kekNewSource)
				}
			} else if *kekNewFile != "" || *kekNewEnv != "" {
				return usagef("keys rotate: --kek-new-* flags need --kek")
			}
			var resp api.KeyRotateResponse
			if err := c.Call(ctx, http.MethodPost, api.PathKeysRotate, req, &resp); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, resp)
			}
			if resp.Action == "keys.rewrap" {
				fmt.Fprintf(e.Stdout, "data keys re-wrapped under the new KEK (%d keys)\n", resp.Keys)
			} else {
				fmt.Fprintf(e.Stdout, "new primary data key %d (was %d; %d keys)\n", resp.NewPrimary, resp.OldPrimary, resp.Keys)
			}
			if resp.Note != "" {
				fmt.Fprintln(e.Stdout, resp.Note)
			}
			return nil
		})
	status := adminCommand("status", "show the data keys, their ages and what each protects", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, out *adminFlags) error {
			if err := noArgs(fs, "keys status"); err != nil {
				return err
			}
			var st api.KeyStatus
			if err := c.Call(ctx, http.MethodGet, api.PathKeys, nil, &st); err != nil {
				return err
			}
			if out.output == "json" {
				return printJSON(e.Stdout, st)
			}
			tw := tabwriter.NewWriter(e.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tSTATE\tCREATED\tAGE\tRECORDS\tBYTES\tSTORE\tAUDIT")
			for _, k := range st.Keys {
				created := "-"
				if !k.Created.IsZero() {
					created = k.Created.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", k.ID, cell(k.State), created, fmtAge(k.Age), k.Records, k.Bytes,
					k.ByPart["store"], k.ByPart["audit"])
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "counts cover: %s\n", st.Scope)
			r := st.Reencrypt
			state := "done"
			switch {
			case r.Running:
				state = "running"
			case r.Error != "":
				state = "failed: " + r.Error
			case !r.Done:
				state = "pending"
			}
			fmt.Fprintf(e.Stdout, "re-encryption to key %d: %s (scanned %d, rewritten %d, already current %d, conflicts %d)\n",
				r.Target, state, r.Scanned, r.Rewritten, r.Skipped, r.Conflicts)
			if st.Schedule > 0 {
				fmt.Fprintf(e.Stdout, "scheduled rotation every %s\n", fmtAge(st.Schedule))
			} else {
				fmt.Fprintln(e.Stdout, "no rotation by age (key_rotation: none)")
			}
			if st.MaxEncryptions > 0 {
				fmt.Fprintf(e.Stdout, "rotation after %d encryptions under the primary (this server: %d)\n", st.MaxEncryptions, st.Encryptions)
			}
			return nil
		})
	return &Command{Name: "keys", Summary: "rotate and inspect the data keys that encrypt stored state", Sub: []*Command{rotate, status}}
}

// fmtAge shows a duration in days once it is at least one.
func fmtAge(d time.Duration) string {
	if d >= 24*time.Hour {
		days, rest := int(d/(24*time.Hour)), (d % (24 * time.Hour)).Truncate(time.Hour)
		if rest == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%s", days, strings.TrimSuffix(rest.String(), "0m0s"))
	}
	return d.Truncate(time.Second).String()
}
