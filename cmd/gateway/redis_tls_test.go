package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
)

// TestStoreCommandsRedisTLS runs `gateway users` and `gateway sessions` against a TLS-only
// redis-server whose certificate comes from a CA the test generates: the commands reach it
// only when told to trust that CA, by --redis-ca or CALLGATE_REDIS_CA.
func TestStoreCommandsRedisTLS(t *testing.T) {
	testkit.RequireRedisTools(t, "redis-server")
	dir := t.TempDir()
	ca := testkit.NewCA(t, dir, "redis")
	other := testkit.NewCA(t, dir, "other")
	port := testkit.FreePort(t, false)
	testkit.StartRedisServer(t, dir, port, ca.RedisTLSArgs(port)...)
	storeURL := "rediss://127.0.0.1:" + strconv.Itoa(port)
	prefix := testkit.UniquePrefix("callgate-cli-tls")
	storeArgs := []string{"--store", storeURL, "--key-prefix", prefix}
	trusted := append([]string{"--redis-ca", ca.CAFile}, storeArgs...)

	id := strings.TrimSpace(mustRunUsers(t, "correct horse\n",
		append([]string{"add", "--username", "jatin", "--email", "jatin@example.com", "--cost", "4"}, trusted...)...))
	if !store.IsUserID(id) {
		t.Fatalf("users add printed %q, want a user id", id)
	}
	// listOverTLS lists the users as "username/id", over TLS with the right CA: what the
	// store really holds.
	listOverTLS := func(t *testing.T) []string {
		t.Helper()
		var listed []listedUser
		out := mustRunUsers(t, "", append([]string{"list", "--json"}, trusted...)...)
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("users list --json: %v\n%s", err, out)
		}
		var names []string
		for _, u := range listed {
			names = append(names, u.Username+"/"+u.ID)
		}
		return names
	}
	if got, want := strings.Join(listOverTLS(t), " "), "jatin/"+id; got != want {
		t.Fatalf("users list after add: got %q, want %q", got, want)
	}

	t.Run("sessions with --redis-ca", func(t *testing.T) {
		out := runCLI(t, append([]string{"sessions", "list", "--user", "jatin"}, trusted...)...)
		if !strings.Contains(out, "0 database sessions for jatin") {
			t.Errorf("sessions list: got %q, want no sessions for jatin", out)
		}
	})

	t.Run("CA and store from the environment", func(t *testing.T) {
		env := map[string]string{"CALLGATE_STORE": storeURL, "CALLGATE_REDIS_CA": ca.CAFile}
		for _, args := range [][]string{
			{"users", "list", "--key-prefix", prefix},
			{"sessions", "list", "--user", "jatin", "--key-prefix", prefix},
		} {
			var out, errOut bytes.Buffer
			c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }}
			if err := c.run(t.Context(), args); err != nil {
				t.Errorf("gateway %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
			} else if !strings.Contains(out.String(), "jatin") {
				t.Errorf("gateway %s: got %q, want jatin", strings.Join(args, " "), out.String())
			}
		}
	})

	// Without the private CA (system roots only) or with another CA, every command fails
	// on the certificate, and an add writes nothing.
	t.Run("untrusted certificate", func(t *testing.T) {
		for _, trust := range []struct {
			name string
			args []string
		}{
			{"no --redis-ca", storeArgs},
			{"another CA", append([]string{"--redis-ca", other.CAFile}, storeArgs...)},
		} {
			for _, cmd := range []struct {
				args  []string
				stdin string
			}{
				{[]string{"users", "add", "--username", "bob", "--cost", "4"}, "correct horse\n"},
				{[]string{"users", "list"}, ""},
				{[]string{"sessions", "list", "--user", "jatin"}, ""},
			} {
				args := append(append([]string{}, cmd.args...), trust.args...)
				t.Run(trust.name+"/"+strings.Join(cmd.args[:2], " "), func(t *testing.T) {
					var out, errOut bytes.Buffer
					c := &cli{stdin: strings.NewReader(cmd.stdin), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
					err := c.run(t.Context(), args)
					if err == nil || errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
						t.Fatalf("gateway %s: got err %v and stdout %q, want a certificate error (non-zero exit)", strings.Join(args, " "), err, out.String())
					}
					if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
						t.Errorf("gateway %s: got %q, want it to mention the certificate's unknown authority", strings.Join(args, " "), err)
					}
				})
			}
		}
		if got, want := strings.Join(listOverTLS(t), " "), "jatin/"+id; got != want {
			t.Errorf("users after the refused commands: got %q, want %q", got, want)
		}
	})

	t.Run("bad --redis-ca", func(t *testing.T) {
		caDir := t.TempDir()
		missing := filepath.Join(caDir, "missing-ca.pem")
		notPEM := filepath.Join(caDir, "not-a-ca.pem")
		if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		dataDir := t.TempDir()
		tests := []struct {
			name    string
			args    []string
			file    string // the file the message must name, once
			wantErr string
		}{
			{"unreadable file", append([]string{"--redis-ca", missing}, storeArgs...), missing, "read Redis TLS CA file: open " + missing + ": no such file or directory"},
			{"no certificate in it", append([]string{"--redis-ca", notPEM}, storeArgs...), notPEM, "read Redis TLS CA file " + notPEM + ": no PEM certificate in it"},
			{"embedded store", []string{"--redis-ca", ca.CAFile, "--data", dataDir}, ca.CAFile, "needs a TLS store"},
			{"redis:// without TLS", []string{"--redis-ca", ca.CAFile, "--store", "redis://127.0.0.1:6379", "--key-prefix", prefix}, ca.CAFile, "not redis://"},
		}
		for _, tt := range tests {
			for _, cmd := range [][]string{{"users", "list"}, {"sessions", "list", "--user", "jatin"}} {
				t.Run(tt.name+"/"+strings.Join(cmd[:2], " "), func(t *testing.T) {
					args := append(append([]string{}, cmd...), tt.args...)
					var out, errOut bytes.Buffer
					c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
					err := c.run(t.Context(), args)
					if err == nil || errors.Is(err, errUsage) {
						t.Fatalf("gateway %s: got err %v and stdout %q, want an error about the CA file", strings.Join(args, " "), err, out.String())
					}
					if !strings.Contains(err.Error(), tt.wantErr) || strings.Count(err.Error(), tt.file) != 1 {
						t.Errorf("gateway %s: got %q, want it to contain %q and name %s once", strings.Join(args, " "), err, tt.wantErr, tt.file)
					}
				})
			}
		}
		// The refused command with the embedded store must not have created one.
		if _, err := os.Stat(filepath.Join(dataDir, storeFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("store file after --redis-ca with the embedded store: got %v, want none", err)
		}
	})
}
