package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// TestAll runs every conformance suite.
func TestAll(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Users", func(t *testing.T) { TestUsers(t, open) })
	t.Run("Sessions", func(t *testing.T) { TestSessions(t, open) })
	t.Run("Accounts", func(t *testing.T) { TestAccounts(t, open) })
	t.Run("VerificationTokens", func(t *testing.T) { TestVerificationTokens(t, open) })
	t.Run("Revocations", func(t *testing.T) { TestRevocations(t, open) })
	t.Run("RateLimits", func(t *testing.T) { TestRateLimits(t, open) })
	t.Run("Locks", func(t *testing.T) { TestLocks(t, open) })
	t.Run("Factors", func(t *testing.T) { TestFactors(t, open) })
}

func newSession(userID, token string, expires time.Time) store.Session {
	return store.Session{ID: store.SessionID(token), UserID: userID, Expires: expires.Round(time.Millisecond), CreatedAt: time.Now().Round(time.Millisecond)}
}

// TestSessions is the server-side session conformance suite.
func TestSessions(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("CreateGetExtendDelete", func(t *testing.T) {
		s := open(t)
		u := mustCreate(t, s, user("jatin", "jatin@example.com"))
		in := newSession(u.ID, "token-1", time.Now().Add(time.Hour))
		if err := s.CreateSession(ctx, in); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		got, gotUser, err := s.GetSessionAndUser(ctx, in.ID)
		if err != nil {
			t.Fatalf("GetSessionAndUser: %v", err)
		}
		if got.ID != in.ID || got.UserID != u.ID || !got.Expires.Equal(in.Expires) || !got.CreatedAt.Equal(in.CreatedAt) {
			t.Errorf("GetSessionAndUser session: got %+v, want %+v", got, in)
		}
		sameUser(t, "GetSessionAndUser user", gotUser, u)

		later := time.Now().Add(2 * time.Hour).Round(time.Millisecond)
		if err := s.ExtendSession(ctx, in.ID, later); err != nil {
			t.Fatalf("ExtendSession: %v", err)
		}
		got, _, err = s.GetSessionAndUser(ctx, in.ID)
		if err != nil || !got.Expires.Equal(later) {
			t.Errorf("after ExtendSession: got expires %v (err %v), want %v", got.Expires, err, later)
		}
		deleted, err := s.DeleteSession(ctx, in.ID)
		if err != nil || deleted.UserID != u.ID {
			t.Errorf("DeleteSession: got %+v, %v; want the session of %s", deleted, err, u.ID)
		}
		if _, _, err := s.GetSessionAndUser(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSessionAndUser after delete: got %v, want ErrNotFound", err)
		}
		if _, err := s.DeleteSession(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteSession twice: got %v, want ErrNotFound", err)
		}
		if err := s.ExtendSession(ctx, in.ID, later); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ExtendSession of a deleted session: got %v, want ErrNotFound", err)
		}
		if list, err := s.ListSessions(ctx, u.ID); err != nil || len(list) != 0 {
			t.Errorf("ListSessions after delete: got %v, %v; want none", list, err)
		}
	})
	t.Run("ProviderSessionAndAuthenticationKept", func(t *testing.T) {
		// The provider session a sign-in came from survives every write of the record:
		// create, extend (a rewrite of the document), and comes back from every read.
		s := open(t)
		u := mustCreate(t, s, user("jatin", "jatin@example.com"))
		in := newSession(u.ID, "token-provider", time.Now().Add(time.Hour))
		in.Provider, in.ProviderSubject, in.ProviderSessionID = "hydra", "user-42", "sid-7f3a"
		// And how the user authenticated (a step-up's amr and auth_time).
		in.AMR, in.AuthTime = []string{"pwd", "otp", "mfa"}, time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		plain := newSession(u.ID, "token-plain", time.Now().Add(time.Hour))
		for _, sess := range []store.Session{in, plain} {
			if err := s.CreateSession(ctx, sess); err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
		}
		same := func(what string, got, want store.Session) {
			t.Helper()
			if got.Provider != want.Provider || got.ProviderSubject != want.ProviderSubject || got.ProviderSessionID != want.ProviderSessionID {
				t.Errorf("%s: got provider session %q %q %q, want %q %q %q", what,
					got.Provider, got.ProviderSubject, got.ProviderSessionID, want.Provider, want.ProviderSubject, want.ProviderSessionID)
			}
			if !slices.Equal(got.AMR, want.AMR) || !got.AuthTime.Equal(want.AuthTime) {
				t.Errorf("%s: got amr %v auth time %v, want %v %v", what, got.AMR, got.AuthTime, want.AMR, want.AuthTime)
			}
		}
		got, _, err := s.GetSessionAndUser(ctx, in.ID)
		if err != nil {
			t.Fatalf("GetSessionAndUser: %v", err)
		}
		same("GetSessionAndUser", got, in)
		if err := s.ExtendSession(ctx, in.ID, time.Now().Add(2*time.Hour)); err != nil {
			t.Fatalf("ExtendSession: %v", err)
		}
		got, _, err = s.GetSessionAndUser(ctx, in.ID)
		if err != nil {
			t.Fatalf("GetSessionAndUser after ExtendSession: %v", err)
		}
		same("GetSessionAndUser after ExtendSession", got, in)
		list, err := s.ListSessions(ctx, u.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListSessions: got %v, %v; want two sessions", list, err)
		}
		for _, l := range list {
			if l.ID == in.ID {
				same("ListSessions", l, in)
			} else {
				same("ListSessions (no provider session)", l, plain)
			}
		}
		deleted, err := s.DeleteSession(ctx, in.ID)
		if err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		same("DeleteSession", deleted, in)
	})
	t.Run("DuplicateRefused", func(t *testing.T) {
		s := open(t)
		u := mustCreate(t, s, user("jatin", ""))
		in := newSession(u.ID, "token-1", time.Now().Add(time.Hour))
		if err := s.CreateSession(ctx, in); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if err := s.CreateSession(ctx, in); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("CreateSession twice: got %v, want ErrDuplicate", err)
		}
	})
	t.Run("InvalidRefused", func(t *testing.T) {
		s := open(t)
		for _, bad := range []store.Session{
			{ID: "raw-token", UserID: "u", Expires: time.Now().Add(time.Hour)},
			{ID: store.SessionID("x"), Expires: time.Now().Add(time.Hour)},
			{ID: store.SessionID("x"), UserID: "u"},
		} {
			if err := s.CreateSession(ctx, bad); err == nil {
				t.Errorf("CreateSession(%+v): got nil, want an error", bad)
			}
		}
	})
	t.Run("UnknownUserIsNotFound", func(t *testing.T) {
		s := open(t)
		in := newSession("65a1f0c2e4b0a1b2c3d4e5f6", "token-1", time.Now().Add(time.Hour))
		if err := s.CreateSession(ctx, in); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if _, _, err := s.GetSessionAndUser(ctx, in.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSessionAndUser of a session without user: got %v, want ErrNotFound", err)
		}
	})
	t.Run("ExpiredNotListed", func(t *testing.T) {
		s := open(t)
		u := mustCreate(t, s, user("jatin", ""))
		expired := newSession(u.ID, "old", time.Now().Add(-time.Minute))
		live := newSession(u.ID, "new", time.Now().Add(time.Hour))
		for _, in := range []store.Session{expired, live} {
			if err := s.CreateSession(ctx, in); err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
		}
		list, err := s.ListSessions(ctx, u.ID)
		if err != nil || len(list) != 1 || list[0].ID != live.ID {
			t.Errorf("ListSessions: got %+v, %v; want only the live session", list, err)
		}
		if got, _, err := s.GetSessionAndUser(ctx, expired.ID); err == nil && got.Expires.After(time.Now()) {
			t.Errorf("GetSessionAndUser of an expired session: got expires %v, want past or ErrNotFound", got.Expires)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSessionAndUser of an expired session: got %v, want the session or ErrNotFound", err)
		}
	})
	t.Run("DeleteUserSessions", func(t *testing.T) {
		s := open(t)
		jatin := mustCreate(t, s, user("jatin", ""))
		alice := mustCreate(t, s, user("alice", ""))
		for i, uid := range []string{jatin.ID, jatin.ID, jatin.ID, alice.ID} {
			if err := s.CreateSession(ctx, newSession(uid, fmt.Sprint("t", i), time.Now().Add(time.Duration(i+1)*time.Hour))); err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
		}
		list, err := s.ListSessions(ctx, jatin.ID)
		if err != nil || len(list) != 3 {
			t.Fatalf("ListSessions: got %d sessions (%v), want 3", len(list), err)
		}
		for i := 1; i < len(list); i++ {
			if list[i].Expires.Before(list[i-1].Expires) {
				t.Errorf("ListSessions order: %v before %v, want soonest expiry first", list[i-1].Expires, list[i].Expires)
			}
		}
		n, err := s.DeleteUserSessions(ctx, jatin.ID)
		if err != nil || n != 3 {
			t.Errorf("DeleteUserSessions: got %d, %v; want 3", n, err)
		}
		for _, sess := range list {
			if _, _, err := s.GetSessionAndUser(ctx, sess.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("session %s after DeleteUserSessions: got %v, want ErrNotFound", sess.ID[:8], err)
			}
		}
		if other, err := s.ListSessions(ctx, alice.ID); err != nil || len(other) != 1 {
			t.Errorf("another user's sessions: got %d (%v), want 1 untouched", len(other), err)
		}
	})
	t.Run("ConcurrentCreateAndRead", func(t *testing.T) {
		s := open(t)
		u := mustCreate(t, s, user("jatin", ""))
		const n = 100
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := newSession(u.ID, fmt.Sprint("c", i), time.Now().Add(time.Hour))
				if err := s.CreateSession(ctx, in); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.GetSessionAndUser(ctx, in.ID); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent session: %v", err)
		}
		if list, err := s.ListSessions(ctx, u.ID); err != nil || len(list) != n {
			t.Errorf("ListSessions after %d concurrent creates: got %d (%v)", n, len(list), err)
		}
	})
}

