package oauth

import (
	"context"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/script"
)

// TestAuthorizationURL: the checks the provider uses are generated and sent (state as is,
// PKCE as its S256 challenge, nonce as is), the others are neither generated nor sent, and
// the sign-in request's query can add params but not replace the reserved ones.
func TestAuthorizationURL(t *testing.T) {
	c := New(Options{CallbackURL: "https://auth.example.com/api/auth/callback/"})
	for _, tt := range []struct {
		name   string
		checks []string
	}{
		{"state and pkce", []string{"state", "pkce"}},
		{"nonce only", []string{"nonce"}},
		{"none", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := script.Provider{ID: "acme", Type: "oauth", OAuth: &script.OAuthProvider{
				AuthorizationURL: "https://idp.example.com/authorize", TokenURL: "https://idp.example.com/token",
				ClientID: "client", AuthorizationParams: map[string]string{"scope": "openid email", "state": "fixed"},
				Checks: tt.checks,
			}}
			query := url.Values{"login_hint": {"ada"}, "redirect_uri": {"https://evil.example/"}, "code_challenge": {"x"}}
			target, checks, err := c.AuthorizationURL(context.Background(), p, query)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(target)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			want := map[string]string{
				"client_id": "client", "response_type": "code", "scope": "openid email", "login_hint": "ada",
				"state": checks.State, "nonce": checks.Nonce, "code_challenge": "",
				"redirect_uri": "https://auth.example.com/api/auth/callback/acme",
			}
			if checks.PKCEVerifier != "" {
				want["code_challenge"] = oauth2.S256ChallengeFromVerifier(checks.PKCEVerifier)
			}
			for k, v := range want {
				if got := q.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			for name, value := range map[string]string{"state": checks.State, "pkce": checks.PKCEVerifier, "nonce": checks.Nonce} {
				if used := p.OAuth.HasCheck(name); used != (value != "") {
					t.Errorf("check %s: used %v but value %q", name, used, value)
				}
			}
		})
	}
}
