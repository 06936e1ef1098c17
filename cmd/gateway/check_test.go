package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCheckCLI runs the gateway with args and returns stdout, stderr and the error.
func runCheckCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	err := c.run(t.Context(), args)
	return out.String(), errOut.String(), err
}

// TestCheckReportsEveryMistake: one run of check reports every mistake of the directory at
// its file:line:column with the offending line, counts them and fails.
func TestCheckReportsEveryMistake(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // each a line (prefix) of the report
		not  []string
	}{
		{"five different mistakes", []string{"check", repoPath("testdata", "scripts", "five-mistakes")}, []string{
			"auth.config.js:8:3: ConfigWarning: sesion: unknown auth config key ignored",
			`auth.config.js:9:12: ConfigError: pages.signIn must be a path starting with / or an absolute http(s) URL, got "login"`,
			"parse.test.js:3:19: SyntaxError: Expected \")\" but found \";\"",
			`import.test.js:2:24: ImportError: cannot resolve "./helpers.js"`,
			"role.test.js:5:23: test role.test.js › the jwt callback copies the role: AssertionError: expect(received).toBe",
			"five-mistakes: 5 problems (2 config, 3 test)",
		}, []string{"note: the scripts do not bundle"}},
		{"bundle errors in two files", []string{"check", writeFiles(t, map[string]string{
			"auth.config.js": "import a from \"./a.js\";\nimport b from \"./b.js\";\nexport default { providers: [a, b], debugg: true };\n",
			"a.js":           "import x from \"lodash\";\nexport default x;\n",
			"b.js":           "export default {\n  id: ,\n};\n",
		})}, []string{
			`a.js:1:15: ImportError: import "lodash" is not allowed`,
			"b.js:2:7: SyntaxError: Unexpected \",\"",
			"note: the scripts do not bundle, so the auth config was not read",
			": 2 problems (2 bundle)",
		}, []string{"(and 1 more errors)", "debugg"}},
		{"a config that throws when it runs", []string{"check", writeFiles(t, map[string]string{
			"auth.config.js": "const x = JSON.parse(\"{\");\nexport default { providers: [], debugg: x };\n",
		})}, []string{
			"auth.config.js:1:22: SyntaxError: Unexpected end of JSON input",
			"note: the auth config threw when it ran, so it was not validated",
			": 1 problem (1 load)",
		}, []string{"note: the scripts do not bundle", "providers must not be empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runCheckCLI(t, tc.args...)
			if !errors.Is(err, errCheckFailed) {
				t.Fatalf("check: got error %v, want it to fail\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			lines := strings.Split(stderr, "\n")
			for _, w := range tc.want {
				found := false
				for i, l := range lines {
					if strings.HasPrefix(l, w) || strings.HasSuffix(l, w) {
						found = true
						// A located problem is followed by its source line and a caret.
						if strings.Contains(w, ".js:") && (i+2 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+2]), "^")) {
							if !strings.Contains(w, "AssertionError") {
								t.Errorf("%q: got no source line and caret after it", w)
							}
						}
					}
				}
				if !found {
					t.Errorf("stderr: got\n%s\nwant a line starting %q", stderr, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(stderr, n) {
					t.Errorf("stderr: got %q in\n%s", n, stderr)
				}
			}
		})
	}
}

// pinnedTSC is the TypeScript compiler of testdata/types (package-lock.json), installed by
// test.sh. Without it the test skips, unless CI=true.
func pinnedTSC(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(repoPath("testdata", "types", "node_modules", ".bin", "tsc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the pinned TypeScript is not installed (%v): run ./test.sh, or npm ci in testdata/types", err)
		}
		t.Skipf("the pinned TypeScript is not installed (%v): npm ci in testdata/types", err)
	}
	return p
}

