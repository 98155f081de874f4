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

// adminListCommand is "moat admin list": every administrator's account.
func adminListCommand() *Command {
	return adminCommand("list", "list the administrators' accounts (role admin)", "", nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, af *adminFlags) error {
			var accounts []api.AdminAccount
			if err := c.Call(ctx, http.MethodGet, api.PathAdmins, nil, &accounts); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, accounts)
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCREATED BY\tCERTIFICATE UNTIL\tMFA\tSESSIONS")
			for _, a := range accounts {
				by := a.CreatedBy
				if by == "" {
					by = "-"
				}
				until := "unknown"
				if !a.Expires.IsZero() {
					until = a.Expires.UTC().Format(time.RFC3339)
				}
				mfa := "no"
				switch {
				case a.AwaitingApproval:
					mfa = "awaiting approval"
				case a.MFA:
					mfa = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", cell(a.Name), cell(a.Role), cell(by), until, mfa, a.Sessions)
			}
			return tw.Flush()
		})
}

// adminRemoveCommand is "moat admin remove NAME": offboarding.
func adminRemoveCommand() *Command {
	c := adminCommand("remove", "remove an administrator's account and revoke its certificates", "NAME",
		nil,
		func(ctx context.Context, e *Env, fs *flag.FlagSet, c *api.AdminClient, af *adminFlags) error {
			if fs.NArg() != 1 {
				return usagef("admin remove: name one administrator")
			}
			var ans api.AdminRemoved
			if err := c.Call(ctx, http.MethodDelete, api.PathAdmins, api.AdminRemove{Name: fs.Arg(0)}, &ans); err != nil {
				return err
			}
			if af.output == "json" {
				return printJSON(e.Stdout, ans)
			}
			fmt.Fprintf(e.Stdout, "removed %s; %d certificate(s) revoked (%s); %d MFA session(s) ended\n",
				ans.ID, len(ans.Revoked), strings.Join(ans.Revoked, ", "), ans.SessionsEnded)
			if len(ans.GrantsRevoked) > 0 {
				fmt.Fprintf(e.Stdout, "%d grant(s) revoked: %s\n", len(ans.GrantsRevoked), strings.Join(ans.GrantsRevoked, ", "))
			}
			return nil
		})
	c.Help = "Removes the account and its second factors, revokes its pending and active\n" +
		"grants (ending their sessions), withdraws its approvals of grants still pending,\n" +
		"and revokes every certificate the control plane issued to it that has not ended\n" +
		"(the enrolment certificate, the ones a renewal or --replace left behind, the MFA\n" +
		"session certificates): each is refused at its next handshake by every server. A\n" +
		"sensitive call. Nobody removes their own account, and the last account with role\n" +
		"admin cannot be removed. The name may be made again (\"moat admin create\"):\n" +
		"that makes a new account, with a new ID, which inherits nothing of this one (its\n" +
		"recordings, grants, approvals or second factors), and certificates of this one\n" +
		"are refused on it."
	return c
}
