package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

const (
	bearerAudience = "https://api.example.test"
	bearerSecret   = "api-client-secret-0123456789"
)

// clientCredentialsToken gets an access token from Hydra for client by the
// client_credentials grant.
func (h *hydraProvider) clientCredentialsToken(t *testing.T, client, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {audience}, "scope": {"api"}}
	req, _ := http.NewRequest(http.MethodPost, h.Issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, bearerSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token for %s: %d %s", client, res.StatusCode, body)
	}
	return tok.AccessToken
}

// TestBearerTokens: a protected route that accepts bearer tokens lets through the
// gateway's own session token, a provider's JWT access token (checked against its JWKS)
// and an opaque one (checked by introspection), each with request.auth telling which, and
// answers every bad token 401 with a challenge, never a redirect, never 500.
func TestBearerTokens(t *testing.T) {
	h := startHydraProvider(t)
	for _, c := range []struct{ id, strategy, audience string }{
		{"api-jwt", "jwt", bearerAudience},
		{"api-opaque", "opaque", bearerAudience},
		{"other-jwt", "jwt", "https://other.example.test"},
	} {
		if err := h.adminCall(http.MethodPost, "/admin/clients", map[string]any{
			"client_id": c.id, "client_secret": bearerSecret, "grant_types": []string{"client_credentials"},
			"token_endpoint_auth_method": "client_secret_basic", "access_token_strategy": c.strategy,
			"audience": []string{c.audience}, "scope": "api",
		}, nil); err != nil {
			t.Fatal(err)
		}
	}
	up := echoUpstream(t)
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: "testdata/proxy-scripts",
		Env:        map[string]string{"HYDRA_INTROSPECTION_SECRET": bearerSecret},
		Args: []string{"--config", writeConfig(t, fmt.Sprintf(`
proxy: {trusted_proxies: [127.0.0.1]}
routes:
  - {name: api, path: /api, upstream: %[1]s, bearer: [session, hydra]}
  - {name: app, path: /, upstream: %[1]s}
bearer:
  providers:
    - id: hydra
      issuer: %[2]s
      audience: [%[3]s]
      introspection: {url: %[4]s/admin/oauth2/introspect, client_id: api-jwt, client_secret_env: HYDRA_INTROSPECTION_SECRET}
`, up.URL, h.Issuer, bearerAudience, h.Admin))},
	})
	browser := signedInClient(t, gw)
	sessionToken := jarCookie(t, browser, gw, sessionCookieName)
	jwtToken := h.clientCredentialsToken(t, "api-jwt", bearerAudience)
	opaqueToken := h.clientCredentialsToken(t, "api-opaque", bearerAudience)
	otherAudience := h.clientCredentialsToken(t, "other-jwt", "https://other.example.test")
	if strings.Count(jwtToken, ".") != 2 || strings.Count(opaqueToken, ".") == 2 {
		t.Fatalf("Hydra gave tokens of the wrong kinds: %q, %q", jwtToken, opaqueToken)
	}
	parts := strings.Split(jwtToken, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	noneAlg := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."

	keyfunc := jwksKeyfunc(t, gw)
	api := http.DefaultClient // an API client: no cookies
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []struct {
		name       string
		client     *http.Client
		path       string
		header     http.Header
		wantStatus int
		wantAuth   string // X-Callgate-Auth upstream
		wantSub    string // X-Callgate-User upstream
	}{
		{"the session cookie", browser, "/api/me", nil, 200, "cookie/session/", "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"the session token as a bearer", api, "/api/me", bearer(sessionToken), 200, "bearer/session/", "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"a JWT access token", api, "/api/me", bearer(jwtToken), 200, "bearer/jwt/hydra", "api-jwt"},
		{"an opaque access token", api, "/api/me", bearer(opaqueToken), 200, "bearer/introspection/hydra", "api-opaque"},
		{"a bearer beats the cookie", browser, "/api/me", bearer(jwtToken), 200, "bearer/jwt/hydra", "api-jwt"},
		{"another audience", api, "/api/me", bearer(otherAudience), 401, "", ""},
		{"a tampered JWT", api, "/api/me", bearer(tampered), 401, "", ""},
		{"alg none", api, "/api/me", bearer(noneAlg), 401, "", ""},
		{"an unknown opaque token", api, "/api/me", bearer("ory_at_unknown.token"), 401, "", ""},
		{"an empty bearer", api, "/api/me", http.Header{"Authorization": {"Bearer "}}, 401, "", ""},
		{"two Authorization headers", api, "/api/me", http.Header{"Authorization": {"Bearer " + jwtToken, "Bearer " + jwtToken}}, 401, "", ""},
		{"an oversized token", api, "/api/me", bearer(strings.Repeat("a", 20000)), 401, "", ""},
		{"a browser with a bad bearer gets no redirect", browser, "/api/me", http.Header{"Authorization": {"Bearer nope"}, "Accept": {"text/html"}}, 401, "", ""},
		{"no credentials at all", api, "/api/me", nil, 401, "", ""},
		{"a route without bearer ignores one", api, "/app", bearer(jwtToken), 401, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, tc.client, gw.URL+tc.path, tc.header)
			if res.Status != tc.wantStatus {
				t.Fatalf("GET %s: got %d (Location %q) %s, want %d", tc.path, res.Status, res.Header.Get("Location"), res.Body, tc.wantStatus)
			}
			if tc.wantStatus == 401 {
				challenge := res.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(challenge, `Bearer realm="callgate"`) {
					t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", challenge)
				}
				if tc.header.Get("Authorization") != "" && tc.path == "/api/me" && !strings.Contains(challenge, `error="invalid_token"`) {
					t.Errorf("a refused token: got WWW-Authenticate %q, want error=\"invalid_token\"", challenge)
				}
				return
			}
			var s seen
			if err := json.Unmarshal(res.Body, &s); err != nil {
				t.Fatalf("upstream body %s: %v", res.Body, err)
			}
			if s.Headers["X-Callgate-Auth"] != tc.wantAuth || s.Headers["X-Callgate-User"] != tc.wantSub {
				t.Errorf("upstream got auth %q user %q, want %q and %q", s.Headers["X-Callgate-Auth"], s.Headers["X-Callgate-User"], tc.wantAuth, tc.wantSub)
			}
			raw := s.Headers["X-Callgate-Assertion"]
			if raw == "" {
				t.Fatalf("upstream got no assertion")
			}
			// The assertion names the provider of a provider's token, and nothing for a
			// gateway session: the app tells the provider's subjects from its users.
			var claims jwt.MapClaims
			if _, err := jwt.ParseWithClaims(raw, &claims, keyfunc, jwt.WithValidMethods([]string{"ES256"})); err != nil {
				t.Fatalf("assertion does not verify: %v", err)
			}
			wantIdp := ""
			if strings.HasPrefix(tc.wantAuth, "bearer/jwt") || strings.HasPrefix(tc.wantAuth, "bearer/introspection") {
				wantIdp = "hydra"
			}
			if idp, _ := claims["idp"].(string); idp != wantIdp {
				t.Errorf("assertion idp %q, want %q", idp, wantIdp)
			}
			// The gateway's own token never reaches the app; a provider's token is the
			// app's to use.
			switch auth := s.Headers["Authorization"]; {
			case tc.wantAuth == "bearer/session/" && auth != "":
				t.Errorf("upstream got the gateway's session token in Authorization")
			case strings.HasPrefix(tc.wantAuth, "bearer/jwt") && auth != "Bearer "+jwtToken:
				t.Errorf("upstream Authorization %q, want the client's access token", auth)
			}
		})
	}
	// Forward-auth (Traefik, Caddy; nginx's auth_request the same way) judges the
	// forwarded request's bearer token and returns the identity headers.
	for _, fa := range []struct {
		name, tok  string
		wantStatus int
		wantUser   string
	}{
		{"forward-auth: a JWT access token", jwtToken, 200, "api-jwt"},
		{"forward-auth: an opaque access token", opaqueToken, 200, "api-opaque"},
		{"forward-auth: a tampered token", tampered, 401, ""},
	} {
		h := bearer(fa.tok)
		h.Set("X-Forwarded-Method", "GET")
		h.Set("X-Forwarded-Proto", "https")
		h.Set("X-Forwarded-Host", "api.example.test")
		h.Set("X-Forwarded-Uri", "/api/me")
		res := get(t, api, gw.URL+"/_callgate/forward-auth", h)
		if res.Status != fa.wantStatus || res.Header.Get("X-Callgate-User") != fa.wantUser {
			t.Errorf("%s: got %d user %q, want %d user %q; body %s", fa.name, res.Status, res.Header.Get("X-Callgate-User"), fa.wantStatus, fa.wantUser, res.Body)
		}
		if fa.wantStatus == 401 && !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: got WWW-Authenticate %q, want an invalid_token challenge", fa.name, res.Header.Get("WWW-Authenticate"))
		}
	}
	if strings.Contains(gw.Logs(), jwtToken) || strings.Contains(gw.Logs(), opaqueToken) {
		t.Errorf("the gateway logged an access token")
	}
}