// TestAccounts is the linked-account conformance suite.
func TestAccounts(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	a := store.Account{UserID: "65a1f0c2e4b0a1b2c3d4e5f6", Type: "oauth", Provider: "github", ProviderAccountID: "42", Tokens: map[string]any{"access_token": "x", "expires_at": 1.7e9}}
	if err := s.LinkAccount(ctx, a); err != nil {
		t.Fatalf("LinkAccount: %v", err)
	}
	if err := s.LinkAccount(ctx, a); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("LinkAccount twice: got %v, want ErrDuplicate", err)
	}
	got, err := s.FindAccount(ctx, "github", "42")
	if err != nil || got.UserID != a.UserID || got.Type != "oauth" || got.Tokens["access_token"] != "x" || got.Tokens["expires_at"] != 1.7e9 {
		t.Errorf("FindAccount: got %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.FindAccount(ctx, "github", "43"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindAccount unknown: got %v, want ErrNotFound", err)
	}
	if err := s.UnlinkAccount(ctx, "github", "42"); err != nil {
		t.Errorf("UnlinkAccount: %v", err)
	}
	if err := s.UnlinkAccount(ctx, "github", "42"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UnlinkAccount twice: got %v, want ErrNotFound", err)
	}
}

// TestVerificationTokens is the one-time token conformance suite.
func TestVerificationTokens(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	tok := store.VerificationToken{Identifier: "jatin@example.com", Token: store.SessionID("link"), Expires: time.Now().Add(time.Hour).Round(time.Millisecond)}
	if err := s.CreateVerificationToken(ctx, tok); err != nil {
		t.Fatalf("CreateVerificationToken: %v", err)
	}
	got, err := s.UseVerificationToken(ctx, tok.Identifier, tok.Token)
	if err != nil || !got.Expires.Equal(tok.Expires) || got.Identifier != tok.Identifier {
		t.Errorf("UseVerificationToken: got %+v, %v; want %+v", got, err, tok)
	}
	if _, err := s.UseVerificationToken(ctx, tok.Identifier, tok.Token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UseVerificationToken twice: got %v, want ErrNotFound", err)
	}
}

