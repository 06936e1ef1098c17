package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
)

// TestRevocationsExpireOnTheClock: a revocation applies until it expires on the guard's
// clock, which the test moves instead of waiting.
func TestRevocationsExpireOnTheClock(t *testing.T) {
	st := boltStore(t)
	clk := newClock()
	g := New(st, Options{}, nil, clk.Now)
	var changes atomic.Int32
	g.Revocations.OnChange(func() { changes.Add(1) })
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	now := time.Now()
	issued := now.Add(-time.Minute)
	if err := st.Revoke(ctx, store.Revocation{UserID: "u1", Before: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Revoke(ctx, store.Revocation{TokenID: "t1", Expires: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if changes.Load() < 3 { // the load at start, two announcements
		t.Errorf("OnChange ran %d times, want at least 3", changes.Load())
	}
	tests := []struct {
		name     string
		advance  time.Duration
		sub, jti string
		iat      time.Time
		want     bool
	}{
		{"user's token issued before", 0, "u1", "", issued, true},
		{"user's token issued after", 0, "u1", "", now.Add(time.Minute), false},
		{"another user", 0, "u2", "", issued, false},
		{"revoked token of another user", 0, "u2", "t1", issued, true},
		{"user's revocation expired", time.Hour + time.Second, "u1", "", issued, false},
		{"token's revocation still on", 0, "u2", "t1", issued, true},
		{"token's revocation expired", time.Hour, "u2", "t1", issued, false},
	}
	for _, tt := range tests {
		clk.Add(tt.advance)
		got, err := g.Revocations.Check(ctx, tt.sub, tt.jti, tt.iat)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if !g.Revocations.Fresh() {
		t.Error("the list is not fresh")
	}
}

// TestRevocationsStale: while the list cannot be loaded, the policy decides and the outage
// is logged once; a reload after a missed announcement makes it fresh again.
func TestRevocationsStale(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail closed", true: "fail open"}[failOpen], func(t *testing.T) {
			fs := &failingStore{Store: boltStore(t), down: true}
			log, logs := testLogger()
			g := New(fs, Options{RevocationFailOpen: failOpen}, log, nil)
			g.Revocations.retry = time.Millisecond
			if err := g.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			ctx := context.Background()
			for range 3 {
				revoked, err := g.Revocations.Check(ctx, "u1", "t1", time.Now())
				if revoked || (err == nil) == !failOpen || (err != nil && !errors.Is(err, ErrStoreUnavailable)) {
					t.Fatalf("stale check: got %v, %v", revoked, err)
				}
			}
			if n := strings.Count(logs.String(), "revocations unknown"); n != 1 {
				t.Errorf("the outage was logged %d times, want once:\n%s", n, logs)
			}
			if g.Revocations.Fresh() {
				t.Error("fresh while the store is down")
			}
			// The store comes back and says announcements may have been missed.
			fs.setDown(false)
			g.Revocations.announced(store.Revocation{})
			// The list turns fresh just before the recovery is logged: await both.
			testkit.WaitFor(t, "the list reloaded after a missed announcement, and the recovery logged", 5*time.Second, func() error {
				if !g.Revocations.Fresh() {
					return errors.New("not fresh")
				}
				if !strings.Contains(logs.String(), "the store is back") {
					return errors.New("the recovery is not logged yet")
				}
				return nil
			})
			if revoked, err := g.Revocations.Check(ctx, "u1", "t1", time.Now()); revoked || err != nil {
				t.Errorf("fresh check: got %v, %v", revoked, err)
			}
		})
	}
}

// TestRevocationsStartAndClose: Close waits for the loop and may run twice, or without
// Start; Start runs once; a guard without a store revokes nothing.
func TestRevocationsStartAndClose(t *testing.T) {
	st := &countingStore{Store: boltStore(t)}
	g := New(st, Options{RevocationResync: time.Millisecond}, nil, nil)
	g.Close()
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(t.Context()); err == nil {
		t.Error("a second Start did not fail")
	}
	testkit.WaitFor(t, "the loop resyncs", 5*time.Second, func() error {
		if n := st.lists.Load(); n < 3 {
			return fmt.Errorf("%d lists", n)
		}
		return nil
	})
	g.Close()
	// Close returned after the loop did: no reload may start after it.
	after := st.lists.Load()
	time.Sleep(20 * time.Millisecond)
	if n := st.lists.Load(); n != after {
		t.Errorf("%d reloads after Close", n-after)
	}
	g.Close()

	none := New(nil, Options{}, nil, nil)
	if err := none.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if revoked, err := none.Revocations.Check(context.Background(), "u1", "t1", time.Now()); revoked || err != nil {
		t.Errorf("no store: got %v, %v; want not revoked", revoked, err)
	}
	none.Close()
}

// countingStore counts full loads of the revocation list.
type countingStore struct {
	store.Store
	lists atomic.Int32
}

func (s *countingStore) ListRevocations(ctx context.Context) ([]store.Revocation, error) {
	s.lists.Add(1)
	return s.Store.ListRevocations(ctx)
}
