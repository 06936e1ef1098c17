package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/engine/jwk"
	"github.com/callgate/callgate/engine/token"
)

// renewedOnRotatedGateway reads GET /api/auth/session on rotated with the session cookie
// an earlier key signed: the reference user's session, and the renewed cookie.
func renewedOnRotatedGateway(t *testing.T, rotated *testGateway, cookie string) *http.Cookie {
	t.Helper()
	res := sendWith(t, http.MethodGet, rotated.URL+"/api/auth/session", sessionCookieName+"="+cookie, nil, "")
	var session map[string]any
	if err := json.Unmarshal(res.Body, &session); err != nil || res.Status != http.StatusOK {
		t.Fatalf("rotated gateway, old cookie: %d %s", res.Status, res.Body)
	}
	checkSession(t, session, referenceUser)
	renewed := findCookie(res.Cookies, sessionCookieName)
	if renewed == nil || renewed.Value == "" {
		t.Fatalf("rotated gateway: no renewed cookie in %v", res.Header.Values("Set-Cookie"))
	}
	return renewed
}

// jwsGateway starts a gateway whose session token is a JWS signed with alg, with more YAML
// under session.token (keys: …) and the given secret (testGatewaySecret when empty).
func jwsGateway(t *testing.T, alg, extra, secret string, scriptsDir string) *testGateway {
	t.Helper()
	cfg := writeConfig(t, fmt.Sprintf("session:\n  token:\n    format: jws\n    alg: %s\n%s", alg, extra))
	return startGateway(t, gatewayOptions{Secret: secret, ScriptsDir: scriptsDir, Args: []string{"--config", cfg}})
}

// sessionJWKS fetches the gateway's session JWKS and checks how it is served: JSON, cacheable,
// public keys only.
func sessionJWKS(t *testing.T, gw *testGateway) jose.JSONWebKeySet {
	t.Helper()
	res := sendWith(t, http.MethodGet, gw.URL+sessionJWKSPath, "", nil, "")
	if res.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", sessionJWKSPath, res.Status, res.Body)
	}
	if ct, cc := res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"); ct != "application/jwk-set+json" || !strings.Contains(cc, "max-age=") {
		t.Errorf("GET %s: Content-Type %q, Cache-Control %q; want a cacheable JWK Set", sessionJWKSPath, ct, cc)
	}
	var raw struct{ Keys []map[string]any }
	if err := json.Unmarshal(res.Body, &raw); err != nil {
		t.Fatalf("JWKS %s: %v", res.Body, err)
	}
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Fatalf("the session JWKS publishes the private parameter %q: %s", private, res.Body)
			}
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(res.Body, &set); err != nil {
		t.Fatalf("JWKS %s: %v", res.Body, err)
	}
	return set
}

// verifyWithJWKS verifies tok with golang-jwt against the key the JWKS has for its kid.
func verifyWithJWKS(t *testing.T, set jose.JSONWebKeySet, alg, tok string) jwt.MapClaims {
	t.Helper()
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		keys := set.Key(kid)
		if len(keys) != 1 {
			return nil, fmt.Errorf("the JWKS has %d keys for kid %q", len(keys), kid)
		}
		return keys[0].Key, nil
	}, jwt.WithValidMethods([]string{alg}))
	if err != nil {
		t.Fatalf("golang-jwt verify against the session JWKS: %v", err)
	}
	return parsed.Claims.(jwt.MapClaims)
}

// sessionCookie reassembles the session cookie the client holds (plain or chunked).
func sessionCookie(t *testing.T, client *http.Client, gw *testGateway) string {
	t.Helper()
	if v := jarCookie(t, client, gw, sessionCookieName); v != "" {
		return v
	}
	var b strings.Builder
	for i := 0; ; i++ {
		v := jarCookie(t, client, gw, fmt.Sprintf("%s.%d", sessionCookieName, i))
		if v == "" {
			break
		}
		b.WriteString(v)
	}
	return b.String()
}

// readSession GETs /api/auth/session with the client's cookies.
func readSession(t *testing.T, client *http.Client, gw *testGateway) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/auth/session", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := do(t, client, req)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/auth/session: %d %s", res.Status, res.Body)
	}
	var session map[string]any
	if err := json.Unmarshal(res.Body, &session); err != nil {
		t.Fatalf("GET /api/auth/session: %s: %v", res.Body, err)
	}
	return session
}

