package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/store"
)

const usersSetPasswordUsage = `Usage: gateway users set-password (--id ID | --username U | --email E) [--cost 10] [--data DIR]

Sets a user's password, keeping its id. The password is read as users add reads it: one
line from stdin when it is not a terminal, else prompted for twice without echo.

Flags:
`

const usersSetRoleUsage = `Usage: gateway users set-role (--id ID | --username U | --email E) --role R [--data DIR]

Sets a user's role (an empty --role clears it), keeping its id.

Flags:
`

const usersUpdateUsage = `Usage: gateway users update (--id ID | --username U | --email E) --field k=v [--field k=v ...] [--unset k] [--data DIR]

Changes fields of a user, keeping its id. username, name, email and role are the user's
own fields (an empty value clears name, email or role); any other name is an extra field the
scripts see on the user document. --unset removes an extra field. The password is changed
with set-password, never here.

Flags:
`

// userSelector is the --id, --username and --email flags that choose one user.
type userSelector struct{ id, username, email *string }

func selectorFlags(fs *flag.FlagSet) userSelector {
	return userSelector{
		id:       fs.String("id", "", "the user's id"),
		username: fs.String("username", "", "the user's username"),
		email:    fs.String("email", "", "the user's e-mail (case-insensitive)"),
	}
}

// query is the one user the flags name, and how to say it in messages; an error when not
// exactly one flag is given.
func (s userSelector) query() (store.UserQuery, string, error) {
	var q store.UserQuery
	var said string
	set := 0
	for _, f := range []struct {
		name, value string
		dst         *string
	}{{"id", *s.id, &q.ID}, {"username", *s.username, &q.Username}, {"email", *s.email, &q.Email}} {
		if f.value != "" {
			set++
			*f.dst, said = f.value, fmt.Sprintf("%s %q", f.name, f.value)
		}
	}
	if set != 1 {
		return q, "", errors.New("give exactly one of --id, --username or --email")
	}
	return q, said, nil
}

// find is the user the flags name, with a message that says which when there is none.
func (s userSelector) find(ctx context.Context, st store.Users) (store.User, error) {
	q, said, err := s.query()
	if err != nil {
		return store.User{}, err
	}
	u, err := st.FindUser(ctx, q)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("no user with %s", said)
	}
	return u, err
}

// parseOneUser parses the flags of a command that names one user (selectorFlags) and takes
// no positional argument; hint follows the message about one.
func (c *cli) parseOneUser(fs *flag.FlagSet, usage string, args []string, who userSelector, hint string) error {
	rest, err := c.parseFlags(fs, usage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return c.usageError(fs, usage, "unexpected argument %q%s", rest[0], hint)
	}
	if _, _, err := who.query(); err != nil {
		return c.usageError(fs, usage, "%v", err)
	}
	return nil
}

// fieldFlags collects repeated --field k=v flags.
type fieldFlags []string

func (f *fieldFlags) String() string     { return strings.Join(*f, ",") }
func (f *fieldFlags) Set(v string) error { *f = append(*f, v); return nil }

func (c *cli) usersSetPassword(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users set-password", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, false)
	who := selectorFlags(fs)
	cost := fs.Int("cost", defaultBcryptCost, fmt.Sprintf("bcrypt cost (%d-%d)", bcrypt.MinCost, bcrypt.MaxCost))
	if err := c.parseOneUser(fs, usersSetPasswordUsage, args, who, " (the password is read from stdin or prompted for, never taken from arguments)"); err != nil {
		return err
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		return c.usageError(fs, usersSetPasswordUsage, "--cost %d: want %d to %d", *cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return c.withStore(dataDir, func(s cliStore) error {
		u, err := who.find(ctx, s)
		if err != nil {
			return err
		}
		password, err := c.readNewPassword()
		if err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), *cost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		h := string(hash)
		if _, err := s.UpdateUser(ctx, u.ID, store.UserPatch{PasswordHash: &h}); err != nil {
			return fmt.Errorf("set the password of %q: %w", u.Username, err)
		}
		fmt.Fprintf(c.stdout, "password of %q (id %s) changed; sign-outs are not implied: gateway sessions revoke --user %s\n", u.Username, u.ID, u.Username)
		return nil
	})
}

func (c *cli) usersSetRole(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users set-role", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, false)
	who := selectorFlags(fs)
	role := fs.String("role", "", "the new role (empty clears it)")
	if err := c.parseOneUser(fs, usersSetRoleUsage, args, who, ""); err != nil {
		return err
	}
	roleSet := false
	fs.Visit(func(f *flag.Flag) { roleSet = roleSet || f.Name == "role" })
	if !roleSet {
		return c.usageError(fs, usersSetRoleUsage, "--role is required (--role '' clears it)")
	}
	return c.updateUser(ctx, dataDir, who, store.UserPatch{Role: role})
}

func (c *cli) usersUpdate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users update", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, false)
	who := selectorFlags(fs)
	var fields, unset fieldFlags
	fs.Var(&fields, "field", "`k=v`: set a field (repeatable)")
	fs.Var(&unset, "unset", "`k`: remove an extra field (repeatable)")
	if err := c.parseOneUser(fs, usersUpdateUsage, args, who, ""); err != nil {
		return err
	}
	patch, err := fieldPatch(fields, unset)
	if err != nil {
		return c.usageError(fs, usersUpdateUsage, "%v", err)
	}
	return c.updateUser(ctx, dataDir, who, patch)
}

// fieldPatch turns --field and --unset into a patch.
func fieldPatch(fields, unset []string) (store.UserPatch, error) {
	var p store.UserPatch
	if len(fields) == 0 && len(unset) == 0 {
		return p, errors.New("nothing to change: give --field k=v or --unset k")
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return p, fmt.Errorf("--field %q: want name=value", f)
		}
		switch k {
		case "username":
			p.Username = &v
		case "name":
			p.Name = &v
		case "email":
			p.Email = &v
		case "role":
			p.Role = &v
		case "password", "passwordHash", "_id", "id", "createdAt":
			return p, fmt.Errorf("--field %s: not changed here (the password with set-password; the id and creation time never)", k)
		default:
			if p.SetExtra == nil {
				p.SetExtra = map[string]any{}
			}
			p.SetExtra[k] = v
		}
	}
	p.UnsetExtra = unset
	return p, nil
}

// updateUser applies patch to the user who names, and says what it did.
func (c *cli) updateUser(ctx context.Context, dataDir storeLocation, who userSelector, patch store.UserPatch) error {
	return c.withStore(dataDir, func(s cliStore) error {
		u, err := who.find(ctx, s)
		if err != nil {
			return err
		}
		updated, err := s.UpdateUser(ctx, u.ID, patch)
		if err != nil {
			return fmt.Errorf("update %q: %w", u.Username, err)
		}
		fmt.Fprintf(c.stdout, "updated user %q (id %s)\n", updated.Username, updated.ID)
		return nil
	})
}