// TestRevocations is the revocation conformance suite, including the announcement to
// subscribers.
func TestRevocations(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("StateAndMerge", func(t *testing.T) {
		s := open(t)
		st, err := s.RevocationState(ctx, "u1", "jti-1")
		if err != nil || st != (store.RevocationState{}) {
			t.Fatalf("RevocationState of nothing: got %+v, %v; want zero", st, err)
		}
		cut := time.Now().Truncate(time.Second)
		exp := time.Now().Add(time.Hour)
		if err := s.Revoke(ctx, store.Revocation{UserID: "u1", Before: cut, Expires: exp}); err != nil {
			t.Fatalf("Revoke user: %v", err)
		}
		// An older cut-off never moves the user's back.
		if err := s.Revoke(ctx, store.Revocation{UserID: "u1", Before: cut.Add(-time.Hour), Expires: exp}); err != nil {
			t.Fatalf("Revoke user again: %v", err)
		}
		if err := s.Revoke(ctx, store.Revocation{TokenID: "jti-2", Expires: exp}); err != nil {
			t.Fatalf("Revoke token: %v", err)
		}
		tests := []struct {
			user, jti string
			issued    time.Time
			want      bool
		}{
			{"u1", "jti-1", cut.Add(-time.Minute), true},
			{"u1", "jti-1", cut, true},
			{"u1", "jti-1", cut.Add(time.Second), false},
			{"u2", "jti-2", cut.Add(time.Hour), true},
			{"u2", "jti-3", cut.Add(-time.Hour), false},
			{"", "jti-2", cut, true},
		}
		list, err := s.ListRevocations(ctx)
		if err != nil {
			t.Fatalf("ListRevocations: %v", err)
		}
		var users, tokens int
		for _, r := range list {
			switch {
			case r.UserID == "u1" && r.Before.Equal(cut) && !r.Expires.Before(exp.Add(-time.Second)):
				users++
			case r.TokenID == "jti-2" && !r.Expires.Before(exp.Add(-time.Second)):
				tokens++
			default:
				t.Errorf("ListRevocations: unexpected %+v", r)
			}
		}
		if users != 1 || tokens != 1 {
			t.Errorf("ListRevocations: got %d user and %d token revocations (%+v), want 1 and 1", users, tokens, list)
		}
		for _, tt := range tests {
			st, err := s.RevocationState(ctx, tt.user, tt.jti)
			if err != nil {
				t.Fatalf("RevocationState(%q, %q): %v", tt.user, tt.jti, err)
			}
			if got := st.Revoked(tt.issued); got != tt.want {
				t.Errorf("RevocationState(%q, %q).Revoked(%v): got %v, want %v (state %+v)", tt.user, tt.jti, tt.issued, got, tt.want, st)
			}
		}
	})
	t.Run("ExpiredForgotten", func(t *testing.T) {
		s := open(t)
		if err := s.Revoke(ctx, store.Revocation{UserID: "u1", Before: time.Now(), Expires: time.Now().Add(150 * time.Millisecond)}); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
		st, err := s.RevocationState(ctx, "u1", "")
		if err != nil || !st.UserBefore.IsZero() {
			t.Errorf("RevocationState after expiry: got %+v, %v; want zero", st, err)
		}
		if list, err := s.ListRevocations(ctx); err != nil || len(list) != 0 {
			t.Errorf("ListRevocations after expiry: got %+v, %v; want none", list, err)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		s := open(t)
		if err := s.Revoke(ctx, store.Revocation{Expires: time.Now().Add(time.Hour)}); err == nil {
			t.Errorf("Revoke without user or token: got nil, want an error")
		}
	})
	t.Run("Announced", func(t *testing.T) {
		s := open(t)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		got := make(chan store.Revocation, 10)
		if err := s.SubscribeRevocations(sctx, func(r store.Revocation) {
			if r.UserID != "" || r.TokenID != "" {
				got <- r
			}
		}); err != nil {
			t.Fatalf("SubscribeRevocations: %v", err)
		}
		want := store.Revocation{UserID: "u1", Before: time.Now().Truncate(time.Millisecond), Expires: time.Now().Add(time.Hour).Truncate(time.Millisecond)}
		start := time.Now()
		if err := s.Revoke(ctx, want); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		select {
		case r := <-got:
			if r.UserID != want.UserID || !r.Before.Equal(want.Before) {
				t.Errorf("announced: got %+v, want %+v", r, want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("announced after %v, want within a second", d)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no announcement within 2s")
		}
	})
}

// TestRateLimits is the counter conformance suite.
func TestRateLimits(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("CountResetWindow", func(t *testing.T) {
		s := open(t)
		if n, at, err := s.Count(ctx, "k"); err != nil || n != 0 || !at.IsZero() {
			t.Errorf("Count of a new counter: got %d, %v, %v; want 0, zero time", n, at, err)
		}
		for want := int64(1); want <= 3; want++ {
			n, at, err := s.Increment(ctx, "k", time.Minute)
			if err != nil || n != want {
				t.Fatalf("Increment: got %d (%v), want %d", n, err, want)
			}
			if d := time.Until(at); d < 50*time.Second || d > 61*time.Second {
				t.Errorf("Increment reset time: got %v from now, want about 1m", d)
			}
		}
		if n, _, err := s.Count(ctx, "k"); err != nil || n != 3 {
			t.Errorf("Count: got %d (%v), want 3", n, err)
		}
		if err := s.ResetCount(ctx, "k"); err != nil {
			t.Fatalf("ResetCount: %v", err)
		}
		if n, _, err := s.Count(ctx, "k"); err != nil || n != 0 {
			t.Errorf("Count after reset: got %d (%v), want 0", n, err)
		}
		if _, _, err := s.Increment(ctx, "short", 100*time.Millisecond); err != nil {
			t.Fatalf("Increment: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
		if n, _, err := s.Increment(ctx, "short", time.Minute); err != nil || n != 1 {
			t.Errorf("Increment after the window: got %d (%v), want 1 (a new window)", n, err)
		}
	})
	t.Run("ConcurrentNoLostUpdate", func(t *testing.T) {
		s := open(t)
		const n = 100
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := s.Increment(ctx, "c", time.Minute); err != nil {
					t.Errorf("Increment: %v", err)
				}
			}()
		}
		wg.Wait()
		if got, _, err := s.Count(ctx, "c"); err != nil || got != n {
			t.Errorf("Count after %d concurrent increments: got %d (%v), want %d", n, got, err, n)
		}
	})
	// A sign-in limit reserves a slot with Increment before it checks a password: parallel
	// callers must each get their own count, or several would see "1" and all go through.
	t.Run("ConcurrentDistinctCounts", func(t *testing.T) {
		s := open(t)
		const n = 50
		counts := make([]int64, n)
		windows := make([]time.Time, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, at, err := s.Increment(ctx, "d", time.Minute)
				if err != nil {
					t.Errorf("Increment: %v", err)
				}
				counts[i], windows[i] = c, at
			}()
		}
		wg.Wait()
		slices.Sort(counts)
		for i, c := range counts {
			if c != int64(i+1) {
				t.Fatalf("counts of %d parallel increments: got %v, want exactly 1..%d, each once", n, counts, n)
			}
		}
		for _, at := range windows[1:] {
			if !at.Equal(windows[0]) {
				t.Errorf("parallel increments in one window returned different window ends %v and %v", windows[0], at)
			}
		}
	})
	t.Run("Release", func(t *testing.T) {
		s := open(t)
		var at time.Time
		for range 3 {
			var err error
			if _, at, err = s.Increment(ctx, "r", time.Minute); err != nil {
				t.Fatalf("Increment: %v", err)
			}
		}
		if err := s.Release(ctx, "r", at); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if n, got, err := s.Count(ctx, "r"); err != nil || n != 2 || !got.Equal(at) {
			t.Errorf("Count after a release: got %d, %v (%v); want 2, the same window end %v", n, got, err, at)
		}
		// A slot taken in another window (here: one that names a different end) is not
		// this window's to give back.
		for _, other := range []time.Time{at.Add(time.Second), at.Add(-time.Second), {}} {
			if err := s.Release(ctx, "r", other); err != nil {
				t.Fatalf("Release of another window: %v", err)
			}
		}
		if n, _, err := s.Count(ctx, "r"); err != nil || n != 2 {
			t.Errorf("Count after releases naming other windows: got %d (%v), want 2 (untouched)", n, err)
		}
		for range 3 { // one more than is left: never below zero
			if err := s.Release(ctx, "r", at); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}
		if n, got, err := s.Count(ctx, "r"); err != nil || n != 0 || !got.IsZero() {
			t.Errorf("Count after releasing every slot: got %d, %v (%v); want 0, zero time (deleted)", n, got, err)
		}
		if n, _, err := s.Increment(ctx, "r", time.Minute); err != nil || n != 1 {
			t.Errorf("Increment after releasing every slot: got %d (%v), want 1", n, err)
		}
		// Releasing a counter that does not exist creates nothing.
		if err := s.Release(ctx, "never", at); err != nil {
			t.Fatalf("Release of a missing counter: %v", err)
		}
		if n, got, err := s.Count(ctx, "never"); err != nil || n != 0 || !got.IsZero() {
			t.Errorf("Count of a released missing counter: got %d, %v (%v); want 0, zero time", n, got, err)
		}
	})
	t.Run("ConcurrentIncrementRelease", func(t *testing.T) {
		s := open(t)
		const n = 50
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, at, err := s.Increment(ctx, "ir", time.Minute)
				if err != nil || c < 1 || c > n {
					t.Errorf("Increment: got %d (%v), want 1..%d", c, err, n)
					return
				}
				if err := s.Release(ctx, "ir", at); err != nil {
					t.Errorf("Release: %v", err)
				}
			}()
		}
		wg.Wait()
		if got, _, err := s.Count(ctx, "ir"); err != nil || got != 0 {
			t.Errorf("Count after %d increments each released: got %d (%v), want 0", n, got, err)
		}
	})
}

