package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/store"
)

// usersTestFile is the shared fixture: two users exported from a NextAuth app's MongoDB.
var usersTestFile = filepath.Join("..", "..", "testdata", "users.json")

// runUsersCmd runs `gateway users args...` with stdin piped (not a terminal) and returns
// what it printed.
func runUsersCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(string) string { return "" },
	}
	err = c.run(context.Background(), append([]string{"users"}, args...))
	return out.String(), errOut.String(), err
}

// mustRunUsers runs a command that must succeed and returns its stdout.
func mustRunUsers(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runUsersCmd(t, stdin, args...)
	if err != nil {
		t.Fatalf("gateway users %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// storedUsers opens the data directory's store and returns its users, closing it again so
// the next command can open it.
func storedUsers(t *testing.T, dataDir string) []store.User {
	t.Helper()
	s, err := openStore(config.StoreBolt, dataDir, config.RedisConfig{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("openStore(%s): %v", dataDir, err)
	}
	defer s.Close()
	users, err := s.ListUsers(context.Background())
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	return users
}

func findStored(t *testing.T, dataDir, username string) (store.User, bool) {
	t.Helper()
	for _, u := range storedUsers(t, dataDir) {
		if u.Username == username {
			return u, true
		}
	}
	return store.User{}, false
}

func TestUsersAdd(t *testing.T) {
	tests := []struct {
		name         string
		stdin        string
		extraArgs    []string
		wantPassword string
		wantCost     int
	}{
		{"newline trimmed", "correct horse\n", []string{"--cost", "4"}, "correct horse", 4},
		{"crlf trimmed", "correct horse\r\n", []string{"--cost", "4"}, "correct horse", 4},
		{"no trailing newline, spaces kept", " spaced pass ", []string{"--cost", "4"}, " spaced pass ", 4},
		{"only first line read", "first-line-pw\nsecond\n", []string{"--cost", "4"}, "first-line-pw", 4},
		{"default cost matches nextauth apps", "correct horse\n", nil, "correct horse", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"add", "--data", dir, "--username", "jatin", "--name", "Jatin",
				"--email", "Jatin@Example.com", "--role", "admin"}, tt.extraArgs...)
			out := mustRunUsers(t, tt.stdin, args...)

			id := strings.TrimSpace(out)
			if !store.IsUserID(id) {
				t.Errorf("printed id: got %q, want 24 lowercase hex", out)
			}
			u, ok := findStored(t, dir, "jatin")
			if !ok {
				t.Fatal("user jatin not in the store after add")
			}
			if u.ID != id || u.Name != "Jatin" || u.Email != "Jatin@Example.com" || u.Role != "admin" {
				t.Errorf("stored user: got %+v, want id %s, name Jatin, email Jatin@Example.com, role admin", u, id)
			}
			if err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(tt.wantPassword)); err != nil {
				t.Errorf("stored hash does not verify password %q: %v", tt.wantPassword, err)
			}
			if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || cost != tt.wantCost {
				t.Errorf("bcrypt cost: got %d (%v), want %d", cost, err, tt.wantCost)
			}
		})
	}
}

