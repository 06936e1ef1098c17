package guard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
)

// TestLogoutsReserveOnce: a logout token's jti is taken once per provider; a reservation
// given back (the logout failed) lets the provider's retry through; a store that cannot be
// reached is an error of its own, never a replay nor an acceptance.
func TestLogoutsReserveOnce(t *testing.T) {
	st := &failingStore{Store: boltStore(t)}
	g := New(st, Options{}, nil, nil)
	ctx := context.Background()
	giveBack, err := g.Logouts.Reserve(ctx, "idp", "jti-1", time.Minute)
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := g.Logouts.Reserve(ctx, "idp", "jti-1", time.Minute); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use: got %v, want ErrReplayed", err)
	}
	if _, err := g.Logouts.Reserve(ctx, "other-idp", "jti-1", time.Minute); err != nil {
		t.Fatalf("the same jti from another provider: got %v, want it accepted", err)
	}
	giveBack(ctx)
	if _, err := g.Logouts.Reserve(ctx, "idp", "jti-1", time.Minute); err != nil {
		t.Fatalf("use after the reservation was given back: got %v, want it accepted", err)
	}
	st.setDown(true)
	if _, err := g.Logouts.Reserve(ctx, "idp", "jti-2", time.Minute); err == nil || errors.Is(err, ErrReplayed) {
		t.Fatalf("store down: got %v, want a store error", err)
	}
	var none *Logouts
	if _, err := none.Reserve(ctx, "idp", "jti-3", time.Minute); !errors.Is(err, ErrNoStore) {
		t.Fatalf("no store: got %v, want ErrNoStore", err)
	}
}

// TestProviderSessionRevocations: a provider session revocation covers every token of that
// sid and no other; a subject revocation covers that provider's subject up to its second,
// not the same subject at another provider nor a later token. Both reach the in-memory list
// through the store's announcements.
func TestProviderSessionRevocations(t *testing.T) {
	st := boltStore(t)
	g := New(st, Options{}, nil, nil)
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if err := g.Logouts.RevokeProviderSession(ctx, "idp", "sid-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := g.Logouts.RevokeProviderSubject(ctx, "idp", "user-9", time.Time{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A logout token issued ten minutes ago, handled now (a retry): a sign-in of five
	// minutes ago is not its session.
	now := time.Now()
	if err := g.Logouts.RevokeProviderSubject(ctx, "idp", "user-7", now.Add(-10*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		provider, sub, sid string
		iat                time.Time
		want               bool
	}{
		{"the revoked sid", "idp", "user-1", "sid-1", now.Add(-time.Hour), true},
		{"the revoked sid, issued later", "idp", "user-1", "sid-1", now.Add(time.Hour), true},
		{"another sid", "idp", "user-1", "sid-2", now.Add(-time.Hour), false},
		{"the sid at another provider", "other", "user-1", "sid-1", now.Add(-time.Hour), false},
		{"the revoked subject, issued before", "idp", "user-9", "sid-9", now.Add(-time.Minute), true},
		{"the revoked subject, issued after", "idp", "user-9", "sid-9", now.Add(2 * time.Second), false},
		{"a retried logout: a session from before its token", "idp", "user-7", "sid-7", now.Add(-time.Hour), true},
		{"a retried logout: a session started since its token", "idp", "user-7", "sid-7", now.Add(-5 * time.Minute), false},
		{"the subject at another provider", "other", "user-9", "", now.Add(-time.Minute), false},
	}
	// The announcements are applied as they come: await the first, then every answer holds.
	testkit.WaitFor(t, "the sid revocation reaches the list", time.Second, func() error {
		if got, err := g.Revocations.CheckProviderSession(ctx, "idp", "", "sid-1", now); err != nil || !got {
			return errors.New("not yet")
		}
		return nil
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := g.Revocations.CheckProviderSession(ctx, tt.provider, tt.sub, tt.sid, tt.iat)
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func (s *failingStore) AcquireLock(ctx context.Context, name string, ttl time.Duration) (string, bool, error) {
	if s.isDown() {
		return "", false, fmt.Errorf("acquire lock: %w", store.ErrUnavailable)
	}
	return s.Store.AcquireLock(ctx, name, ttl)
}
