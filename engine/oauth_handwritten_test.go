package engine_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handwrittenRefreshScript is NextAuth's documented refresh pattern: no gateway-owned
// refresh (`refresh` is not set), the jwt callback itself calls the token endpoint with
// fetch when the access token has expired, and keeps the rotated refresh token.
const handwrittenRefreshScript = `
import OIDC from "callgate/providers/oidc";
const issuer = %q, clientId = %q, clientSecret = %q;
export default {
  providers: [OIDC({ id: "test", name: "Test issuer", issuer, clientId, clientSecret })],
  callbacks: {
    async jwt({ token, account }) {
      if (account) {
        return { ...token, accessToken: account.access_token, refreshToken: account.refresh_token,
          expiresAt: account.expires_at, refreshes: 0 };
      }
      if (Date.now() / 1000 < token.expiresAt) return token;
      const res = await fetch(issuer + "/oauth2/token", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Authorization: "Basic " + btoa(clientId + ":" + clientSecret) },
        body: "grant_type=refresh_token&refresh_token=" + encodeURIComponent(token.refreshToken),
      });
      const body = await res.json();
      if (!res.ok) return { ...token, error: "RefreshAccessTokenError" };
      return { ...token, accessToken: body.access_token, refreshToken: body.refresh_token ?? token.refreshToken,
        expiresAt: Math.floor(Date.now() / 1000) + body.expires_in, refreshes: token.refreshes + 1 };
    },
    session({ session, token }) {
      return { ...session, accessToken: token.accessToken, refreshes: token.refreshes, error: token.error ?? null };
    },
  },
};
`

// TestOAuthHandwrittenRefreshInJWT: the refresh pattern NextAuth users write by hand
// (fetch inside jwt) works unchanged. The issuer's access tokens expire at once, so every
// session read refreshes; each rotated refresh token is used exactly once.
func TestOAuthHandwrittenRefreshInJWT(t *testing.T) {
	iss := startTestIssuer(t, time.Now, 0)
	dir := t.TempDir()
	src := fmt.Sprintf(handwrittenRefreshScript, iss.issuer(), iss.clientID, iss.clientSecret)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(iss.issuer())
	g := startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin, fetchAllow: []string{u.Host}})
	b := g.browser(t)
	b.getPage(authorize(t, b, "test"))
	var previous string
	for round := 1; round <= 3; round++ {
		r := b.getPage("/api/auth/session")
		var s struct {
			AccessToken string  `json:"accessToken"`
			Refreshes   int     `json:"refreshes"`
			Error       *string `json:"error"`
		}
		if err := jsonUnmarshal(r.body, &s); err != nil || r.status != 200 {
			t.Fatalf("round %d: GET /session: %d %s", round, r.status, r.body)
		}
		if s.Refreshes != round || s.Error != nil || s.AccessToken == "" || s.AccessToken == previous {
			t.Errorf("round %d: got refreshes=%d error=%v token %q (previous %q), want a new access token after %d refreshes",
				round, s.Refreshes, s.Error, s.AccessToken, previous, round)
		}
		previous = s.AccessToken
	}
	if got := iss.refreshGrants.Load(); got != 3 {
		t.Errorf("refresh grants at the issuer: got %d, want 3", got)
	}
	if got := iss.reusedRefresh.Load(); got != 0 {
		t.Errorf("reused refresh tokens: got %d, want 0", got)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
