package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/store"
)

// defaultBcryptCost matches what NextAuth example apps use (bcrypt.hash(pw, 10)), so hashes
// made here and hashes imported from such an app cost the same to check.
const defaultBcryptCost = 10

// minPasswordChars is the shortest password `users add` accepts.
const minPasswordChars = 8

// maxPasswordBytes is bcrypt's input limit; longer passwords would be refused by bcrypt (or,
// in other implementations, silently truncated), so they are refused up front.
const maxPasswordBytes = 72

const usersUsage = `Usage:
  gateway users add --username U [--name N] [--email E] [--role R] [--cost 10] [--data DIR]
  gateway users import FILE [--data DIR]
  gateway users list [--json] [--data DIR]
  gateway users delete (--id ID | --username U | --email E) [--data DIR]
  gateway users set-password (--id ID | --username U | --email E) [--data DIR]
  gateway users set-role (--id ID | --username U | --email E) --role R [--data DIR]
  gateway users update (--id ID | --username U | --email E) --field k=v [--unset k] [--data DIR]

Users live in DIR/callgate.db (DIR defaults to ./data), or in Redis with --store URL (env
CALLGATE_STORE); --redis-ca FILE (env CALLGATE_REDIS_CA) trusts the private CA of a rediss://
server. While a gateway runs on the embedded store, every command works through its admin
socket DIR/callgate.sock. Run 'gateway users <command> --help' for a command's flags.
`

const usersAddUsage = `Usage: gateway users add --username U [--name N] [--email E] [--role R] [--cost 10] [--data DIR]

Adds a user and prints its id. The password is read from stdin (one line) when stdin is not a
terminal, for example:

  printf '%s\n' "$PASSWORD" | gateway users add --username jatin

and otherwise prompted for twice without echo. It is never taken from the command line, where
other users of the machine could see it. It must be at least 8 characters.

Flags:
`

const usersImportUsage = `Usage: gateway users import FILE [--data DIR]

Imports users as a MongoDB export of an app's users collection holds them: JSON lines
(mongoexport's default) or a JSON array (mongoexport --jsonArray), in relaxed or canonical
Extended JSON ({"$oid": …}, {"$date": …}). Each record has a username or an email (then the
username is the e-mail, lower-cased), and optionally _id, name, role, password (a bcrypt
hash) and createdAt. Other fields are kept. Every bad record is reported with its line, and
either every user is imported or, on any problem, none is.

Flags:
`

const usersListUsage = `Usage: gateway users list [--json] [--data DIR]

Lists users ordered by username. Password hashes are never shown.

Flags:
`

const usersDeleteUsage = `Usage: gateway users delete (--id ID | --username U | --email E) [--data DIR]

Deletes one user, chosen by exactly one of its id, username or e-mail.

Flags:
`

// runUsers dispatches `gateway users <command>`.
func (c *cli) runUsers(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usersUsage)
		return errUsage
	}
	switch args[0] {
	case "add":
		return c.usersAdd(ctx, args[1:])
	case "import":
		return c.usersImport(ctx, args[1:])
	case "list":
		return c.usersList(ctx, args[1:])
	case "delete":
		return c.usersDelete(ctx, args[1:])
	case "set-password":
		return c.usersSetPassword(ctx, args[1:])
	case "set-role":
		return c.usersSetRole(ctx, args[1:])
	case "update":
		return c.usersUpdate(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, usersUsage)
		return flag.ErrHelp
	default:
		fmt.Fprintf(c.stderr, "gateway users: unknown command %q\n\n%s", args[0], usersUsage)
		return errUsage
	}
}

func (c *cli) usersAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users add", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, true)
	username := fs.String("username", "", "username to sign in with (required, unique)")
	name := fs.String("name", "", "display name")
	email := fs.String("email", "", "e-mail address (unique, case-insensitive)")
	role := fs.String("role", "", "role, as the app's scripts use it (for example admin or user)")
	cost := fs.Int("cost", defaultBcryptCost, fmt.Sprintf("bcrypt cost (%d-%d)", bcrypt.MinCost, bcrypt.MaxCost))
	rest, err := c.parseFlags(fs, usersAddUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return c.usageError(fs, usersAddUsage, "unexpected argument %q (the password is read from stdin or prompted for, never taken from arguments)", rest[0])
	case *username == "":
		return c.usageError(fs, usersAddUsage, "--username is required")
	case *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost:
		return c.usageError(fs, usersAddUsage, "--cost %d: want %d to %d", *cost, bcrypt.MinCost, bcrypt.MaxCost)
	case *email != "" && !strings.Contains(*email, "@"):
		return c.usageError(fs, usersAddUsage, "--email %q: not an e-mail address", *email)
	}

	return c.withStore(dataDir, func(s cliStore) error {
		// Refuse a taken username or e-mail before asking for a password that would be
		// thrown away. CreateUser still enforces uniqueness if another process races us.
		if err := refuseTaken(ctx, s, "username", store.UserQuery{Username: *username}, *username); err != nil {
			return err
		}
		if *email != "" {
			if err := refuseTaken(ctx, s, "email", store.UserQuery{Email: *email}, *email); err != nil {
				return err
			}
		}
		password, err := c.readNewPassword()
		if err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), *cost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		u, err := s.CreateUser(ctx, store.User{
			Username:     *username,
			Name:         *name,
			Email:        *email,
			Role:         *role,
			PasswordHash: string(hash),
		})
		if err != nil {
			return fmt.Errorf("add user %q: %w", *username, err)
		}
		fmt.Fprintln(c.stdout, u.ID)
		return nil
	})
}

