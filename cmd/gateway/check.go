package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/script"
)

const checkUsage = `Usage: gateway check [--types] [--tsc PATH] [DIR]

Bundles, compiles, runs and validates the auth config in DIR (default ./scripts) exactly as
serve does, runs its *.test.js / *.test.ts files, and prints the providers and callbacks it
defines. Every problem found is printed as file:line:column with the offending line, then a
count; the exit status is non-zero when there is any. Use it in a pre-commit hook or CI.

What is reported together: the bundler's errors in every file; the config's mistakes
(invalid values, and the options the gateway ignores: unknown keys, callbacks, events and
pages); every failing test; with --types, every type error. What hides what: a file that
does not bundle stops the config from being read, so its mistakes show once the bundle
builds; a test file is bundled on its own, so its problems are reported either way.

Flags:
`

// checkedHooks are what check lists: every callback and event the host calls.
func checkedHooks() []script.Hook {
	var hooks []script.Hook
	for _, c := range script.Callbacks() {
		hooks = append(hooks, c)
	}
	for _, e := range script.Events() {
		hooks = append(hooks, e)
	}
	return hooks
}

// problem is one mistake check reports, and what found it.
type problem struct {
	kind string // "bundle", "load", "config", "test", "type"
	err  *script.Error
	test string // the failing test's name, for kind "test"
}

func (c *cli) runCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	types := fs.Bool("types", false, "type-check the TypeScript and // @ts-check files with the project's TypeScript compiler (tsc)")
	tsc := fs.String("tsc", "", "the tsc to run with --types (default: node_modules/.bin/tsc in DIR or a parent, else tsc on PATH)")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each test")
	rest, err := c.parseFlags(fs, checkUsage, args)
	if err != nil {
		return err
	}
	dir, err := c.scriptsDirArg(fs, checkUsage, rest)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil)) // every warning is a problem below
	opts := script.Options{Dir: dir, Logger: logger, PoolSize: 1, Timeouts: script.Timeouts{Default: *timeout}}
	var problems []problem
	add := func(kind, test string, errs ...*script.Error) {
		for _, e := range errs {
			problems = append(problems, problem{kind: kind, err: e, test: test})
		}
	}

	gen, err := script.Load(ctx, opts)
	bundled, threw := true, false
	if err != nil {
		errs := script.Errors(err)
		if len(errs) == 0 {
			return fmt.Errorf("check %s: %w", dir, err)
		}
		for _, e := range errs {
			kind := "load" // the program threw, or did not compile
			switch {
			case e.FromBundler():
				kind, bundled = "bundle", false
			case e.Name == "ConfigError" || e.Name == "ConfigWarning":
				kind = "config"
			}
			if kind == "load" {
				threw = true
			}
			add(kind, "", e)
		}
	} else {
		defer gen.Close()
		add("config", "", gen.Warnings()...)
	}

	results, err := script.RunTests(ctx, opts, nil)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	for _, r := range results {
		if r.Passed() {
			continue
		}
		if len(r.Errs) > 0 {
			add("test", r.File+" › "+r.Name, r.Errs...)
		} else {
			add("test", r.File+" › "+r.Name, r.Err)
		}
	}

	if *types {
		typeErrs, err := c.typeCheck(ctx, dir, *tsc)
		if err != nil {
			return fmt.Errorf("check %s --types: %w", dir, err)
		}
		add("type", "", typeErrs...)
	}

	problems = dedupe(problems)
	if len(problems) == 0 {
		c.printCheckSummary(dir, gen)
		return nil
	}
	counts := map[string]int{}
	for _, p := range problems {
		counts[p.kind]++
		msg := describeScriptError(p.err)
		if p.test != "" && !strings.HasSuffix(p.test, "(load)") {
			msg = strings.Replace(msg, ": ", ": test "+p.test+": ", 1)
			if p.err.File == "" {
				msg = "test " + p.test + ": " + msg
			}
		}
		fmt.Fprintln(c.stderr, msg)
	}
	switch {
	case !bundled:
		fmt.Fprintln(c.stderr, "note: the scripts do not bundle, so the auth config was not read: its own mistakes show once the errors above are fixed")
	case threw:
		fmt.Fprintln(c.stderr, "note: the auth config threw when it ran, so it was not validated: its own mistakes show once it runs")
	}
	var parts []string
	for _, k := range []string{"bundle", "load", "config", "test", "type"} {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	noun := "problems"
	if len(problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(c.stderr, "%s: %d %s (%s)\n", dir, len(problems), noun, strings.Join(parts, ", "))
	return errCheckFailed
}

// errCheckFailed is reported by the exit code; the output already lists the problems.
var errCheckFailed = errors.New("check failed")

// dedupe drops a problem reported twice: a test file that imports a broken config fails to
// bundle with the config's own error.
func dedupe(ps []problem) []problem {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		k := fmt.Sprintf("%s:%d:%d:%s", p.err.File, p.err.Line, p.err.Column, p.err.Message)
		if p.err.File != "" && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return out
}

func (c *cli) printCheckSummary(dir string, gen *script.Generation) {
	cfg := gen.Config()
	fmt.Fprintf(c.stdout, "%s: ok (generation %s)\n", dir, gen.Hash()[:12])
	fmt.Fprintln(c.stdout, "providers:")
	for _, p := range cfg.Providers {
		fields := make([]string, len(p.Credentials))
		for i, f := range p.Credentials {
			fields[i] = f.Name
		}
		fmt.Fprintf(c.stdout, "  %s (%s, %q) fields: %s\n", p.ID, p.Type, p.Name, strings.Join(fields, ", "))
	}
	var defined []string
	for _, h := range checkedHooks() {
		if gen.Defines(h) {
			defined = append(defined, h.String())
		}
	}
	sort.Strings(defined)
	fmt.Fprintln(c.stdout, "callbacks:")
	if len(defined) == 0 {
		fmt.Fprintln(c.stdout, "  (none: NextAuth's defaults apply)")
	}
	for _, n := range defined {
		fmt.Fprintf(c.stdout, "  %s\n", n)
	}
	fmt.Fprintf(c.stdout, "session: strategy %s, maxAge %s\n", cfg.Session.Strategy, cfg.Session.MaxAge)
}
