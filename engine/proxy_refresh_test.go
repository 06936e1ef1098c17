package engine_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store/bolt"
)

// The refresh on the proxy path: an app that is only ever proxied never calls
// /api/auth/session, so the proxy refreshes OAuth access tokens when they are due, under the
// same lock as /session, and the app receives the fresh token.

// tokenUpstream is an app that answers every request with the access token the gateway
// handed it (the X-Access-Token identity header).
func tokenUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Access-Token"))
	}))
	t.Cleanup(up.Close)
	return up
}

// userUpstream is an app that answers every request with the user the gateway named
// (the X-Callgate-User identity header).
func userUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Callgate-User"))
	}))
	t.Cleanup(up.Close)
	return up
}

// proxyFront serves g's engine behind the reverse proxy, as gateway serve wires them, with
// one protected route to upstream that passes the token's accessToken claim on.
func proxyFront(t testing.TB, g *gateway, upstream string) *httptest.Server {
	t.Helper()
	var cfg config.Config
	cfg.Routes = []config.Route{{Name: "app", Path: "/", Upstream: upstream}}
	cfg.Identity.Headers = map[string]string{"X-Callgate-User": "sub", "X-Access-Token": "accessToken"}
	cfg.Identity.Assertion.Enabled = new(false)
	cfg.ApplyDefaults()
	p, err := proxy.New(proxy.Options{
		Origin: gatewayOrigin, SignInURL: gatewayOrigin + engine.BasePath + "/signin",
		ChallengeURL: gatewayOrigin + engine.BasePath + "/challenge",
		Sessions: func(r *http.Request) (proxy.Session, []string, error) {
			s, setCookie, err := g.eng.ProxySession(r)
			if errors.Is(err, engine.ErrStoreUnavailable) {
				return nil, nil, fmt.Errorf("%w: %w", proxy.ErrSessionsUnavailable, err)
			}
			if s == nil || err != nil {
				return nil, setCookie, err
			}
			return s, setCookie, nil
		},
		Generation: func() *script.Generation { return g.eng.Generation() },
		Routes:     cfg.Routes, Proxy: cfg.Proxy, Identity: cfg.Identity,
		Gateway:      g.eng.Handler(),
		GatewayPaths: []proxy.GatewayPath{{Path: engine.BasePath + "/"}},
		Logger:       slog.New(slog.NewTextHandler(g.logs, nil)),
		Now:          g.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// proxiedGet requests base/page with a session cookie through the proxy and returns what
// the app answered (tokenUpstream, userUpstream) and the renewed session cookie ("" when
// none was set).
func proxiedGet(base, sessionCookie string) (answer, renewed string, err error) {
	req, err := http.NewRequest(http.MethodGet, base+"/page", nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Cookie", "next-auth.session-token="+sessionCookie)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != 200 {
		return "", "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, "next-auth.session-token="); ok {
			renewed, _, _ = strings.Cut(v, ";")
		}
	}
	return string(body), renewed, nil
}

// TestProxyRefreshExactlyOnce signs in through the test issuer, whose refresh tokens
// rotate and may be used once, and after the access token expires sends 50 parallel
// proxied requests with the same cookie: on one gateway, and alternating between two
// replicas on one Redis. Exactly one refresh grant per round at the issuer and no refused
// reuse prove that the proxy path refreshes under the one lock; every request's upstream
// receiving the one new access token proves that the app is never handed the stale one;
// the renewed cookie of each answer carries the rotated refresh token into the next round.
func TestProxyRefreshExactlyOnce(t *testing.T) {
	tests := []struct {
		name     string
		replicas func(t *testing.T, dir string, now func() time.Time) []*gateway
	}{
		{"one gateway", func(t *testing.T, dir string, now func() time.Time) []*gateway {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "gateway.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return []*gateway{startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin, now: now, store: st})}
		}},
		{"two replicas on Redis", func(t *testing.T, dir string, now func() time.Time) []*gateway {
			redisURL := redisURLForTest(t)
			prefix := fmt.Sprintf("callgate-test-proxy-refresh-%d", time.Now().UnixNano())
			return []*gateway{redisReplica(t, redisURL, prefix, dir, now), redisReplica(t, redisURL, prefix, dir, now)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &jumpClock{}
			iss := startTestIssuer(t, clock.now, time.Hour)
			replicas := tt.replicas(t, issuerScriptDir(t, iss), clock.now)
			up := tokenUpstream(t)
			fronts := make([]string, len(replicas))
			for i, g := range replicas {
				fronts[i] = proxyFront(t, g, up.URL).URL
			}
			b := replicas[0].browser(t)
			if r := b.getPage(authorize(t, b, "test")); r.status != 302 || errorCode(r) != "" {
				t.Fatalf("sign in: got %d %s", r.status, r.header.Get("Location"))
			}
			cookie := b.get("next-auth.session-token")
			before, renewed, err := proxiedGet(fronts[0], cookie)
			if err != nil || before == "" || renewed != "" {
				t.Fatalf("proxied request before expiry: got token %q, renewed cookie %v, err %v; want the token and no renewal", before, renewed != "", err)
			}
			for round := 1; round <= 2; round++ {
				grants := iss.refreshGrants.Load()
				clock.add(2 * time.Hour) // past the access token's expiry and the grace period
				const n = 50
				tokens, cookies, errs := make([]string, n), make([]string, n), make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { tokens[i], cookies[i], errs[i] = proxiedGet(fronts[i%len(fronts)], cookie) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d: request %d (replica %d): %v", round, i, i%len(fronts), err)
					}
				}
				if got := iss.refreshGrants.Load() - grants; got != 1 {
					t.Errorf("round %d: refresh grants at the issuer: got %d, want exactly 1", round, got)
				}
				if got := iss.reusedRefresh.Load(); got != 0 {
					t.Errorf("round %d: refresh tokens used twice: got %d, want 0", round, got)
				}
				for i := range n {
					if tokens[i] == before || tokens[i] != tokens[0] || !strings.HasPrefix(tokens[i], "access-") {
						t.Fatalf("round %d: request %d (replica %d): the app got access token %q; want the one new token (not %q)", round, i, i%len(fronts), tokens[i], before)
					}
					if cookies[i] == "" {
						t.Fatalf("round %d: request %d (replica %d) got no renewed session cookie", round, i, i%len(fronts))
					}
				}
				// The renewed cookie holds the new tokens: with it, nothing is due.
				if got, again, err := proxiedGet(fronts[len(fronts)-1], cookies[n-1]); err != nil || got != tokens[0] || again != "" {
					t.Fatalf("round %d: with the renewed cookie: got token %q, renewed again %v, err %v; want %q and no renewal", round, got, again != "", err, tokens[0])
				}
				cookie, before = cookies[n-1], tokens[0]
			}
		})
	}
}
