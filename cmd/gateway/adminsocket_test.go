package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
)

// TestCLIThroughRunningGateway: with a gateway running on the embedded store (which holds
// the file's lock), `gateway users` and `gateway sessions` work through its admin socket:
// a revocation ends the user's session at once, without a restart.
func TestCLIThroughRunningGateway(t *testing.T) {
	gw := startGateway(t, gatewayOptions{})
	socket := filepath.Join(gw.DataDir, adminSocketName)
	info, err := os.Stat(socket)
	if err != nil || info.Mode()&os.ModeSocket == 0 || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %s: %v, mode %v; want a socket with mode 0600", socket, err, info.Mode())
	}

	client := newBrowserClient(t)
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign in: got %d %s", res.Status, res.Body)
	}
	if _, body := getSession(t, client, gw); sessionUserName(body) != "Jatin" {
		t.Fatalf("session before the revocation: got %v", body)
	}

	if out := runCLI(t, "users", "list", "--data", gw.DataDir); !strings.Contains(out, "jatin") || !strings.Contains(out, "alice") {
		t.Errorf("users list through the running gateway: got\n%s", out)
	}
	start := time.Now()
	if out := runCLI(t, "sessions", "revoke", "--user", "jatin", "--data", gw.DataDir); !strings.Contains(out, "signed jatin out everywhere") {
		t.Fatalf("sessions revoke through the running gateway: got\n%s", out)
	}
	testkit.WaitFor(t, "the revoked session reads as signed out", 10*time.Second, func() error {
		if _, body := getSession(t, client, gw); len(body) != 0 {
			return fmt.Errorf("got %v", body)
		}
		return nil
	})
	t.Logf("the session ended %v after sessions revoke began", time.Since(start))

	// The store's errors keep their meaning across the socket.
	s, ok := dialAdminSocket(gw.DataDir)
	if !ok {
		t.Fatal("no gateway answers on the admin socket")
	}
	defer s.Close()
	if _, err := s.FindUser(t.Context(), store.UserQuery{Username: "nobody"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindUser of an unknown user through the socket: got %v, want ErrNotFound", err)
	}
	if _, err := s.CreateUser(t.Context(), store.User{Username: "jatin", Name: "Again"}); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("CreateUser of a taken username through the socket: got %v, want ErrDuplicate", err)
	}
	// set-password, set-role and update keep the id, and the running gateway signs in with
	// the new password at once.
	before, err := s.FindUser(t.Context(), store.UserQuery{Username: "jatin"})
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	c := &cli{stdin: strings.NewReader("a-new-password-42\n"), stdout: out, stderr: out, getenv: func(string) string { return "" }}
	if err := c.run(t.Context(), []string{"users", "set-password", "--username", "jatin", "--cost", "4", "--data", gw.DataDir}); err != nil {
		t.Fatalf("users set-password: %v\n%s", err, out)
	}
	runCLI(t, "users", "set-role", "--email", "jatin@example.com", "--role", "auditor", "--data", gw.DataDir)
	runCLI(t, "users", "update", "--id", before.ID, "--field", "name=Jatin K", "--field", "team=blue", "--data", gw.DataDir)
	after, err := s.FindUser(t.Context(), store.UserQuery{Username: "jatin"})
	if err != nil || after.ID != before.ID || after.Role != "auditor" || after.Name != "Jatin K" || after.Extra["team"] != "blue" || after.PasswordHash == before.PasswordHash {
		t.Fatalf("jatin after set-password, set-role and update: %+v %v; want the same id %s, role auditor, name Jatin K, team blue and a new hash", after, err, before.ID)
	}
	fresh := newBrowserClient(t)
	if res := signInWithCredentials(t, fresh, gw, "jatin", "secret"); res.Status == http.StatusOK {
		t.Error("the old password still signs in")
	}
	if res := signInWithCredentials(t, fresh, gw, "jatin", "a-new-password-42"); res.Status != http.StatusOK {
		t.Errorf("the new password: got %d %s, want a sign-in", res.Status, res.Body)
	}
	if err := runCLIErr(t, "users", "update", "--username", "jatin", "--field", "email=alice@example.com", "--data", gw.DataDir); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("update to a taken e-mail through the socket: got %v, want it refused as taken", err)
	}

	if out := runCLI(t, "users", "delete", "--username", "alice", "--data", gw.DataDir); !strings.Contains(out, "alice") {
		t.Errorf("users delete through the running gateway: got\n%s", out)
	}
	if _, err := s.FindUser(t.Context(), store.UserQuery{Username: "alice"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice after users delete: got %v, want ErrNotFound", err)
	}
}

// TestAdminSocketStale: a socket file nobody answers on (a gateway that was killed) is
// replaced; one another gateway answers on is not taken over.
func TestAdminSocketStale(t *testing.T) {
	dir := t.TempDir()
	ln, err := listenAdminSocket(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listenAdminSocket(dir); err == nil || !strings.Contains(err.Error(), "another gateway") {
		t.Errorf("a second listener on a live socket: got %v, want refused", err)
	}
	// A killed gateway leaves its socket file behind.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(filepath.Join(dir, adminSocketName)); err != nil {
		t.Fatalf("the stale socket file is gone already: %v", err)
	}
	ln, err = listenAdminSocket(dir)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln.Close()
	if _, ok := dialAdminSocket(dir); ok {
		t.Error("a closed socket still answers")
	}
}

// runCLIErr runs a gateway command that may fail, and returns its error.
func runCLIErr(t *testing.T, args ...string) error {
	t.Helper()
	out := &syncBuffer{}
	c := &cli{stdin: strings.NewReader(""), stdout: out, stderr: out, getenv: func(string) string { return "" }}
	return c.run(t.Context(), args)
}

// TestUsersUpdateWithoutGateway: with no gateway running, the update commands open the
// embedded store themselves.
func TestUsersUpdateWithoutGateway(t *testing.T) {
	data := t.TempDir()
	runCLI(t, "users", "import", "--data", data, repoPath("testdata", "users.json"))
	runCLI(t, "users", "set-role", "--username", "alice", "--role", "admin", "--data", data)
	var listed []struct{ Username, Role string }
	out := runCLI(t, "users", "list", "--json", "--data", data)
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("users list --json: %v\n%s", err, out)
	}
	for _, u := range listed {
		if u.Username == "alice" && u.Role != "admin" {
			t.Errorf("alice after set-role: role %q, want admin", u.Role)
		}
	}
	for _, args := range [][]string{
		{"users", "update", "--username", "alice", "--field", "password=x"},
		{"users", "update", "--username", "alice"},
		{"users", "set-role", "--username", "alice"},
		{"users", "update", "--username", "alice", "--email", "alice@example.com", "--field", "name=A"},
	} {
		if err := runCLIErr(t, append(args, "--data", data)...); err == nil {
			t.Errorf("gateway %s: got no error, want a usage error", strings.Join(args, " "))
		}
	}
}

// TestPeerUID: the admin socket learns who connected from the kernel.
func TestPeerUID(t *testing.T) {
	ln, err := listenAdminSocket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer server.Close()
	uid, err := peerUID(server)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("peer credentials are Linux-only")
	}
	if err != nil || uid != os.Getuid() {
		t.Errorf("peerUID: got %d, %v; want this process's uid %d", uid, err, os.Getuid())
	}
}