// TestSignedSessionTokenThroughGateway signs in through a real listener with each jws
// algorithm: the session cookie is a JWS that golang-jwt verifies with the secret (HS256) or
// the key the session JWKS publishes for its kid, /api/auth/session answers from it and
// renews it as a JWS, and a tampered, unsigned or oversized cookie is no session (200 {},
// cookie cleared), never a 500. A token too large for one cookie is chunked as NextAuth's is.
func TestSignedSessionTokenThroughGateway(t *testing.T) {
	big := writeFiles(t, map[string]string{"auth.config.js": strings.Replace(shippedConfig(t),
		"token.role = user.role;", `token.role = user.role; token.blob = "x".repeat(6000);`, 1)})
	for _, tc := range []struct {
		alg     string
		scripts string
	}{
		{alg: token.HS256}, {alg: jwk.RS256}, {alg: jwk.ES256}, {alg: jwk.EdDSA},
		{alg: jwk.ES256, scripts: big},
	} {
		name := tc.alg
		if tc.scripts != "" {
			name += " chunked"
		}
		t.Run(name, func(t *testing.T) {
			gw := jwsGateway(t, tc.alg, "", "", tc.scripts)
			client := newBrowserClient(t)
			if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
				t.Fatalf("sign-in: %d %s", res.Status, res.Body)
			}
			tok := sessionCookie(t, client, gw)
			chunked := jarCookie(t, client, gw, sessionCookieName+".0") != ""
			if chunked != (tc.scripts != "") {
				t.Errorf("session cookie chunked: %v, want %v (token of %d bytes)", chunked, tc.scripts != "", len(tok))
			}

			verify := func(tok string) jwt.MapClaims {
				if tc.alg == token.HS256 {
					parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(testGatewaySecret), nil }, jwt.WithValidMethods([]string{"HS256"}))
					if err != nil {
						t.Fatalf("golang-jwt verify with AUTH_SECRET: %v", err)
					}
					return parsed.Claims.(jwt.MapClaims)
				}
				return verifyWithJWKS(t, sessionJWKS(t, gw), tc.alg, tok)
			}
			claims := verify(tok)
			for k, want := range map[string]any{"name": "Jatin", "email": "jatin@example.com", "sub": referenceUser["id"], "role": "admin"} {
				if claims[k] != want {
					t.Errorf("claim %s: got %#v, want %#v", k, claims[k], want)
				}
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != defaultJWTMaxAge {
				t.Errorf("exp - iat = %v, want jwt.maxAge %d", exp-iat, defaultJWTMaxAge)
			}
			if tc.alg == token.HS256 {
				if res := sendWith(t, http.MethodGet, gw.URL+sessionJWKSPath, "", nil, ""); res.Status != http.StatusNotFound {
					t.Errorf("GET %s with HS256: %d, want 404 (the secret is never published)", sessionJWKSPath, res.Status)
				}
			}

			session := readSession(t, client, gw)
			checkSession(t, session, referenceUser)
			renewed := sessionCookie(t, client, gw)
			if renewed == tok {
				t.Errorf("the session read did not renew the cookie")
			}
			if verify(renewed)["jti"] == claims["jti"] {
				t.Errorf("the renewed token has the old jti")
			}

			// Forged cookies: each is no session, and the cookie is cleared.
			parts := strings.Split(tok, ".")
			var payload map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if err := json.Unmarshal(raw, &payload); err != nil {
				t.Fatal(err)
			}
			payload["role"] = "superadmin"
			tampered, _ := json.Marshal(payload)
			none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(payload)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			forgeries := []struct{ name, value string }{
				{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString(tampered) + "." + parts[2]},
				{"alg none", none},
				{"oversized", parts[0] + "." + strings.Repeat("A", token.MaxTokenBytes) + "." + parts[2]},
			}
			if tc.alg != token.HS256 {
				// Key confusion: the published public key, which anyone can fetch, as an
				// HMAC secret under the real kid.
				set := sessionJWKS(t, gw)
				der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
				if err != nil {
					t.Fatal(err)
				}
				pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
				confused := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(payload))
				confused.Header["kid"] = set.Keys[0].KeyID
				v, err := confused.SignedString(pubPEM)
				if err != nil {
					t.Fatal(err)
				}
				forgeries = append(forgeries, struct{ name, value string }{"HS256 keyed with the JWKS public key", v})
			}
			for _, forged := range forgeries {
				res := sendWith(t, http.MethodGet, gw.URL+"/api/auth/session", sessionCookieName+"="+forged.value, nil, "")
				if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != "{}" {
					t.Errorf("%s: GET /api/auth/session = %d %s, want 200 {}", forged.name, res.Status, res.Body)
				}
				if c := findCookie(res.Cookies, sessionCookieName); c == nil || c.MaxAge >= 0 {
					t.Errorf("%s: Set-Cookie %v, want the session cookie cleared", forged.name, res.Header.Values("Set-Cookie"))
				}
			}
		})
	}
}

