package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"

	"github.com/callgate/callgate/internal/testkit"
)

// newClock is a test clock at a fixed instant, moved by hand.
func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// refreshServer is a token endpoint that rotates refresh tokens: every grant answers a new
// access and refresh token. onGrant, when set, runs inside the grant (before it answers).
type refreshServer struct {
	srv     *httptest.Server
	grants  atomic.Int64
	onGrant func(n int64)
}

func startRefreshServer(t *testing.T) *refreshServer {
	t.Helper()
	s := &refreshServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "refresh_token" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		n := s.grants.Add(1)
		if s.onGrant != nil {
			s.onGrant(n)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "access-" + strconv.FormatInt(n, 10),
			"refresh_token": "refresh-" + strconv.FormatInt(n, 10), "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *refreshServer) provider() script.Provider {
	return script.Provider{ID: "acme", Type: "oauth", OAuth: &script.OAuthProvider{
		AuthorizationURL: s.srv.URL + "/authorize", TokenURL: s.srv.URL + "/token",
		ClientID: "client", ClientSecret: "secret", Refresh: true, RefreshGrace: 5 * time.Minute,
	}}
}

// sessionToken is a decoded session token carrying acme's tokens.
func sessionToken(refreshToken string, expiresAt time.Time) map[string]any {
	return map[string]any{"sub": "user-1", Claim: map[string]any{"provider": "acme", "providerAccountId": "user-1",
		"access_token": "old-access", "refresh_token": refreshToken, "expires_at": float64(expiresAt.Unix())}}
}

func refreshOnce(t *testing.T, c *Client, p script.Provider, token map[string]any) Refresh {
	t.Helper()
	out, err := c.RefreshIfDue(context.Background(), token, func(id string) (script.Provider, bool) { return p, id == p.ID })
	if err != nil {
		t.Fatal(err)
	}
	if out.End {
		t.Fatalf("session ended: %s", out.Reason)
	}
	return out
}

func accessToken(r Refresh) string {
	s, _ := r.Claim["access_token"].(string)
	return s
}

// TestRefreshDueOnTheClock: a refresh is due refreshSkew before the access token expires,
// by the client's clock.
func TestRefreshDueOnTheClock(t *testing.T) {
	srv := startRefreshServer(t)
	clk := newClock()
	c := New(Options{Now: clk.Now})
	tok := sessionToken("r1", clk.Now().Add(time.Hour))
	if out := refreshOnce(t, c, srv.provider(), tok); out.JWTArg != nil || accessToken(out) != "old-access" {
		t.Fatalf("an hour before expiry: got %+v, want no refresh", out)
	}
	clk.Add(time.Hour - refreshSkew - time.Second)
	if out := refreshOnce(t, c, srv.provider(), tok); out.JWTArg != nil {
		t.Fatalf("just outside the skew: got a refresh")
	}
	clk.Add(2 * time.Second)
	out := refreshOnce(t, c, srv.provider(), tok)
	if out.JWTArg == nil || accessToken(out) != "access-1" || out.JWTArg.Trigger != "refresh" {
		t.Fatalf("inside the skew: got %+v, want the refreshed access-1", out)
	}
	// jwt's argument is {token, account, trigger: "refresh"}, nothing more.
	if keys := strings.Join(out.JWTArg.Keys(), ","); keys != "token,account,trigger" || out.JWTArg.Token.(map[string]any)["sub"] != tok["sub"] || out.JWTArg.Account["provider"] == nil {
		t.Errorf("jwt argument: keys %s, %+v; want token, account and trigger", keys, out.JWTArg)
	}
	if n := srv.grants.Load(); n != 1 {
		t.Errorf("grants: got %d, want 1", n)
	}
}

// TestRotatedTokensRememberedForTheirTTL: a request still carrying the refresh token that a
// refresh replaced gets that refresh's result, without a grant, for rotatedTTL; after that
// (the clock moved on, nothing slept) the old token goes to the provider again.
func TestRotatedTokensRememberedForTheirTTL(t *testing.T) {
	srv := startRefreshServer(t)
	clk := newClock()
	c := New(Options{Now: clk.Now})
	p := srv.provider()
	stale := sessionToken("r1", clk.Now().Add(-time.Minute))
	if got := accessToken(refreshOnce(t, c, p, stale)); got != "access-1" {
		t.Fatalf("first refresh: got %q, want access-1", got)
	}
	clk.Add(rotatedTTL - time.Second)
	if got := accessToken(refreshOnce(t, c, p, stale)); got != "access-1" || srv.grants.Load() != 1 {
		t.Fatalf("within the memo's TTL: got %q after %d grants, want access-1 after 1", got, srv.grants.Load())
	}
	clk.Add(2 * time.Second)
	if got := accessToken(refreshOnce(t, c, p, stale)); got != "access-2" || srv.grants.Load() != 2 {
		t.Fatalf("past the memo's TTL: got %q after %d grants, want access-2 after 2", got, srv.grants.Load())
	}
}

// lockStore is the part of a store a refresh uses: accounts and locks, with lock leases
// on the test clock.
type lockStore struct {
	store.Store // not used: the methods below are all a refresh calls
	clk         *testkit.Clock

	mu       sync.Mutex
	accounts map[string]store.Account
	locks    map[string]lease
	renewals atomic.Int64
	refused  atomic.Int64 // AcquireLock calls that found the lock held
	// renewed and refusedAt receive one value per renewal and per refused AcquireLock, so
	// a test waits for them instead of polling the counters.
	renewed, refusedAt chan struct{}
}

type lease struct {
	token string
	until time.Time
}

func newLockStore(clk *testkit.Clock) *lockStore {
	return &lockStore{clk: clk, accounts: map[string]store.Account{}, locks: map[string]lease{},
		renewed: make(chan struct{}, 64), refusedAt: make(chan struct{}, 64)}
}

func (s *lockStore) FindAccount(_ context.Context, provider, id string) (store.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[provider+"\x00"+id]
	if !ok {
		return store.Account{}, store.ErrNotFound
	}
	return a, nil
}

func (s *lockStore) LinkAccount(_ context.Context, a store.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[a.Provider+"\x00"+a.ProviderAccountID] = a
	return nil
}

func (s *lockStore) UnlinkAccount(_ context.Context, provider, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.accounts, provider+"\x00"+id)
	return nil
}