// refuseTaken returns an error naming the field when a user matching q exists.
func refuseTaken(ctx context.Context, s store.Users, field string, q store.UserQuery, value string) error {
	u, err := s.FindUser(ctx, q)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("check %s: %w", field, err)
	case field == "username":
		return fmt.Errorf("username %q already exists", value)
	default:
		return fmt.Errorf("%s %q already exists (user %q)", field, value, u.Username)
	}
}

// readNewPassword reads the new user's password: one line from stdin when it is piped, or
// typed twice at a terminal with echo off.
func (c *cli) readNewPassword() (string, error) {
	var password string
	if c.stdinIsTerminal {
		p, err := c.promptPasswordTwice()
		if err != nil {
			return "", err
		}
		password = p
	} else {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if password == "" {
			return "", errors.New("no password on stdin: pipe one line in, or run in a terminal to be prompted")
		}
	}
	if n := utf8.RuneCountInString(password); n < minPasswordChars {
		return "", fmt.Errorf("password too short: %d %s, want at least %d", n, plural(n, "character", "characters"), minPasswordChars)
	}
	if len(password) > maxPasswordBytes {
		return "", fmt.Errorf("password too long: %d bytes, bcrypt takes at most %d", len(password), maxPasswordBytes)
	}
	return password, nil
}

func (c *cli) promptPasswordTwice() (string, error) {
	f, ok := c.stdin.(interface{ Fd() uintptr })
	if !ok {
		return "", errors.New("stdin is a terminal but cannot be read with echo off")
	}
	fd := int(f.Fd())
	fmt.Fprint(c.stderr, "Password: ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(c.stderr, "Repeat password: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if !bytes.Equal(first, second) {
		return "", errors.New("passwords do not match")
	}
	return string(first), nil
}

func (c *cli) usersImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users import", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, true)
	rest, err := c.parseFlags(fs, usersImportUsage, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return c.usageError(fs, usersImportUsage, "want exactly one FILE, got %d arguments", len(rest))
	}
	file := rest[0]
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	records, err := store.ParseUserImport(data)
	if err != nil {
		return fmt.Errorf("import %s: nothing imported: %w", file, err)
	}
	return c.withStore(dataDir, func(s cliStore) error {
		if err := store.ImportUserRecords(ctx, s, records); err != nil {
			return fmt.Errorf("import %s: nothing imported: %w", file, err)
		}
		fmt.Fprintf(c.stdout, "imported %d %s into %s\n", len(records), plural(len(records), "user", "users"), storeName(s))
		return nil
	})
}