// TestSignedSessionTokenRotation: a gateway restarted with a new key first and the old one
// after it keeps the sessions the old key signed (no one is signed out) and renews them with
// the new key.
func TestSignedSessionTokenRotation(t *testing.T) {
	const newSecret = "the-new-secret-the-new-secret-0123456789"
	t.Run("HS256 secrets", func(t *testing.T) {
		old := jwsGateway(t, token.HS256, "", "", "")
		client := newBrowserClient(t)
		if res := signInWithCredentials(t, client, old, "jatin", "secret"); res.Status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", res.Status, res.Body)
		}
		cookie := sessionCookie(t, client, old)

		rotated := jwsGateway(t, token.HS256, "", newSecret+","+testGatewaySecret, "")
		renewed := renewedOnRotatedGateway(t, rotated, cookie)
		if _, err := jwt.Parse(renewed.Value, func(*jwt.Token) (any, error) { return []byte(newSecret), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
			t.Errorf("the renewed token is not signed with the new secret: %v", err)
		}
	})
	t.Run("ES256 key files", func(t *testing.T) {
		old := jwsGateway(t, jwk.ES256, "", "", "")
		client := newBrowserClient(t)
		if res := signInWithCredentials(t, client, old, "jatin", "secret"); res.Status != http.StatusOK {
			t.Fatalf("sign-in: %d %s", res.Status, res.Body)
		}
		cookie := sessionCookie(t, client, old)
		oldKey := filepath.Join(old.DataDir, "session-token-es256.pem")
		if info, err := os.Stat(oldKey); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("the generated key %s: %v, %v; want a file of mode 0600", oldKey, info, err)
		}
		next, err := jwk.Generate(jwk.ES256)
		if err != nil {
			t.Fatal(err)
		}
		nextKey := filepath.Join(t.TempDir(), "next.pem")
		if err := jwk.Write(nextKey, next); err != nil {
			t.Fatal(err)
		}

		rotated := jwsGateway(t, jwk.ES256, fmt.Sprintf("    keys: [%s, %s]\n", nextKey, oldKey), "", "")
		set := sessionJWKS(t, rotated)
		if len(set.Keys) != 2 {
			t.Fatalf("rotated JWKS: %d keys, want the new and the old", len(set.Keys))
		}
		if set.Keys[0].KeyID != next.ID {
			t.Errorf("rotated JWKS: first key %q, want the signing key %s", set.Keys[0].KeyID, next.ID)
		}
		renewed := renewedOnRotatedGateway(t, rotated, cookie)
		verifyWithJWKS(t, set, jwk.ES256, renewed.Value)
		header, err := token.Header(renewed.Value)
		if err != nil || !strings.Contains(string(header), `"kid":"`+next.ID+`"`) {
			t.Errorf("renewed token header %s (%v), want kid %s", header, err, next.ID)
		}
		// The old gateway does not know the new key: its answer is no session.
		res := sendWith(t, http.MethodGet, old.URL+"/api/auth/session", sessionCookieName+"="+url.QueryEscape(renewed.Value), nil, "")
		if strings.TrimSpace(string(res.Body)) != "{}" {
			t.Errorf("old gateway, token of the new key: %d %s, want {}", res.Status, res.Body)
		}
	})
}

