// Command gateway is callgate: an authentication gateway that speaks NextAuth v4 on the
// wire and runs the auth callbacks as JavaScript.
//
//	gateway serve     run the gateway
//	gateway users     manage users in the store (add, import, list, delete)
//	gateway check     validate the scripts directory (bundle, compile, run, validate)
//	gateway test      run the callback tests (*.test.js, *.test.ts) of the scripts directory
//	gateway sessions  list a user's sessions, or sign them out everywhere
//	gateway token     decode (verify) or encode a session token
//	gateway version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/callgate/callgate/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// cli is what a command reads and writes. Tests build one around buffers.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdinIsTerminal says whether passwords may be prompted for with echo off.
	stdinIsTerminal bool
	getenv          func(string) string
	// now is serve's clock (engine, proxy, assertion keys); nil means time.Now. Tests set
	// it to move past an expiry instead of sleeping through it.
	now func() time.Time
	// wrapStore, when not nil, wraps the store serve opens, so a test can watch what
	// reaches it and when it is closed.
	wrapStore func(store.Store) store.Store
}

// errUsage marks an error already explained to the user together with the usage text.
var errUsage = errors.New("usage")

const mainUsage = `callgate: an authentication gateway with NextAuth v4 wire compatibility.

Usage:
  gateway serve [flags]      run the gateway (gateway serve --help)
  gateway users <command>    manage users: add, import, list, delete (gateway users --help)
  gateway check [DIR]        validate the scripts directory, reporting every problem at once
                             (gateway check --help; --types type-checks with the project's tsc)
  gateway test [DIR]         run the *.test.js / *.test.ts callback tests of the scripts directory
  gateway sessions <command> list or revoke a user's sessions (gateway sessions --help)
  gateway token <command>    decode (verify and print) or encode a session token (gateway token --help)
  gateway trace [flags]      follow a running gateway's callback lifecycle (gateway trace --help)
  gateway version            print the version

Run 'gateway <command> --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{
		stdin:           os.Stdin,
		stdout:          os.Stdout,
		stderr:          os.Stderr,
		stdinIsTerminal: isTerminal(os.Stdin),
		getenv:          os.Getenv,
	}
	if err := c.run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, errUsage) && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

func (c *cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, mainUsage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return c.runServe(ctx, args[1:])
	case "users":
		return c.runUsers(ctx, args[1:])
	case "check":
		return c.runCheck(ctx, args[1:])
	case "test":
		return c.runTest(ctx, args[1:])
	case "sessions":
		return c.runSessions(ctx, args[1:])
	case "token":
		return c.runToken(ctx, args[1:])
	case "trace":
		return c.runTrace(ctx, args[1:])
	case "version", "--version":
		return c.runVersion(args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, mainUsage)
		return nil
	default:
		fmt.Fprintf(c.stderr, "gateway: unknown command %q\n\n%s", args[0], mainUsage)
		return errUsage
	}
}

const versionUsage = `Usage: gateway version

Prints the version of the gateway ("callgate <version>").
`

func (c *cli) runVersion(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	rest, err := c.parseFlags(fs, versionUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return c.usageError(fs, versionUsage, "version takes no arguments, got %q", rest)
	}
	fmt.Fprintln(c.stdout, "callgate", version)
	return nil
}
