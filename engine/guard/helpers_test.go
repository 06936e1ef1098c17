package guard

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"

	"github.com/callgate/callgate/internal/testkit"
)

func testLogger() (*slog.Logger, *testkit.SyncBuffer) {
	b := &testkit.SyncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func boltStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "callgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// failingStore is a store whose revocation list and counters cannot be reached while down.
type failingStore struct {
	store.Store
	mu   sync.Mutex
	down bool
}

func (s *failingStore) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *failingStore) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *failingStore) ListRevocations(ctx context.Context) ([]store.Revocation, error) {
	if s.isDown() {
		return nil, fmt.Errorf("list revocations: %w", store.ErrUnavailable)
	}
	return s.Store.ListRevocations(ctx)
}

func (s *failingStore) Increment(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	if s.isDown() {
		return 0, time.Time{}, fmt.Errorf("increment: %w", store.ErrUnavailable)
	}
	return s.Store.Increment(ctx, key, window)
}

// newClock is a test clock at the real time, moved by hand.
func newClock() *testkit.Clock { return testkit.NewClock(time.Now()) }