// TestLocks is the lease conformance suite.
func TestLocks(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	tok, ok, err := s.AcquireLock(ctx, "refresh", time.Minute)
	if err != nil || !ok || tok == "" {
		t.Fatalf("AcquireLock: got %q, %v, %v; want a token", tok, ok, err)
	}
	if _, ok, err := s.AcquireLock(ctx, "refresh", time.Minute); err != nil || ok {
		t.Errorf("AcquireLock while held: got ok=%v (%v), want false", ok, err)
	}
	if err := s.ReleaseLock(ctx, "refresh", "not-the-holder"); err != nil {
		t.Errorf("ReleaseLock by another: %v", err)
	}
	if _, ok, _ := s.AcquireLock(ctx, "refresh", time.Minute); ok {
		t.Errorf("AcquireLock after a release by a non-holder: got ok, want still held")
	}
	if err := s.ReleaseLock(ctx, "refresh", tok); err != nil {
		t.Fatalf("ReleaseLock: %v", err)
	}
	short, ok, err := s.AcquireLock(ctx, "refresh", 100*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("AcquireLock after release: got ok=%v (%v), want true", ok, err)
	}
	time.Sleep(250 * time.Millisecond)
	if renewed, err := s.RenewLock(ctx, "refresh", short, time.Minute); err != nil || renewed {
		t.Errorf("RenewLock after the ttl: got %v (%v), want false: the lease is lost", renewed, err)
	}
	again, ok, err := s.AcquireLock(ctx, "refresh", 200*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("AcquireLock after the ttl: got ok=%v (%v), want true", ok, err)
	}
	if renewed, err := s.RenewLock(ctx, "refresh", "not-the-holder", time.Minute); err != nil || renewed {
		t.Errorf("RenewLock by another: got %v (%v), want false", renewed, err)
	}
	// Renewed past its first ttl, the lease is still held after that ttl.
	if renewed, err := s.RenewLock(ctx, "refresh", again, time.Minute); err != nil || !renewed {
		t.Fatalf("RenewLock by the holder: got %v (%v), want true", renewed, err)
	}
	time.Sleep(350 * time.Millisecond)
	if _, ok, err := s.AcquireLock(ctx, "refresh", time.Minute); err != nil || ok {
		t.Errorf("AcquireLock after the first ttl of a renewed lease: got ok=%v (%v), want false", ok, err)
	}
	if err := s.ReleaseLock(ctx, "refresh", again); err != nil {
		t.Fatalf("ReleaseLock: %v", err)
	}
}
