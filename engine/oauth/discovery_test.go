package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/script"
)

// TestDiscoveryFailureRetriedOnTheClock: a failed discovery is remembered for
// discoveryRetry (no request reaches the provider), then tried again; a good one is kept.
func TestDiscoveryFailureRetriedOnTheClock(t *testing.T) {
	var up atomic.Bool
	var fetches atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"}})
	}))
	t.Cleanup(srv.Close)
	clk := newClock()
	c := New(Options{Now: clk.Now, CallbackURL: "https://auth.example.com/api/auth/callback/"})
	p := script.Provider{ID: "idp", Type: "oidc", OAuth: &script.OAuthProvider{Issuer: srv.URL, ClientID: "client", Checks: []string{"state"}}}
	authorize := func() error {
		_, _, err := c.AuthorizationURL(context.Background(), p, nil)
		return err
	}
	if err := authorize(); err == nil {
		t.Fatal("discovery of a provider that is down: got no error")
	}
	up.Store(true)
	clk.Add(discoveryRetry - time.Second)
	if err := authorize(); err == nil || fetches.Load() != 1 {
		t.Fatalf("within the retry period: got err %v after %d fetches, want the remembered failure after 1", err, fetches.Load())
	}
	clk.Add(2 * time.Second)
	if err := authorize(); err != nil || fetches.Load() != 2 {
		t.Fatalf("after the retry period: got err %v after %d fetches, want success after 2", err, fetches.Load())
	}
	clk.Add(time.Hour)
	if err := authorize(); err != nil || fetches.Load() != 2 {
		t.Fatalf("a good discovery: got err %v after %d fetches, want it kept (2 fetches)", err, fetches.Load())
	}
}