// TestInteropSignedSessionTokenVerifiesWithJose: the jws session cookie verifies with the
// jose npm package (testdata/interop/jws.mjs), as an app would check it: HS256 with
// AUTH_SECRET's bytes, the asymmetric algorithms against the session JWKS URL. jose refuses
// it with another secret, tampered, and against another gateway's JWKS.
func TestInteropSignedSessionTokenVerifiesWithJose(t *testing.T) {
	node := requireNodeInterop(t)
	if _, err := os.Stat(filepath.Join(node.dir, "node_modules", "jose", "package.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and jose is not installed in %s: %v", node.dir, err)
		}
		t.Skipf("skipping: jose is not installed in %s (run npm ci there): %v", node.dir, err)
	}
	other := jwsGateway(t, jwk.ES256, "", "", "")
	for _, alg := range []string{token.HS256, jwk.RS256, jwk.ES256, jwk.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			gw := jwsGateway(t, alg, "", "", "")
			client := newBrowserClient(t)
			if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
				t.Fatalf("sign-in: %d %s", res.Status, res.Body)
			}
			tok := sessionCookie(t, client, gw)
			verify := func(tok string) ([]byte, error) {
				if alg == token.HS256 {
					return node.run(t.Context(), "jws.mjs", "secret", testGatewaySecret, tok)
				}
				return node.run(t.Context(), "jws.mjs", "jwks", gw.URL+sessionJWKSPath, alg, tok)
			}
			out, err := verify(tok)
			if err != nil {
				t.Fatalf("jose jwtVerify of the session cookie: %v", err)
			}
			var got struct {
				Header  map[string]any `json:"header"`
				Payload map[string]any `json:"payload"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("jws.mjs output %s: %v", out, err)
			}
			if got.Header["alg"] != alg {
				t.Errorf("header %v, want alg %s", got.Header, alg)
			}
			for k, want := range map[string]any{"name": "Jatin", "email": "jatin@example.com", "sub": referenceUser["id"], "role": "admin"} {
				if got.Payload[k] != want {
					t.Errorf("claim %s: got %#v, want %#v", k, got.Payload[k], want)
				}
			}

			parts := strings.Split(tok, ".")
			tampered := parts[0] + "." + parts[1] + "." + flipChar(parts[2], 5)
			if out, err := verify(tampered); err == nil {
				t.Errorf("jose accepted a tampered signature: %s", out)
			}
			if alg == token.HS256 {
				if out, err := node.run(t.Context(), "jws.mjs", "secret", "not-"+testGatewaySecret, tok); err == nil {
					t.Errorf("jose accepted the token with another secret: %s", out)
				}
			} else if out, err := node.run(t.Context(), "jws.mjs", "jwks", other.URL+sessionJWKSPath, alg, tok); err == nil {
				t.Errorf("jose accepted the token against another gateway's JWKS: %s", out)
			}
		})
	}
}

// TestSignedSessionTokenExpiresOnTheGatewayClock: the jws token's exp is checked with serve's
// clock, the one the jwt strategy uses (moved here, not waited for): the sign-in token is a
// session until jwt.maxAge has passed and no session after it. The margins are a minute
// either way, so a slow machine cannot move the outcome (the 15 s tolerance itself is
// engine/token's test).
func TestSignedSessionTokenExpiresOnTheGatewayClock(t *testing.T) {
	clock := &movedClock{}
	cfg := writeConfig(t, "session: {token: {format: jws, alg: ES256}}")
	gw := startGateway(t, gatewayOptions{Now: clock.Now, Args: []string{"--config", cfg}})
	client := newBrowserClient(t)
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", res.Status, res.Body)
	}
	cookie := sessionCookieName + "=" + sessionCookie(t, client, gw)
	clock.advance(defaultJWTMaxAge*time.Second - time.Minute)
	if res := sendWith(t, http.MethodGet, gw.URL+"/api/auth/session", cookie, nil, ""); !strings.Contains(string(res.Body), `"user"`) {
		t.Errorf("a minute before exp: %d %s, want the session", res.Status, res.Body)
	}
	clock.advance(2 * time.Minute)
	res := sendWith(t, http.MethodGet, gw.URL+"/api/auth/session", cookie, nil, "")
	if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != "{}" {
		t.Errorf("a minute past exp: %d %s, want 200 {}", res.Status, res.Body)
	}
	if c := findCookie(res.Cookies, sessionCookieName); c == nil || c.MaxAge >= 0 {
		t.Errorf("a minute past exp: Set-Cookie %v, want the session cookie cleared", res.Header.Values("Set-Cookie"))
	}
}

// TestSignedSessionTokenOpensProxiedRoutes: the proxy reads the jws session as it reads the
// encrypted one: the signed-in request reaches the app with the identity headers, a forged
// one does not reach it.
func TestSignedSessionTokenOpensProxiedRoutes(t *testing.T) {
	up := echoUpstream(t)
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", "proxy-scripts"),
		Args:       []string{"--config", writeConfig(t, fmt.Sprintf("session: {token: {format: jws, alg: EdDSA}}\nroutes:\n  - {name: app, path: /app, upstream: %s}\n", up.URL))},
	})
	client := signedInClient(t, gw)
	api := http.Header{"Accept": {"application/json"}}
	res := get(t, client, gw.URL+"/app/x", api)
	var s seen
	if res.Status != http.StatusOK || json.Unmarshal(res.Body, &s) != nil || s.Path != "/app/x" {
		t.Fatalf("signed in, GET /app/x: %d %s, want it forwarded", res.Status, res.Body)
	}
	if got := s.Headers["X-Callgate-User"]; got != referenceUser["id"] {
		t.Errorf("X-Callgate-User %q, want %q", got, referenceUser["id"])
	}
	parts := strings.Split(sessionCookie(t, client, gw), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims jwt.MapClaims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for _, forged := range []struct{ name, value string }{
		{"forged signature", parts[0] + "." + parts[1] + "." + flipChar(parts[2], 5)},
		{"alg none", none},
		{"oversized", parts[0] + "." + strings.Repeat("A", token.MaxTokenBytes) + "." + parts[2]},
	} {
		if res := sendWith(t, http.MethodGet, gw.URL+"/app/x", sessionCookieName+"="+forged.value, api, ""); res.Status != http.StatusUnauthorized {
			t.Errorf("%s, GET /app/x: %d %s, want 401", forged.name, res.Status, res.Body)
		}
	}
}
