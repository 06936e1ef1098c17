package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
	"github.com/callgate/callgate/store/storetest"
)

const testHash = "$2a$10$7tboHp0AlRTDIADGPuZxDe.DaSy8Hk4bFM.AOeQ9yBbF.29OlZFe."

func openTemp(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.TestAll(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestOpenCreatesPrivateFileAndDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "callgate.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	for _, tt := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatalf("stat %s: %v", tt.path, err)
		}
		if got := fi.Mode().Perm(); got != tt.want {
			t.Errorf("mode of %s: got %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callgate.db")
	ctx := context.Background()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	created, err := s.CreateUser(ctx, store.User{
		Username: "jatin", Email: "jatin@example.com", PasswordHash: testHash,
		Extra: map[string]any{"plan": "pro"},
	})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = bolt.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.FindUser(ctx, store.UserQuery{Email: "JATIN@example.com"})
	if err != nil {
		t.Fatalf("FindUser after reopen: %v", err)
	}
	if got.ID != created.ID || got.PasswordHash != testHash || got.Extra["plan"] != "pro" || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("after reopen: got %+v, want %+v", got, created)
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callgate.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	// flock locks belong to the open file, so a second Open in this process contends
	// exactly as a second gateway process would.
	start := time.Now()
	second, err := bolt.Open(path, bolt.WithOpenTimeout(200*time.Millisecond))
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file: got nil error, want ErrLocked")
	}
	if !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("second Open: got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "database is locked by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open error: got %q, want it to name the path and say it is locked", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("second Open waited %v, want about 200ms", waited)
	}
}

func TestClosedStoreIsNotNotFound(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	if _, err := s.FindUser(ctx, store.UserQuery{Username: "jatin"}); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindUser on closed store: got %v, want a backend error that is not ErrNotFound", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping on closed store: got nil, want an error")
	}
}
