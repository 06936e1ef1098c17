package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/script"
)

const testUsage = `Usage: gateway test [--timeout 5s] [--v] [DIR]

Runs the *.test.js and *.test.ts files in DIR (default ./scripts) with the callgate/test API
(test, describe, expect, argument builders, mockUsers) and prints one line per test, then
"N passed, N failed". Exits non-zero when a test fails.

Flags:
`

// scriptsDirArg is the one optional DIR argument of check and test.
func (c *cli) scriptsDirArg(fs *flag.FlagSet, usage string, rest []string) (string, error) {
	switch len(rest) {
	case 0:
		return config.DefaultScripts, nil
	case 1:
		return rest[0], nil
	}
	return "", c.usageError(fs, usage, "one scripts directory at most, got %q", rest)
}

func (c *cli) runTest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each test")
	verbose := fs.Bool("v", false, "print passing tests too (failures are always printed)")
	rest, err := c.parseFlags(fs, testUsage, args)
	if err != nil {
		return err
	}
	dir, err := c.scriptsDirArg(fs, testUsage, rest)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	passed, failed := 0, 0
	_, err = script.RunTests(ctx, script.Options{Dir: dir, Logger: logger, Timeouts: script.Timeouts{Default: *timeout}}, func(r script.TestResult) {
		name := r.File + " › " + r.Name
		if r.Passed() {
			passed++
			if *verbose {
				fmt.Fprintf(c.stdout, "--- PASS: %s (%s)\n", name, fmtDuration(r.Duration))
			}
			return
		}
		failed++
		fmt.Fprintf(c.stdout, "--- FAIL: %s (%s)\n", name, fmtDuration(r.Duration))
		errs := r.Errs // every bundler error of a file that did not load
		if len(errs) == 0 {
			errs = []*script.Error{r.Err}
		}
		for _, e := range errs {
			for _, line := range strings.Split(describeScriptError(e), "\n") {
				fmt.Fprintf(c.stdout, "    %s\n", line)
			}
		}
	})
	if err != nil {
		return err
	}
	if passed+failed == 0 {
		fmt.Fprintf(c.stdout, "no *.test.js or *.test.ts files in %s\n", dir)
	}
	fmt.Fprintf(c.stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return errTestsFailed
	}
	return nil
}

// errTestsFailed is reported by the exit code; the output already says which failed.
var errTestsFailed = errors.New("tests failed")

func fmtDuration(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}
