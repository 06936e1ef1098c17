package engine_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

// countingStore is a real bolt store that counts the calls a refresh makes, so a test can
// prove that a session read with nothing due never reaches the store.
type countingStore struct {
	*bolt.Store
	calls atomic.Int64
}

func (s *countingStore) FindAccount(ctx context.Context, provider, id string) (store.Account, error) {
	s.calls.Add(1)
	return s.Store.FindAccount(ctx, provider, id)
}

func (s *countingStore) AcquireLock(ctx context.Context, name string, ttl time.Duration) (string, bool, error) {
	s.calls.Add(1)
	return s.Store.AcquireLock(ctx, name, ttl)
}

func (s *countingStore) GetSessionAndUser(ctx context.Context, id string) (store.Session, store.User, error) {
	s.calls.Add(1)
	return s.Store.GetSessionAndUser(ctx, id)
}

// refreshGateway serves the oauth-refresh fixture with its token URL pointed at tokenURL.
func refreshGateway(t testing.TB, tokenURL string, now func() time.Time) (*gateway, *countingStore) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", "oauth-refresh", "auth.config.js"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := strings.Replace(string(src), "process.env.TOKEN_URL", strconv.Quote(tokenURL), 1)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st := &countingStore{Store: b}
	return startGateway(t, gatewayConfig{fixture: dir, now: now, store: st}), st
}

// sessionWithTokens is a session cookie as an acme sign-in with refresh on leaves it.
func sessionWithTokens(t testing.TB, g *gateway, expiresAt time.Time, refreshToken string) string {
	t.Helper()
	tok, err := g.keys.Encode(map[string]any{
		"sub": "user-1", "name": "Ada", "email": "ada@example.com",
		"oauth": map[string]any{"provider": "acme", "providerAccountId": "user-1", "access_token": "old-access",
			"refresh_token": refreshToken, "expires_at": float64(expiresAt.Unix())},
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenEndpoint answers refresh grants: status 200 with a rotated token set, or the given
// error. It counts the grants it receives.
func tokenEndpoint(t testing.TB, status int, errCode string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if status != 200 {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": errCode})
			return
		}
		_ = r.ParseForm()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "new-access-" + r.PostForm.Get("refresh_token"),
			"refresh_token": "rotated", "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRefreshOnSessionRead(t *testing.T) {
	now := time.Now()
	ok, okGrants := tokenEndpoint(t, 200, "")
	revoked, _ := tokenEndpoint(t, 400, "invalid_grant")
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/token"
	down.Close() // nothing listens there any more: a transient failure
	tests := []struct {
		name      string
		tokenURL  string
		expiresAt time.Time
		// want: the session's refreshedTo, or "" for a kept session without a refresh, or
		// "ended" when the session must end.
		want       string
		storeCalls bool
	}{
		{"nothing due", ok.URL, now.Add(time.Hour), "", false},
		{"due: refreshed", ok.URL, now.Add(-time.Minute), "new-access-r1", true},
		{"revoked refresh token ends the session", revoked.URL, now.Add(-time.Minute), "ended", true},
		{"provider down within the grace period keeps it", downURL, now.Add(-time.Minute), "", true},
		{"provider down past the grace period ends it", downURL, now.Add(-time.Hour), "ended", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, st := refreshGateway(t, tt.tokenURL, time.Now)
			b := g.browser(t)
			b.set("next-auth.session-token", sessionWithTokens(t, g, tt.expiresAt, "r1"))
			before := st.calls.Load()
			r := b.getPage("/api/auth/session")
			if r.status != 200 {
				t.Fatalf("GET /session: got %d %s", r.status, r.body)
			}
			var s struct {
				User        *struct{ Email string } `json:"user"`
				RefreshedTo *string                 `json:"refreshedTo"`
			}
			_ = json.Unmarshal([]byte(r.body), &s)
			switch tt.want {
			case "ended":
				if s.User != nil || b.get("next-auth.session-token") != "" {
					t.Errorf("got body %s and cookie kept=%v; want the session ended", r.body, b.get("next-auth.session-token") != "")
				}
			case "":
				if s.User == nil || s.RefreshedTo != nil {
					t.Errorf("got %s; want the session kept without a refresh", r.body)
				}
			default:
				if s.User == nil || s.RefreshedTo == nil || *s.RefreshedTo != tt.want {
					t.Errorf("got %s; want refreshedTo %q", r.body, tt.want)
				}
			}
			if got := st.calls.Load() - before; (got > 0) != tt.storeCalls {
				t.Errorf("store calls during the read: got %d, want any: %v", got, tt.storeCalls)
			}
		})
	}
	if okGrants.Load() != 1 {
		t.Errorf("grants at the token endpoint: got %d, want 1", okGrants.Load())
	}
}

// BenchmarkSessionReadRefreshNotDue is the cost of a session read of a token that carries
// refreshable provider tokens, with nothing due: the refresh check adds a clock comparison.
func BenchmarkSessionReadRefreshNotDue(b *testing.B) {
	g, st := refreshGateway(b, "http://127.0.0.1:1/token", time.Now)
	cookie := sessionWithTokens(b, g, time.Now().Add(time.Hour), "r1")
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/api/auth/session", nil)
	req.Header.Set("Cookie", "next-auth.session-token="+cookie)
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	b.StopTimer()
	if n := st.calls.Load(); n != 0 {
		b.Fatalf("store calls: got %d, want 0", n)
	}
}
