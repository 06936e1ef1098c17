package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store/redis"
)

// redisURLForTest returns REDIS_URL; without it the test skips outside CI and fails in CI.
func redisURLForTest(t *testing.T) string {
	t.Helper()
	return testkit.RedisURL(t, "the two-replica refresh test")
}

// TestOAuthRefreshAcrossReplicasOnRedis runs two gateways on one Redis key prefix, signs in
// through one, and after the access token expires sends 50 parallel session reads with the
// same cookie, alternating between the replicas. The issuer rotates refresh tokens and
// refuses a second use of one, so one refresh grant per round and no refused reuse prove
// that the replicas shared the single refresh.
func TestOAuthRefreshAcrossReplicasOnRedis(t *testing.T) {
	redisURL := redisURLForTest(t)
	clock := &jumpClock{}
	iss := startTestIssuer(t, clock.now, time.Hour)
	dir := issuerScriptDir(t, iss)
	prefix := fmt.Sprintf("callgate-test-refresh-%d", time.Now().UnixNano())
	replicas := []*gateway{
		redisReplica(t, redisURL, prefix, dir, clock.now),
		redisReplica(t, redisURL, prefix, dir, clock.now),
	}

	b := replicas[0].browser(t)
	if r := b.getPage(authorize(t, b, "test")); r.status != 302 || errorCode(r) != "" {
		t.Fatalf("sign in: got %d %s", r.status, r.header.Get("Location"))
	}
	before, _ := readSession(t, b)
	if before.AccessToken == "" || before.Refreshes != 0 {
		t.Fatalf("after sign-in: got %+v, want an access token and no refresh", before)
	}
	cookie := b.get("next-auth.session-token")
	for round := 1; round <= 2; round++ {
		grants := iss.refreshGrants.Load()
		clock.add(2 * time.Hour) // past the access token's expiry and the grace period
		const n = 50
		results := make([]oauthSession, n)
		renewed := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				results[i], renewed[i], errs[i] = readSessionWith(replicas[i%2].srv.URL, cookie)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: read %d (replica %d): %v", round, i, i%2, err)
			}
		}
		if got := iss.refreshGrants.Load() - grants; got != 1 {
			t.Errorf("round %d: refresh grants at the issuer: got %d, want exactly 1", round, got)
		}
		if got := iss.reusedRefresh.Load(); got != 0 {
			t.Errorf("round %d: refresh tokens used twice: got %d, want 0", round, got)
		}
		for i, s := range results {
			if s.User.Email != "grace@example.com" || s.AccessToken == before.AccessToken || s.AccessToken != results[0].AccessToken || s.Refreshes != round {
				t.Fatalf("round %d: read %d (replica %d) got %+v; want Grace with the one new access token, refreshes=%d", round, i, i%2, s, round)
			}
			if renewed[i] == "" {
				t.Fatalf("round %d: read %d (replica %d) got no renewed session cookie", round, i, i%2)
			}
		}
		// The next round starts from a cookie the other replica renewed: its refresh token
		// is the rotated one, so the round proves the rotation left a usable grant.
		cookie = renewed[n-1]
		before = results[0]
	}
}

// readSessionWith reads GET /api/auth/session at base with a session cookie and returns
// the session and the renewed session cookie.
func readSessionWith(base, sessionCookie string) (oauthSession, string, error) {
	var s oauthSession
	req, err := http.NewRequest(http.MethodGet, base+"/api/auth/session", nil)
	if err != nil {
		return s, "", err
	}
	req.Header.Set("Cookie", "next-auth.session-token="+sessionCookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, "", err
	}
	if resp.StatusCode != 200 {
		return s, "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, "", fmt.Errorf("decode %s: %w", body, err)
	}
	renewed := ""
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, "next-auth.session-token="); ok {
			renewed, _, _ = strings.Cut(v, ";")
		}
	}
	return s, renewed, nil
}

// TestOAuthRefreshLockOutlivesItsLease: a provider slower than the store lock's lease. The
// holder renews the lease while the provider answers, so the other replica keeps waiting
// instead of taking the lock and spending the same refresh token a second time.
func TestOAuthRefreshLockOutlivesItsLease(t *testing.T) {
	redisURL := redisURLForTest(t)
	clock := &jumpClock{}
	iss := startTestIssuer(t, clock.now, time.Hour)
	iss.refreshDelay = 1200 * time.Millisecond // four leases
	dir := issuerScriptDir(t, iss)
	prefix := fmt.Sprintf("callgate-test-lease-%d", time.Now().UnixNano())
	replicas := []*gateway{
		redisReplica(t, redisURL, prefix, dir, clock.now),
		redisReplica(t, redisURL, prefix, dir, clock.now),
	}
	for _, g := range replicas {
		engine.SetRefreshLease(g.eng, 300*time.Millisecond, 100*time.Millisecond)
	}
	b := replicas[0].browser(t)
	if r := b.getPage(authorize(t, b, "test")); r.status != 302 || errorCode(r) != "" {
		t.Fatalf("sign in: got %d %s", r.status, r.header.Get("Location"))
	}
	cookie := b.get("next-auth.session-token")
	clock.add(2 * time.Hour)
	const n = 10
	results := make([]oauthSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], _, errs[i] = readSessionWith(replicas[i%2].srv.URL, cookie) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("read %d (replica %d): %v", i, i%2, err)
		}
		if results[i].Refreshes != 1 || results[i].AccessToken != results[0].AccessToken {
			t.Errorf("read %d (replica %d): got %+v, want the one refreshed session", i, i%2, results[i])
		}
	}
	if got := iss.refreshGrants.Load(); got != 1 {
		t.Errorf("refresh grants at the issuer: got %d, want exactly 1", got)
	}
	if got := iss.reusedRefresh.Load(); got != 0 {
		t.Errorf("refresh tokens used twice: got %d, want 0 (the lease was lost while the provider answered)", got)
	}
}

// redisReplica starts a gateway on a Redis store under prefix, as one replica of several
// sharing it; the prefix's keys are deleted when the test ends (by each replica: deleting
// twice is harmless).
func redisReplica(t *testing.T, redisURL, prefix, scriptsDir string, now func() time.Time) *gateway {
	t.Helper()
	st, err := redis.Open(redis.Options{URL: redisURL, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := st.Client().Keys(ctx, st.Prefix()+"*").Result(); len(keys) > 0 {
			st.Client().Del(ctx, keys...)
		}
		st.Close()
	})
	return startGateway(t, gatewayConfig{fixture: scriptsDir, url: gatewayOrigin, now: now, store: st})
}
