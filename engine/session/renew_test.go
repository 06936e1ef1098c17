package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// TestJWTRenew: the proxy's renewal of a jwt session does nothing before updateAge (600 s
// in strategyScripts) has passed since the token was issued; after it, it runs jwt (as a
// session read: no trigger) and re-encodes for maxAge from now, once: concurrent and later
// renewals of the same session share that one cookie, and the renewed session is due again
// only updateAge after its own issue. A jwt callback that returns null clears the session.
func TestJWTRenew(t *testing.T) {
	var refreshes atomic.Int64
	gen, strategy, clk := loadScripts(t, strategyScripts, "jwt", nil, Options{
		Refresh: func(_ context.Context, _ *script.Generation, tok map[string]any) (Refreshed, error) {
			refreshes.Add(1)
			return Refreshed{Token: tok}, nil
		},
	})
	ctx := context.Background()
	issued, err := strategy.Issue(ctx, gen, SignIn{User: map[string]any{"name": "Jane"}, Account: map[string]any{}, UserID: "u1", HasID: true})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(raw string) *Session {
		t.Helper()
		s, err := strategy.Lookup(ctx, raw)
		if err != nil || s == nil {
			t.Fatalf("Lookup: got %v, %v", s, err)
		}
		return s
	}

	clk.Add(5 * time.Minute)
	old := lookup(issued.Value)
	if rn, err := strategy.Renew(ctx, gen, old); err != nil || rn.Set != nil || rn.Session != old {
		t.Fatalf("before updateAge: got %+v, %v; want the session unchanged and no cookie", rn, err)
	}
	if refreshes.Load() != 0 {
		t.Errorf("before updateAge: the refresh check ran %d times, want 0 (a clock comparison only)", refreshes.Load())
	}

	clk.Add(6 * time.Minute) // 11 minutes after the issue
	const n = 20
	renewals := make([]Renewal, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if renewals[i], err = strategy.Renew(ctx, gen, old); err != nil {
				t.Errorf("renewal %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	first := renewals[0]
	if first.Set == nil || first.Set.Value == issued.Value || !first.Set.Expires.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("past updateAge: got %+v; want a new cookie expiring in maxAge (an hour)", first.Set)
	}
	for i, rn := range renewals {
		if rn.Set == nil || rn.Set.Value != first.Set.Value || rn.Session != first.Session {
			t.Fatalf("renewal %d: got a cookie of its own; want all %d to share the one renewal", i, n)
		}
	}
	if got := refreshes.Load(); got != 1 {
		t.Errorf("renewals of one session: the refresh check ran %d times, want 1", got)
	}
	if tok := first.Session.Token(); tok["seen"] != float64(2) || tok["trigger"] != "read" || tok["exp"] != float64(clk.Now().Add(time.Hour).Unix()) {
		t.Errorf("renewed token %v: want jwt run once more as a session read (seen 2, trigger read) and exp in an hour", tok)
	}
	renewed := lookup(first.Set.Value)
	if rn, err := strategy.Renew(ctx, gen, renewed); err != nil || rn.Set != nil {
		t.Errorf("renewed session right away: got %+v, %v; want nothing due", rn, err)
	}

	// jwt ends sessions named Denied (at sign-in too, so the token is made here).
	raw, err := strategy.(*jwtStrategy).o.Keys.Encode(map[string]any{"sub": "u2", "name": "Denied"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(11 * time.Minute)
	if rn, err := strategy.Renew(ctx, gen, lookup(raw)); err != nil || !rn.Clear || rn.Session != nil {
		t.Errorf("jwt returning null on renewal: got %+v, %v; want the session cleared", rn, err)
	}
}

// TestJWTRenewFailureShared: a renewal that fails is an error for every request that waited
// for it and for those in the next renewRetry, without trying again; then one tries again.
func TestJWTRenewFailureShared(t *testing.T) {
	var calls atomic.Int64
	errDown := errors.New("the refresh lock's store is down")
	gen, strategy, clk := loadScripts(t, strategyScripts, "jwt", nil, Options{
		Refresh: func(context.Context, *script.Generation, map[string]any) (Refreshed, error) {
			calls.Add(1)
			return Refreshed{}, errDown
		},
	})
	ctx := context.Background()
	issued, err := strategy.Issue(ctx, gen, SignIn{User: map[string]any{"name": "Jane"}, Account: map[string]any{}, UserID: "u1", HasID: true})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(11 * time.Minute)
	sess, err := strategy.Lookup(ctx, issued.Value)
	if err != nil || sess == nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := strategy.Renew(ctx, gen, sess); !errors.Is(err, errDown) {
				t.Errorf("renewal with the refresh failing: got %v, want the failure", err)
			}
		})
	}
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("renewals that waited for a failing one: tried %d times, want 1", got)
	}
	clk.Add(renewRetry)
	if _, err := strategy.Renew(ctx, gen, sess); !errors.Is(err, errDown) || calls.Load() != 2 {
		t.Errorf("after renewRetry: got %v after %d tries, want one more try", err, calls.Load())
	}
}