func TestUsersAddRefuses(t *testing.T) {
	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantErr   string
		wantUsage bool // the problem is in the arguments: usage printed, main adds nothing
	}{
		{"duplicate username", "long enough pw\n", []string{"--username", "jatin"}, `username "jatin" already exists`, false},
		{"duplicate email other case", "long enough pw\n", []string{"--username", "bob", "--email", "JATIN@example.com"}, `email "JATIN@example.com" already exists (user "jatin")`, false},
		{"short password", "short7!\n", []string{"--username", "bob"}, "password too short: 7 characters, want at least 8", false},
		{"counted in characters, not bytes", "ééééééé\n", []string{"--username", "bob"}, "password too short: 7 characters", false},
		{"password over bcrypt limit", strings.Repeat("x", 73) + "\n", []string{"--username", "bob"}, "password too long", false},
		{"empty stdin", "", []string{"--username", "bob"}, "no password on stdin", false},
		{"blank line", "\n", []string{"--username", "bob"}, "no password on stdin", false},
		{"missing username", "long enough pw\n", nil, "--username is required", true},
		{"password as argument", "", []string{"--username", "bob", "hunter2hunter2"}, `unexpected argument "hunter2hunter2"`, true},
		{"password flag does not exist", "", []string{"--username", "bob", "--password", "hunter2hunter2"}, "flag provided but not defined: -password", true},
		{"cost too low", "long enough pw\n", []string{"--username", "bob", "--cost", "3"}, "--cost 3", true},
		{"bad email", "long enough pw\n", []string{"--username", "bob", "--email", "bob"}, `--email "bob"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustRunUsers(t, "existing password\n", "add", "--data", dir, "--cost", "4", "--username", "jatin", "--email", "jatin@example.com")

			args := append([]string{"add", "--data", dir, "--cost", "4"}, tt.args...)
			// --cost given twice: the last wins, so a case can override it.
			out, errOut, err := runUsersCmd(t, tt.stdin, args...)
			if err == nil {
				t.Fatalf("got nil error and stdout %q, want error containing %q", out, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.wantErr)
			}
			if got := errors.Is(err, errUsage); got != tt.wantUsage {
				t.Errorf("errors.Is(err, errUsage): got %v, want %v", got, tt.wantUsage)
			}
			if tt.wantUsage && !strings.Contains(errOut, "Usage: gateway users add") {
				t.Errorf("stderr: got %q, want the add usage", errOut)
			}
			if users := storedUsers(t, dir); len(users) != 1 {
				t.Errorf("users after refused add: got %d, want 1", len(users))
			}
		})
	}
}

func TestUsersImport(t *testing.T) {
	dir := t.TempDir()
	// Flags after the file name work too.
	out := mustRunUsers(t, "", "import", usersTestFile, "--data", dir)
	if !strings.HasPrefix(out, "imported 2 users into ") {
		t.Errorf("stdout: got %q, want \"imported 2 users into …\"", out)
	}
	want, err := os.ReadFile(usersTestFile)
	if err != nil {
		t.Fatal(err)
	}
	wantUsers, err := store.DecodeUserExport(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wantUsers {
		got, ok := findStored(t, dir, w.Username)
		if !ok {
			t.Errorf("user %q not imported", w.Username)
			continue
		}
		if got.ID != w.ID || got.Email != w.Email || got.PasswordHash != w.PasswordHash || got.Role != w.Role {
			t.Errorf("imported %q: got %+v, want %+v", w.Username, got, w)
		}
	}

	// Importing the same file again collides with every record and changes nothing.
	_, _, err = runUsersCmd(t, "", "import", "--data", dir, usersTestFile)
	if !errors.Is(err, store.ErrDuplicate) || !strings.Contains(err.Error(), "nothing imported") {
		t.Errorf("second import: got %v, want a duplicate error saying nothing was imported", err)
	}
	if users := storedUsers(t, dir); len(users) != 2 {
		t.Errorf("users after second import: got %d, want 2", len(users))
	}
}

func TestUsersImportMalformedImportsNothing(t *testing.T) {
	const hash = "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"not json", `[{"username":`, "line 1: invalid JSON: unexpected end of file"},
		{"plaintext password in second record",
			`[{"username": "bob", "password": "` + hash + `"},` + "\n" + `{"username": "carol", "password": "hunter22"}]`,
			`line 2, record 2 (username "carol"): password: not a bcrypt hash`},
		{"duplicate within file",
			`[{"username": "bob", "password": "` + hash + `"}, {"username": "bob", "password": "` + hash + `"}]`,
			`line 1, record 2 (username "bob"): username "bob": already exists (line 1, record 1)`},
		{"collides with a stored user",
			"{\"username\": \"bob\"}\n{\"username\": \"jatin\"}",
			`line 2 (username "jatin"): username "jatin": already exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustRunUsers(t, "existing password\n", "add", "--data", dir, "--cost", "4", "--username", "jatin")
			file := filepath.Join(t.TempDir(), "users.json")
			if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			out, _, err := runUsersCmd(t, "", "import", "--data", dir, file)
			if err == nil {
				t.Fatalf("got nil error and stdout %q, want error containing %q", out, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "nothing imported") {
				t.Errorf("error: got %q, want it to contain %q and say nothing was imported", err, tt.wantErr)
			}
			users := storedUsers(t, dir)
			if len(users) != 1 || users[0].Username != "jatin" {
				t.Errorf("users after failed import: got %+v, want only jatin", users)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, _, err := runUsersCmd(t, "", "import", "--data", t.TempDir(), filepath.Join(t.TempDir(), "nope.json"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want a not-exist error", err)
		}
	})
}

// importFixture is one of the store's import fixtures: files shaped as people export users.
func importFixture(name string) string {
	return filepath.Join("..", "..", "store", "testdata", "import", name)
}

func TestUsersImportExportShapes(t *testing.T) {
	oldDate := time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)
	tests := []struct {
		file      string
		wantCount string
		want      []store.User // checked by username: ID, e-mail, creation time
	}{
		{"mongoexport.json", "imported 3 users", []store.User{
			{Username: "jatin", ID: "65a1f0c2e4b0a1b2c3d4e5f6", Email: "jatin@example.com", CreatedAt: time.Date(2024, 1, 13, 8, 30, 15, 123e6, time.UTC)},
			{Username: "old", ID: "65a1f0c2e4b0a1b2c3d4e5f8", CreatedAt: oldDate},
		}},
		{"canonical.json", "imported 1 user", []store.User{
			{Username: "jatin", ID: "65a1f0c2e4b0a1b2c3d4e5f6", Email: "jatin@example.com", CreatedAt: time.Date(2024, 1, 13, 8, 30, 15, 123e6, time.UTC)},
		}},
		{"array.json", "imported 2 users", []store.User{
			{Username: "alice@example.com", ID: "65a1f0c2e4b0a1b2c3d4e5f7", Email: "Alice@Example.com", CreatedAt: time.Date(2024, 1, 14, 9, 0, 0, 0, time.UTC)},
		}},
		{"email-only.json", "imported 2 users", []store.User{
			{Username: "alice@example.com", ID: "6600aa00bb11cc22dd33ee01", Email: "Alice@Example.com"},
			{Username: "bob@example.org", ID: "6600aa00bb11cc22dd33ee02", Email: "bob@example.org"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := t.TempDir()
			out := mustRunUsers(t, "", "import", "--data", dir, importFixture(tt.file))
			if !strings.HasPrefix(out, tt.wantCount+" into ") {
				t.Errorf("stdout: got %q, want %q", out, tt.wantCount+" into …")
			}
			for _, w := range tt.want {
				got, ok := findStored(t, dir, w.Username)
				if !ok {
					t.Errorf("user %q not imported", w.Username)
					continue
				}
				if got.ID != w.ID || got.Email != w.Email {
					t.Errorf("imported %q: got id %s email %q, want %s %q", w.Username, got.ID, got.Email, w.ID, w.Email)
				}
				if !w.CreatedAt.IsZero() && !got.CreatedAt.Equal(w.CreatedAt) {
					t.Errorf("imported %q: got createdAt %v, want %v", w.Username, got.CreatedAt, w.CreatedAt)
				}
			}
		})
	}

	t.Run("broken lines: all reported, nothing imported", func(t *testing.T) {
		dir := t.TempDir()
		mustRunUsers(t, "existing password\n", "add", "--data", dir, "--cost", "4", "--username", "zed")
		file := importFixture("broken.json")
		out, _, err := runUsersCmd(t, "", "import", "--data", dir, file)
		if err == nil {
			t.Fatalf("got nil error and stdout %q, want the bad lines", out)
		}
		want := "import " + file + ": nothing imported: 3 bad records:\n" +
			"  line 3: invalid JSON: unexpected end of JSON input (JSON lines hold one whole document per line)\n" +
			"  line 5 (_id \"65a1f0c2e4b0a1b2c3d4e5fa\"): neither username nor email: a record needs one to sign in with\n" +
			"  line 7 (username \"dave\"): _id: \"not-an-object-id\": want 24 hex characters"
		if err.Error() != want {
			t.Errorf("error:\n got  %s\n want %s", err, want)
		}
		if users := storedUsers(t, dir); len(users) != 1 || users[0].Username != "zed" {
			t.Errorf("users after the refused import: got %+v, want only zed", users)
		}
	})
}

func TestUsersList(t *testing.T) {
	dir := t.TempDir()
	mustRunUsers(t, "", "import", "--data", dir, usersTestFile)

	out := mustRunUsers(t, "", "list", "--data", dir)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table: got %d lines, want header and 2 users:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"ID", "USERNAME", "NAME", "EMAIL", "ROLE"},
		{"65a1f0c2e4b0a1b2c3d4e5f7", "alice", "Alice", "alice@example.com", "user"},
		{"65a1f0c2e4b0a1b2c3d4e5f6", "jatin", "Jatin", "jatin@example.com", "admin"},
	} {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("table line %d: got %q, want fields %q", i, lines[i], want)
		}
	}
	if strings.Contains(out, "$2") {
		t.Errorf("table shows a password hash:\n%s", out)
	}

	jsonOut := mustRunUsers(t, "", "list", "--json", "--data", dir)
	if strings.Contains(jsonOut, "$2") || strings.Contains(jsonOut, "password") {
		t.Errorf("--json shows a password:\n%s", jsonOut)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(jsonOut), &listed); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, jsonOut)
	}
	if len(listed) != 2 || listed[0]["username"] != "alice" || listed[1]["_id"] != "65a1f0c2e4b0a1b2c3d4e5f6" {
		t.Errorf("--json: got %v, want alice then jatin (65a1f0c2e4b0a1b2c3d4e5f6)", listed)
	}

	empty := mustRunUsers(t, "", "list", "--json", "--data", t.TempDir())
	if strings.TrimSpace(empty) != "[]" {
		t.Errorf("--json on an empty store: got %q, want []", empty)
	}
}

