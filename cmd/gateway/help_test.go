package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// singleDash is a flag written with one dash: " -data", "[-v]", "(-json".
var singleDash = regexp.MustCompile(`(^|[\s\[(|])-[a-zA-Z]`)

// TestEveryCommandHasItsOwnHelp: --help of each command and subcommand prints that
// command's own text (no two alike) to stdout and succeeds, naming itself and writing every
// flag with two dashes.
func TestEveryCommandHasItsOwnHelp(t *testing.T) {
	commands := [][]string{
		{"serve"}, {"check"}, {"test"}, {"version"},
		{"users"}, {"users", "add"}, {"users", "import"}, {"users", "list"}, {"users", "delete"},
		{"users", "set-password"}, {"users", "set-role"}, {"users", "update"},
		{"sessions"}, {"sessions", "list"}, {"sessions", "revoke"},
		{"token"}, {"token", "decode"}, {"token", "encode"},
		{"trace"},
	}
	seen := map[string]string{}
	for _, cmd := range commands {
		name := strings.Join(cmd, " ")
		t.Run(name, func(t *testing.T) {
			for _, help := range []string{"--help", "-h"} {
				stdout, stderr, err := runCheckCLI(t, append(append([]string{}, cmd...), help)...)
				if err != nil && !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("%s %s: got error %v (stderr %s), want help", name, help, err, stderr)
				}
				if stderr != "" {
					t.Errorf("%s %s: got stderr %q, want the help on stdout only", name, help, stderr)
				}
				if !strings.Contains(stdout, "gateway "+name) {
					t.Errorf("%s %s: the help does not name the command:\n%s", name, help, stdout)
				}
				for i, line := range strings.Split(stdout, "\n") {
					if m := singleDash.FindString(line); m != "" {
						t.Errorf("%s %s: line %d writes a flag with one dash (%q): %s", name, help, i+1, m, line)
					}
				}
				if help == "--help" {
					if other, dup := seen[stdout]; dup {
						t.Errorf("%s --help prints the same text as %s --help", name, other)
					}
					seen[stdout] = name
				}
			}
		})
	}
	t.Run("main usage", func(t *testing.T) {
		stdout, _, err := runCheckCLI(t, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(stdout, "\n") {
			if m := singleDash.FindString(line); m != "" {
				t.Errorf("line %d writes a flag with one dash (%q): %s", i+1, m, line)
			}
		}
	})
}

// TestMissingDataDirectory: a command that reads or changes an existing embedded store
// refuses a --data directory that does not exist, naming it and what creates it, and
// creates nothing; the commands that create a store still do.
func TestMissingDataDirectory(t *testing.T) {
	for _, cmd := range [][]string{
		{"users", "list"}, {"users", "delete", "--username", "jane"},
		{"users", "set-role", "--username", "jane", "--role", "admin"},
		{"users", "update", "--username", "jane", "--field", "team=a"},
		{"users", "set-password", "--username", "jane"},
		{"sessions", "list", "--user", "jane"}, {"sessions", "revoke", "--user", "jane"},
	} {
		t.Run(strings.Join(cmd[:2], " "), func(t *testing.T) {
			missing := filepath.Join(t.TempDir(), "typo")
			_, stderr, err := runCheckCLI(t, append(cmd, "--data", missing)...)
			if err == nil || !strings.Contains(err.Error(), "data directory "+missing+" does not exist") || !strings.Contains(err.Error(), "users add") {
				t.Fatalf("got %v (stderr %s), want the missing directory named and what creates it", err, stderr)
			}
			if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the command created %s (%v)", missing, err)
			}
		})
	}
	t.Run("users import creates it", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "new")
		if _, stderr, err := runCheckCLI(t, "users", "import", repoPath("testdata", "users.json"), "--data", missing); err != nil {
			t.Fatalf("users import: %v\n%s", err, stderr)
		}
		if _, err := os.Stat(filepath.Join(missing, storeFileName)); err != nil {
			t.Errorf("users import made no store: %v", err)
		}
		stdout, stderr, err := runCheckCLI(t, "users", "list", "--data", missing)
		if err != nil || !strings.Contains(stdout, "jatin") {
			t.Errorf("users list after the import: %v\n%s%s", err, stdout, stderr)
		}
	})
}