// TestDatabaseRenew: the proxy's renewal of a database session extends the stored expiry
// by GET /session's rule (once updateAge has passed since the last extension), re-sends the
// same id, and leaves it alone before; with absoluteMaxAge the extension stops at the
// absolute end, and past it the session is deleted and cleared.
func TestDatabaseRenew(t *testing.T) {
	ctx := context.Background()
	st, u := storeWithUser(t, store.User{Username: "jane", Name: "Jane"})
	scripts := strings.Replace(strategyScripts, "updateAge: 600", "updateAge: 600, absoluteMaxAge: 5400", 1)
	gen, strategy, clk := loadScripts(t, scripts, "database", st, Options{})
	signedIn := clk.Now()
	issued, err := strategy.Issue(ctx, gen, SignIn{User: u.AdapterUser(), UserID: u.ID, HasID: true})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() time.Time {
		s, _, err := st.GetSessionAndUser(ctx, store.SessionID(issued.Value))
		if err != nil {
			t.Fatalf("read the stored session: %v", err)
		}
		return s.Expires
	}
	for _, tt := range []struct {
		name       string
		advance    time.Duration
		wantSet    bool
		wantStored time.Time
	}{
		{"before updateAge nothing is written", 5 * time.Minute, false, signedIn.Add(time.Hour)},
		{"after updateAge the store is extended", 6 * time.Minute, true, signedIn.Add(71 * time.Minute)},
		{"near the absolute end the extension stops there", 50 * time.Minute, true, signedIn.Add(90 * time.Minute)},
	} {
		clk.Add(tt.advance)
		sess, err := strategy.Lookup(ctx, issued.Value)
		if err != nil || sess == nil {
			t.Fatalf("%s: Lookup got %v, %v", tt.name, sess, err)
		}
		rn, err := strategy.Renew(ctx, gen, sess)
		if err != nil || (rn.Set != nil) != tt.wantSet || rn.Session == nil {
			t.Fatalf("%s: Renew got %+v, %v; want a cookie: %v", tt.name, rn, err, tt.wantSet)
		}
		if tt.wantSet && (rn.Set.Value != issued.Value || !rn.Set.Expires.Equal(tt.wantStored) || !rn.Session.Expires().Equal(tt.wantStored)) {
			t.Errorf("%s: cookie %+v, session expiring %v; want the same id expiring %v", tt.name, rn.Set, rn.Session.Expires(), tt.wantStored)
		}
		if got := stored(); !got.Equal(tt.wantStored) {
			t.Errorf("%s: stored expiry %v, want %v", tt.name, got, tt.wantStored)
		}
	}
	clk.Add(30 * time.Minute) // +91 minutes: past the absolute end
	if sess, err := strategy.Lookup(ctx, issued.Value); err != nil || sess != nil {
		t.Errorf("past the absolute end: Lookup got %v, %v; want no session", sess, err)
	}
}

// TestJWTRenewChecksRevocationsAgain: a sign-out everywhere (or a provider's logout by
// subject) that lands while a renewal's refresh runs cuts off by issue time; the renewed
// token would have a new iat and escape it, so the renewal checks the old token again
// before issuing one and ends the session instead.
func TestJWTRenewChecksRevocationsAgain(t *testing.T) {
	var revokedNow atomic.Bool
	gen, strategy, clk := loadScripts(t, strategyScripts, "jwt", nil, Options{
		Revoked: func(context.Context, map[string]any) (bool, error) { return revokedNow.Load(), nil },
		Refresh: func(_ context.Context, _ *script.Generation, tok map[string]any) (Refreshed, error) {
			revokedNow.Store(true) // the revocation arrives while the refresh runs
			return Refreshed{Token: tok}, nil
		},
	})
	ctx := context.Background()
	issued, err := strategy.Issue(ctx, gen, SignIn{User: map[string]any{"name": "Jane"}, Account: map[string]any{}, UserID: "u1", HasID: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := strategy.Lookup(ctx, issued.Value)
	if err != nil || s == nil {
		t.Fatalf("Lookup: %v, %v", s, err)
	}
	clk.Add(11 * time.Minute) // past updateAge
	rn, err := strategy.Renew(ctx, gen, s)
	if err != nil || rn.Set != nil || !rn.Clear {
		t.Errorf("a renewal during which the session was revoked: got %+v, %v; want the cookie cleared and none issued", rn, err)
	}
}