func TestUsersDelete(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"by id", []string{"--id", "65a1f0c2e4b0a1b2c3d4e5f6"}},
		{"by username", []string{"--username", "jatin"}},
		{"by email other case", []string{"--email", "JATIN@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustRunUsers(t, "", "import", "--data", dir, usersTestFile)
			out := mustRunUsers(t, "", append([]string{"delete", "--data", dir}, tt.args...)...)
			if want := `deleted user "jatin" (id 65a1f0c2e4b0a1b2c3d4e5f6)`; strings.TrimSpace(out) != want {
				t.Errorf("stdout: got %q, want %q", out, want)
			}
			users := storedUsers(t, dir)
			if len(users) != 1 || users[0].Username != "alice" {
				t.Errorf("users after delete: got %+v, want only alice", users)
			}
		})
	}

	refusals := []struct {
		name      string
		args      []string
		wantErr   string
		wantUsage bool
	}{
		{"unknown username", []string{"--username", "x"}, `no user with username "x"`, false},
		{"unknown email", []string{"--email", "x@example.com"}, `no user with email "x@example.com"`, false},
		{"unknown id", []string{"--id", "000000000000000000000000"}, `no user with id "000000000000000000000000"`, false},
		{"two selectors", []string{"--username", "jatin", "--email", "jatin@example.com"}, "exactly one of", true},
		{"no selector", nil, "exactly one of", true},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustRunUsers(t, "", "import", "--data", dir, usersTestFile)
			_, _, err := runUsersCmd(t, "", append([]string{"delete", "--data", dir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.wantErr)
			}
			if got := errors.Is(err, errUsage); got != tt.wantUsage {
				t.Errorf("errors.Is(err, errUsage): got %v, want %v", got, tt.wantUsage)
			}
			if users := storedUsers(t, dir); len(users) != 2 {
				t.Errorf("users after refused delete: got %d, want 2", len(users))
			}
		})
	}
}

