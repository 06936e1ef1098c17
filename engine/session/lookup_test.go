package session

import (
	"context"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/store"

	"github.com/callgate/callgate/internal/testkit"
)

// TestJWTLookupCache: the proxy's read decodes a cookie once and reuses the Session until
// cacheTTL has passed on the strategy's clock, then decodes again; the revocation hook runs
// on every read, cached or not; Clear drops the cache at once.
func TestJWTLookupCache(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	keys, err := token.NewKeyRing([]string{"session-lookup-test-secret-0123456789abcdef"}, "", token.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	revoked, checks := false, 0
	s := New(Options{Keys: keys, Now: clk.Now, Revoked: func(context.Context, map[string]any) (bool, error) {
		checks++
		return revoked, nil
	}})
	strategy := s.For(script.Config{})
	raw, err := keys.Encode(map[string]any{"sub": "u1", "name": "Jane"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := strategy.Lookup(ctx, raw)
	if err != nil || first == nil || first.Token()["sub"] != "u1" {
		t.Fatalf("Lookup: got %v, %v, want u1's session", first, err)
	}
	clk.Add(cacheTTL - time.Second)
	if again, _ := strategy.Lookup(ctx, raw); again != first {
		t.Errorf("within cacheTTL: got another Session, want the cached one")
	}
	clk.Add(time.Second)
	later, _ := strategy.Lookup(ctx, raw)
	if later == nil || later == first {
		t.Errorf("after cacheTTL: got %p (first %p), want a freshly decoded Session", later, first)
	}
	if checks != 3 {
		t.Errorf("revocation checks: got %d, want one per read (3)", checks)
	}
	revoked = true
	if got, _ := strategy.Lookup(ctx, raw); got != nil {
		t.Errorf("revoked, cached: got a session, want none")
	}
	revoked = false
	s.Clear()
	if got, _ := strategy.Lookup(ctx, raw); got == nil || got == later {
		t.Errorf("after Clear: got %p, want a freshly decoded Session", got)
	}
	if got, _ := strategy.Lookup(ctx, "not-a-token"); got != nil {
		t.Errorf("a bad cookie: got a session, want none")
	}
}

// TestDatabaseLookupCache: a database session read is reused for dbCacheTTL on the
// strategy's clock, so a session deleted in the store is still seen until then and not
// after; an expired session is no session; Clear forgets reads at once.
func TestDatabaseLookupCache(t *testing.T) {
	ctx := context.Background()
	st, u := storeWithUser(t, store.User{Username: "jane", Name: "Jane", Email: "jane@example.com", Role: "admin"})
	clk := testkit.NewClock(time.Now())
	s := New(Options{Store: st, Now: clk.Now})
	strategy := s.For(script.Config{Session: script.SessionOptions{Strategy: "database"}})
	raw := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	expires := clk.Now().Add(time.Hour)
	if err := st.CreateSession(ctx, store.Session{ID: store.SessionID(raw), UserID: u.ID, Expires: expires, CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	sess, err := strategy.Lookup(ctx, raw)
	if err != nil || sess == nil {
		t.Fatalf("Lookup: got %v, %v, want Jane's session", sess, err)
	}
	if tok := sess.Token(); tok["sub"] != u.ID || tok["name"] != "Jane" || tok["role"] != "admin" || !sess.Expires().Equal(expires) {
		t.Errorf("Lookup: got claims %v expiring %v, want Jane's (admin) expiring %v", tok, sess.Expires(), expires)
	}
	if _, err := st.DeleteSession(ctx, store.SessionID(raw)); err != nil {
		t.Fatal(err)
	}
	clk.Add(dbCacheTTL / 2)
	if got, _ := strategy.Lookup(ctx, raw); got == nil {
		t.Errorf("within dbCacheTTL of the read: got no session, want the cached read")
	}
	clk.Add(dbCacheTTL / 2)
	if got, err := strategy.Lookup(ctx, raw); got != nil || err != nil {
		t.Errorf("after dbCacheTTL: got %v, %v, want no session (deleted in the store)", got, err)
	}

	raw2 := "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	if err := st.CreateSession(ctx, store.Session{ID: store.SessionID(raw2), UserID: u.ID, Expires: clk.Now().Add(dbCacheTTL / 2), CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := strategy.Lookup(ctx, raw2); got == nil {
		t.Fatalf("Lookup of the short session: got none")
	}
	clk.Add(dbCacheTTL / 2)
	if got, _ := strategy.Lookup(ctx, raw2); got != nil {
		t.Errorf("past its expiry, still cached: got a session, want none")
	}
	s.Clear()
	if n := len(s.db.cache.entries); n != 0 {
		t.Errorf("after Clear: %d cached reads, want 0", n)
	}
	if _, err := New(Options{Now: clk.Now}).For(script.Config{Session: script.SessionOptions{Strategy: "database"}}).Lookup(ctx, raw); err != ErrNoStore {
		t.Errorf("without a store: got %v, want ErrNoStore", err)
	}
}