// listedUser is a user as `users list --json` prints it: never the password hash.
type listedUser struct {
	ID        string    `json:"_id"`
	Username  string    `json:"username"`
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
	Role      string    `json:"role,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

func (c *cli) usersList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users list", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, false)
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	rest, err := c.parseFlags(fs, usersListUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return c.usageError(fs, usersListUsage, "unexpected argument %q", rest[0])
	}
	var users []store.User
	err = c.withStore(dataDir, func(s cliStore) error {
		var listErr error
		users, listErr = s.ListUsers(ctx)
		return listErr
	})
	if err != nil {
		return err
	}

	if *asJSON {
		out := make([]listedUser, 0, len(users))
		for _, u := range users {
			out = append(out, listedUser{ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt})
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write user list: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tNAME\tEMAIL\tROLE")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cell(u.ID), cell(u.Username), cell(u.Name), cell(u.Email), cell(u.Role))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write user list: %w", err)
	}
	return nil
}

// cell makes a stored value safe for one table cell: an imported name with a tab or a
// newline (or a terminal escape) must not break the table or the terminal.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func (c *cli) usersDelete(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("users delete", flag.ContinueOnError)
	dataDir := dataFlag(fs, c.getenv, false)
	who := selectorFlags(fs)
	if err := c.parseOneUser(fs, usersDeleteUsage, args, who, ""); err != nil {
		return err
	}

	return c.withStore(dataDir, func(s cliStore) error {
		u, err := who.find(ctx, s)
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if err := s.DeleteUser(ctx, store.UserQuery{ID: u.ID}); err != nil {
			return fmt.Errorf("delete user %q: %w", u.Username, err)
		}
		fmt.Fprintf(c.stdout, "deleted user %q (id %s)\n", u.Username, u.ID)
		return nil
	})
}

// storeLocation is where a CLI command finds the store: --data for the embedded store,
// --store (or CALLGATE_STORE) for Redis, --key-prefix, and --redis-ca (or CALLGATE_REDIS_CA)
// for a rediss:// server whose certificate comes from a private CA.
type storeLocation struct {
	data, store, keyPrefix, redisCA *string
	// create: the command may create the embedded store (users add, users import); the
	// others refuse a --data directory that does not exist instead of reading an empty,
	// new store (a typo in the path would otherwise look like a store with no users).
	create bool
}

// dataFlag defines --data, --store, --key-prefix and --redis-ca on fs; the environment
// defaults are read through getenv. create says whether the command may create the
// embedded store.
func dataFlag(fs *flag.FlagSet, getenv func(string) string, create bool) storeLocation {
	dataUsage := "`DIR` holding " + storeFileName + " (it must exist: gateway serve, users add and users import create it)"
	if create {
		dataUsage = "`DIR` holding " + storeFileName + " (created if missing)"
	}
	return storeLocation{
		create:    create,
		data:      fs.String("data", defaultDataDir, dataUsage),
		store:     fs.String("store", getenv("CALLGATE_STORE"), "store: bolt (default, in --data) or a redis:// URL (env CALLGATE_STORE)"),
		keyPrefix: fs.String("key-prefix", "callgate", "Redis key prefix of the gateway (redis.key_prefix)"),
		redisCA:   fs.String("redis-ca", getenv("CALLGATE_REDIS_CA"), "PEM `FILE` of the private CA that signs a rediss:// store's certificate (redis.tls_ca_file, env CALLGATE_REDIS_CA)"),
	}
}

// withStore opens the store, runs fn and closes the store, so the embedded file's lock is
// released before the command returns (a `serve` started next can open it). When a gateway
// runs on the embedded store, fn works through its admin socket (adminsocket.go) instead. What the
// Redis client logs of its own (failed dials) goes to stderr as warnings.
func (c *cli) withStore(loc storeLocation, fn func(cliStore) error) (err error) {
	if err := checkRedisCA(*loc.store, *loc.redisCA); err != nil {
		return err
	}
	if *loc.store == "" || *loc.store == config.StoreBolt {
		if err := loc.checkData(); err != nil {
			return err
		}
		// A gateway running on this embedded store holds its file: ask it instead.
		if s, ok := dialAdminSocket(*loc.data); ok {
			defer s.Close()
			return fn(s)
		}
	}
	rc := config.RedisConfig{KeyPrefix: *loc.keyPrefix, DialTimeout: config.Duration(2 * time.Second), TLSCAFile: *loc.redisCA}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := openStore(*loc.store, *loc.data, rc, logger)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return fn(s)
}

// checkData refuses a --data directory without a store when the command does not create
// one. The file is not required: a directory `gateway serve` made has the store once a user
// or a session was written, and an empty one opened here is the same empty store.
func (loc storeLocation) checkData() error {
	if loc.create {
		return nil
	}
	st, err := os.Stat(*loc.data)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("data directory %s does not exist, so it holds no store: check --data (gateway serve, gateway users add and gateway users import create it; a Redis store is --store redis://…)", *loc.data)
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case !st.IsDir():
		return fmt.Errorf("--data %s is not a directory", *loc.data)
	}
	return nil
}

// checkRedisCA refuses a CA file with a store that does not use TLS. With the embedded
// store it would otherwise be ignored, and a command meant for Redis would quietly act on a
// local file; redis.Open refuses it with redis:// as well, but only a message naming the
// flag says which setting to fix (it may have come from CALLGATE_REDIS_CA).
func checkRedisCA(storeSetting, caFile string) error {
	if caFile == "" {
		return nil
	}
	var got string
	scheme, _, _ := strings.Cut(storeSetting, "://")
	switch {
	case storeSetting == "" || storeSetting == config.StoreBolt:
		got = "the embedded store (" + config.StoreBolt + ")"
	case strings.HasPrefix(scheme, "redis") && !strings.HasPrefix(scheme, "rediss"):
		got = scheme + "://"
	default:
		return nil
	}
	return fmt.Errorf("--redis-ca %s (or CALLGATE_REDIS_CA) needs a TLS store: --store rediss://, rediss+sentinel:// or rediss+cluster://, not %s", caFile, got)
}

// parseFlags parses args with fs and returns the positional arguments. Unlike fs.Parse it
// accepts flags after positional ones (`users import FILE --data DIR`), the way people type
// them. --help prints the usage to stdout and returns flag.ErrHelp; a bad flag prints the
// problem and the usage to stderr and returns an error wrapping errUsage.
func (c *cli) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	// The flag package's own printing is replaced so that help goes to stdout and errors
	// are printed once, with our usage text.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(c.stdout, fs, usage)
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, c.usageError(fs, usage, "%v", err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError prints the problem and the usage to stderr and returns an error wrapping
// errUsage (main prints nothing more for it).
func (c *cli) usageError(fs *flag.FlagSet, usage, format string, args ...any) error {
	problem := fmt.Sprintf(format, args...)
	fmt.Fprintf(c.stderr, "gateway %s: %s\n\n", fs.Name(), problem)
	c.printUsage(c.stderr, fs, usage)
	return fmt.Errorf("%w: gateway %s: %s", errUsage, fs.Name(), problem)
}

func (c *cli) printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	printFlags(w, fs)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// isTerminal reports whether f is an interactive terminal, where a password can be typed
// with echo off.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}