func TestUsersHelpAndUsage(t *testing.T) {
	tests := []struct {
		args      []string
		wantUsage string
	}{
		{[]string{"--help"}, "gateway users add --username U"},
		{[]string{"add", "--help"}, "Usage: gateway users add"},
		{[]string{"import", "-h"}, "Usage: gateway users import"},
		{[]string{"list", "--help"}, "Usage: gateway users list"},
		{[]string{"delete", "--help"}, "Usage: gateway users delete"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := runUsersCmd(t, "", tt.args...)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("error: got %v, want flag.ErrHelp", err)
			}
			if !strings.Contains(out, tt.wantUsage) {
				t.Errorf("stdout: got %q, want it to contain %q", out, tt.wantUsage)
			}
		})
	}

	for _, args := range [][]string{nil, {"frobnicate"}} {
		_, errOut, err := runUsersCmd(t, "", args...)
		if !errors.Is(err, errUsage) || !strings.Contains(errOut, "gateway users add") {
			t.Errorf("gateway users %v: got err %v, stderr %q; want errUsage and the usage on stderr", args, err, errOut)
		}
	}
}

func TestUsersDefaultDataDir(t *testing.T) {
	file, err := filepath.Abs(usersTestFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	mustRunUsers(t, "", "import", file)
	if _, err := os.Stat(filepath.Join(defaultDataDir, storeFileName)); err != nil {
		t.Errorf("store in the default data dir ./%s: %v", defaultDataDir, err)
	}
}