func (s *lockStore) AcquireLock(_ context.Context, name string, ttl time.Duration) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if l, ok := s.locks[name]; ok && now.Before(l.until) {
		s.refused.Add(1)
		signal(s.refusedAt)
		return "", false, nil
	}
	tok := strconv.FormatInt(now.UnixNano(), 10) + name
	s.locks[name] = lease{token: tok, until: now.Add(ttl)}
	return tok, true, nil
}

func (s *lockStore) RenewLock(_ context.Context, name, tok string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	l, ok := s.locks[name]
	if !ok || l.token != tok || !now.Before(l.until) {
		return false, nil
	}
	s.locks[name] = lease{token: tok, until: now.Add(ttl)}
	s.renewals.Add(1)
	signal(s.renewed)
	return true, nil
}

// signal sends on a buffered channel without ever blocking the store.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// drain empties ch, so that the next await sees only what happens after it.
func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// await waits for one value on ch, or gives up after a bound that only a failure reaches.
func await(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

func (s *lockStore) ReleaseLock(_ context.Context, name, tok string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[name]; ok && l.token == tok {
		delete(s.locks, name)
	}
	return nil
}

// TestRefreshLockLeaseRenewedWhileTheProviderIsSlow: two replicas share a store whose lock
// leases run on the test clock. While the first replica's grant is at the provider, the
// clock moves on by far more than the lease, in steps each shorter than it; the holder's
// renewals keep the lease, so the second replica waits and then reuses the stored result
// instead of spending the same refresh token again.
func TestRefreshLockLeaseRenewedWhileTheProviderIsSlow(t *testing.T) {
	srv := startRefreshServer(t)
	clk := newClock()
	st := newLockStore(clk)
	const leaseTTL = 300 * time.Millisecond
	opts := Options{Store: st, Now: clk.Now, RefreshLockLease: leaseTTL, RefreshLockRenew: 5 * time.Millisecond}
	first, second := New(opts), New(opts)
	p := srv.provider()
	if err := st.LinkAccount(context.Background(), store.Account{UserID: "u1", Type: "oauth", Provider: "acme", ProviderAccountID: "user-1",
		Tokens: map[string]any{"refresh_token": "r1"}}); err != nil {
		t.Fatal(err)
	}
	atProvider := make(chan struct{})
	secondWaiting := make(chan struct{})
	srv.onGrant = func(n int64) {
		if n != 1 {
			return
		}
		close(atProvider)
		<-secondWaiting
		// Four steps of two thirds of the lease: the lease would have run out twice over.
		for range 4 {
			drain(st.renewed)
			clk.Add(2 * leaseTTL / 3)
			await(st.renewed) // a missing renewal fails the counts checked at the end
		}
	}
	stale := sessionToken("r1", clk.Now().Add(-time.Minute))
	results := make([]Refresh, 2)
	var wg sync.WaitGroup
	wg.Go(func() { results[0] = refreshOnce(t, first, p, stale) })
	<-atProvider
	drain(st.refusedAt)
	wg.Go(func() { results[1] = refreshOnce(t, second, p, stale) })
	if !await(st.refusedAt) {
		t.Error("the second replica never found the lock held")
	}
	close(secondWaiting)
	wg.Wait()
	if n := srv.grants.Load(); n != 1 {
		t.Errorf("grants: got %d, want 1 (the second replica took a lease that had run out)", n)
	}
	if st.renewals.Load() < 4 {
		t.Errorf("renewals: got %d, want at least 4", st.renewals.Load())
	}
	for i, r := range results {
		if got := accessToken(r); got != "access-1" {
			t.Errorf("replica %d: got access token %q, want access-1", i, got)
		}
	}
}
