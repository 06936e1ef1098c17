package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// issuerScript signs in through the test issuer; "test" has gateway-owned refresh on.
const issuerScript = `
import OIDC from "callgate/providers/oidc";
export default {
  providers: [
    OIDC({ id: "test", name: "Test issuer", issuer: %q, clientId: %q, clientSecret: %q, refresh: true }),
  ],
  callbacks: {
    jwt({ token, account, trigger }) {
      if (trigger === "refresh") token.refreshes = (token.refreshes ?? 0) + 1;
      if (account) token.accessToken = account.access_token;
      return token;
    },
    session({ session, token }) {
      return { ...session, sub: token.sub, accessToken: token.accessToken, refreshes: token.refreshes ?? 0 };
    },
  },
};
`

// issuerScriptDir writes the auth config for iss into a fresh directory.
func issuerScriptDir(t testing.TB, iss *testIssuer) string {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(issuerScript, iss.issuer(), iss.clientID, iss.clientSecret)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOAuthIDTokenClaimsRefused signs in through an issuer whose ID tokens the test
// shapes: each bad one must be refused with OAuthCallback, for the reason named.
func TestOAuthIDTokenClaimsRefused(t *testing.T) {
	tests := []struct {
		name   string
		claims func(map[string]any)
		badKey bool
		// want is the error code; "" is a sign-in. reason is what the gateway must log.
		want, reason string
	}{
		{name: "valid token signs in"},
		{name: "audience list holding the client signs in", claims: func(c map[string]any) {
			c["aud"] = []string{"another-api", c["aud"].(string)}
		}},
		{name: "wrong audience", claims: func(c map[string]any) { c["aud"] = "someone-else" },
			want: "OAuthCallback", reason: "expected audience"},
		{name: "audience list without the client", claims: func(c map[string]any) { c["aud"] = []string{"a", "b"} },
			want: "OAuthCallback", reason: "expected audience"},
		{name: "wrong issuer", claims: func(c map[string]any) { c["iss"] = "https://issuer.invalid" },
			want: "OAuthCallback", reason: "issued by a different provider"},
		{name: "signed with a key the JWKS does not hold", badKey: true,
			want: "OAuthCallback", reason: "failed to verify signature"},
		{name: "expired", claims: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() },
			want: "OAuthCallback", reason: "token is expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := startTestIssuer(t, time.Now, time.Hour)
			iss.setClaims(tt.claims)
			if tt.badKey {
				iss.setSigningKey(newECKey(t))
			}
			g := startGateway(t, gatewayConfig{fixture: issuerScriptDir(t, iss), url: gatewayOrigin})
			b := g.browser(t)
			r := b.getPage(authorize(t, b, "test"))
			if got := errorCode(r); r.status != 302 || got != tt.want {
				t.Fatalf("callback: got %d Location %q, want a redirect with error=%q", r.status, r.header.Get("Location"), tt.want)
			}
			if iss.codeGrants.Load() != 1 {
				t.Errorf("code grants at the issuer: got %d, want 1", iss.codeGrants.Load())
			}
			s, _ := readSession(t, b)
			if tt.want == "" {
				if s.User.Email != "grace@example.com" || s.Sub != "user-7" {
					t.Errorf("session: got %+v, want Grace (sub user-7)", s)
				}
				return
			}
			if s.User.Email != "" {
				t.Errorf("a refused callback left a session: %+v", s)
			}
			if logs := g.logs.String(); !strings.Contains(logs, tt.reason) {
				t.Errorf("the refusal was not for %q; log:\n%s", tt.reason, logs)
			}
		})
	}
}