// TestShippedTypesTypeCheck: tsc --noEmit passes over the shipped .d.ts files with the
// default scripts (their own jsconfig.json), and over the TypeScript fixtures with
// NextAuth's module augmentation; and it bites: the mistakes fixture fails at each mistake.
func TestShippedTypesTypeCheck(t *testing.T) {
	tsc := pinnedTSC(t)
	t.Run("tsc -p scripts/jsconfig.json", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), tsc, "--noEmit", "--pretty", "false", "-p", repoPath("scripts", "jsconfig.json")).CombinedOutput()
		if err != nil {
			t.Fatalf("tsc: %v\n%s", err, out)
		}
	})
	for _, dir := range [][]string{{"scripts"}, {"testdata", "scripts", "typescript"}, {"testdata", "scripts", "ts-error"}, {"testdata", "types", "augment"}} {
		t.Run("check --types "+filepath.Join(dir...), func(t *testing.T) {
			stdout, stderr, err := runCheckCLI(t, "check", "--types", "--tsc", tsc, repoPath(dir...))
			if err != nil {
				t.Fatalf("check --types: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
		})
	}
	// A NextAuth route file copied as it is, with its module augmentation and tsconfig.json
	// paths, type-checks against the shipped types.
	t.Run("check --types on a migrated NextAuth route file", func(t *testing.T) {
		stdout, stderr, err := runCheckCLI(t, "check", "--types", "--tsc", tsc, migratedScripts(t, ""))
		if err != nil {
			t.Fatalf("check --types: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
	})
	t.Run("the check bites", func(t *testing.T) {
		stdout, stderr, err := runCheckCLI(t, "check", "--types", "--tsc", tsc, repoPath("testdata", "types", "mistakes"))
		if !errors.Is(err, errCheckFailed) {
			t.Fatalf("check --types: got %v, want it to fail\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		for _, w := range []string{
			"auth.config.ts:5:7: TS2322: Type 'string' is not assignable to type 'number'.",
			// The augmentation in types.d.ts makes User.role required.
			"auth.config.ts:10:13: TS2322: ",
			`auth.config.ts:15:14: TS2322: Type '"cookie"' is not assignable to type '"jwt" | "database" | undefined'.`,
			`auth.config.ts:15:14: ConfigError: session.strategy must be "jwt" or "database", got "cookie"`,
			"mistakes: 4 problems (1 config, 3 type)",
		} {
			if !strings.Contains(stderr, "\n"+w) && !strings.HasPrefix(stderr, w) && !strings.Contains(stderr, "/"+w) {
				t.Errorf("stderr: got\n%s\nwant a line starting %q", stderr, w)
			}
		}
		if !strings.Contains(stderr, "missing the following properties from type 'User': role") {
			t.Errorf("stderr: got\n%s\nwant the augmented User's role required", stderr)
		}
	})
}

// TestCheckTypesFindsTheProjectsTSC: without --tsc, check --types runs node_modules/.bin/tsc
// of the scripts directory or a parent; with none there nor on PATH it says how to install one.
func TestCheckTypesFindsTheProjectsTSC(t *testing.T) {
	tsc := pinnedTSC(t)
	project := t.TempDir()
	scriptsDir := filepath.Join(project, "scripts")
	if err := os.MkdirAll(filepath.Join(project, "node_modules", ".bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(scriptsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(scriptsDir, "auth.config.ts"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("import Credentials from \"callgate/providers/credentials\";\nconst n: number = \"x\";\nexport default { providers: [Credentials({ authorize: async () => null })] };\n")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node, which runs tsc: %v", err)
	}
	t.Setenv("PATH", t.TempDir()) // no tsc on PATH
	_, stderr, err := runCheckCLI(t, "check", "--types", scriptsDir)
	if err == nil || !strings.Contains(err.Error(), "npm i -D typescript") {
		t.Fatalf("check --types without a tsc: got %v (stderr %s), want how to install one", err, stderr)
	}
	if err := os.Symlink(tsc, filepath.Join(project, "node_modules", ".bin", "tsc")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(node)) // node, for tsc's #! line
	_, stderr, err = runCheckCLI(t, "check", "--types", scriptsDir)
	if !errors.Is(err, errCheckFailed) || !strings.Contains(stderr, "auth.config.ts:2:7: TS2322:") {
		t.Fatalf("check --types with the project's tsc: got %v\n%s\nwant the type error at auth.config.ts:2:7", err, stderr)
	}
}
