package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/callgate/callgate/store"
)

const sessionsUsage = `Usage:
  gateway sessions list   --user U [--store URL [--redis-ca FILE] | --data DIR]
  gateway sessions revoke --user U [--ttl 720h] [--store URL [--redis-ca FILE] | --data DIR]

U is a username, an e-mail or a user id. Run 'gateway sessions <command> --help' for a
command's flags.
`

const sessionsListUsage = `Usage: gateway sessions list --user U [--store URL [--redis-ca FILE] | --data DIR]

Shows the user's database sessions (strategy "database"): the first characters of the stored
hash (the token itself is never stored), when they began and end. U is a username, an e-mail
or a user id.

Flags:
`

const sessionsRevokeUsage = `Usage: gateway sessions revoke --user U [--ttl 720h] [--store URL [--redis-ca FILE] | --data DIR]

Signs the user out everywhere: deletes every database session and records a revocation that
every replica checks on each jwt session (announced at once through Redis; with the embedded
store, through the running gateway's admin socket). --ttl is how long the revocation is kept;
it must cover the longest session lifetime (session.maxAge and jwt.maxAge, 30 days by
default). U is a username, an e-mail or a user id.

Flags:
`

func (c *cli) runSessions(ctx context.Context, args []string) error {
	cmd, err := c.subcommand(args, sessionsUsage, "list", "revoke")
	if cmd == "" {
		return err
	}
	usage := sessionsListUsage
	if cmd == "revoke" {
		usage = sessionsRevokeUsage
	}
	fs := flag.NewFlagSet("sessions "+cmd, flag.ContinueOnError)
	loc := dataFlag(fs, c.getenv, false)
	who := fs.String("user", "", "username, e-mail or user id (required)")
	ttl := new(time.Duration)
	if cmd == "revoke" {
		fs.DurationVar(ttl, "ttl", 30*24*time.Hour, "how long a revocation is kept (the longest session lifetime)")
	}
	rest, err := c.parseFlags(fs, usage, args[1:])
	if err != nil {
		return err
	}
	if *who == "" {
		return c.usageError(fs, usage, "--user is required")
	}
	if len(rest) > 0 {
		return c.usageError(fs, usage, "unexpected argument %q", rest[0])
	}
	if cmd == "revoke" && *ttl <= 0 {
		return errors.New("sessions revoke: --ttl must be positive")
	}
	return c.withStore(loc, func(s cliStore) error {
		u, err := findUserByAny(ctx, s, *who)
		if err != nil {
			return err
		}
		if cmd == "list" {
			list, err := s.ListSessions(ctx, u.ID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SESSION\tSTARTED\tEXPIRES")
			for _, sess := range list {
				fmt.Fprintf(tw, "%s…\t%s\t%s\n", sess.ID[:12], sess.CreatedAt.UTC().Format(time.RFC3339), sess.Expires.UTC().Format(time.RFC3339))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%d database %s for %s\n", len(list), plural(len(list), "session", "sessions"), u.Username)
			return nil
		}
		now := time.Now()
		n, err := s.DeleteUserSessions(ctx, u.ID)
		if err != nil {
			return err
		}
		if err := s.Revoke(ctx, store.Revocation{UserID: u.ID, Before: now, Expires: now.Add(*ttl)}); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "signed %s out everywhere: %d database %s deleted, jwt sessions issued until %s revoked\n",
			u.Username, n, plural(n, "session", "sessions"), now.UTC().Format(time.RFC3339))
		return nil
	})
}

// findUserByAny looks who up as a username, then an e-mail, then an id.
func findUserByAny(ctx context.Context, s store.Users, who string) (store.User, error) {
	for _, q := range []store.UserQuery{{Username: who}, {Email: who}, {ID: who}} {
		if q.Email != "" && !containsAt(who) || q.ID != "" && !store.IsUserID(who) {
			continue
		}
		u, err := s.FindUser(ctx, q)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.User{}, err
		}
	}
	return store.User{}, fmt.Errorf("no user %q (looked up as username, e-mail and id)", who)
}

func containsAt(s string) bool {
	for _, r := range s {
		if r == '@' {
			return true
		}
	}
	return false
}

// subcommand is the subcommand args start with, one of names. Asked for help it prints
// usage and returns "" and nil; with anything else it prints usage to stderr and returns
// "" and errUsage.
func (c *cli) subcommand(args []string, usage string, names ...string) (string, error) {
	if len(args) > 0 && slices.Contains(names, args[0]) {
		return args[0], nil
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(c.stdout, usage)
		return "", nil
	}
	fmt.Fprint(c.stderr, usage)
	return "", errUsage
}
