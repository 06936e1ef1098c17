package engine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests are the conformance checks of docs/wire.md §11, one subtest per
// numbered check, run over a real listener against the conformance app in
// testdata/scripts/conformance.

const origin = "http://localhost:3000"

func TestConformanceProviders(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	r := gw.browser(t).getPage("/api/auth/providers")
	want := `{"credentials":{"id":"credentials","name":"Credentials","type":"credentials","signinUrl":"http://localhost:3000/api/auth/signin/credentials","callbackUrl":"http://localhost:3000/api/auth/callback/credentials"}}`
	if r.status != 200 || r.body != want {
		t.Errorf("got %d %s, want 200 %s", r.status, r.body, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	if len(r.setCookies) != 0 {
		t.Errorf("got Set-Cookie %q, want none", r.setCookies)
	}
}

func TestConformanceCSRF(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	b := gw.browser(t)
	r := b.getPage("/api/auth/csrf")
	var body struct{ CSRFToken string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(body.CSRFToken) {
		t.Fatalf("got body %s, want {csrfToken: 64 hex}", r.body)
	}
	for h, want := range map[string]string{"Cache-Control": "private, no-cache, no-store", "Pragma": "no-cache", "Expires": "0", "Content-Type": "application/json"} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	sum := sha256.Sum256([]byte(body.CSRFToken + testSecret))
	wantCookies := []string{
		"next-auth.csrf-token=" + body.CSRFToken + "%7C" + hex.EncodeToString(sum[:]) + "; Path=/; HttpOnly; SameSite=Lax",
		"next-auth.callback-url=http%3A%2F%2Flocalhost%3A3000; Path=/; HttpOnly; SameSite=Lax",
	}
	if strings.Join(r.setCookies, "\n") != strings.Join(wantCookies, "\n") {
		t.Errorf("Set-Cookie:\ngot  %q\nwant %q", r.setCookies, wantCookies)
	}

	// Check 3: the same token again, and no cookie at all.
	r2 := b.getPage("/api/auth/csrf")
	if !strings.Contains(r2.body, body.CSRFToken) || len(r2.setCookies) != 0 {
		t.Errorf("second GET /csrf: got %s with Set-Cookie %q, want the same token and no cookie", r2.body, r2.setCookies)
	}

	// A CSRF cookie whose hash does not verify is replaced.
	b.set("next-auth.csrf-token", strings.Repeat("0", 64)+"%7C"+strings.Repeat("f", 64))
	r3 := b.getPage("/api/auth/csrf")
	if strings.Contains(r3.body, strings.Repeat("0", 64)) || len(r3.cookieNames()) != 1 || r3.cookieNames()[0] != "next-auth.csrf-token" {
		t.Errorf("forged CSRF cookie: got %s, Set-Cookie %q; want a new token", r3.body, r3.setCookies)
	}
}

func TestConformanceCredentialsFlow(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	b := gw.browser(t)

	// Check 4: no session.
	if r := b.getPage("/api/auth/session"); r.status != 200 || r.body != "{}" {
		t.Errorf("session without cookie: got %d %s, want 200 {}", r.status, r.body)
	}
	tok := b.csrf()

	// Checks 5 and 6: wrong password.
	r := b.postForm("/api/auth/callback/credentials", url.Values{"password": {"bad"}, "csrfToken": {tok}, "json": {"true"}})
	wantURL := `{"url":"http://localhost:3000/api/auth/error?error=CredentialsSignin&provider=credentials"}`
	if r.status != 401 || r.body != wantURL || r.cookie("next-auth.session-token") != "" {
		t.Errorf("wrong password json: got %d %s %q, want 401 %s and no session cookie", r.status, r.body, r.setCookies, wantURL)
	}
	r = b.postForm("/api/auth/callback/credentials", url.Values{"password": {"bad"}, "csrfToken": {tok}})
	if loc := r.header.Get("Location"); r.status != 302 || loc != "http://localhost:3000/api/auth/error?error=CredentialsSignin&provider=credentials" {
		t.Errorf("wrong password form: got %d Location %q", r.status, loc)
	}

	// Check 7: a wrong CSRF token never reaches authorize.
	before := strings.Count(gw.logs.String(), "authorize called")
	r = b.postForm("/api/auth/callback/credentials", url.Values{"password": {"pw"}, "csrfToken": {"wrong"}, "json": {"true"}})
	if r.status != 200 || r.body != `{"url":"http://localhost:3000/api/auth/signin?csrf=true"}` {
		t.Errorf("wrong csrf: got %d %s", r.status, r.body)
	}
	if after := strings.Count(gw.logs.String(), "authorize called"); after != before {
		t.Errorf("authorize ran %d times with a wrong CSRF token, want 0", after-before)
	}

	// Check 8: success.
	signedInAt := time.Now()
	r = b.postForm("/api/auth/callback/credentials", url.Values{"password": {"pw"}, "csrfToken": {tok}, "callbackUrl": {"/dash"}, "json": {"true"}})
	if r.status != 200 || r.body != `{"url":"http://localhost:3000/dash"}` {
		t.Fatalf("sign in: got %d %s", r.status, r.body)
	}
	sc := r.cookie("next-auth.session-token")
	m := regexp.MustCompile(`^next-auth\.session-token=(eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0\.\.[^;]+); Path=/; Expires=([^;]+); HttpOnly; SameSite=Lax$`).FindStringSubmatch(sc)
	if m == nil {
		t.Fatalf("session cookie: got %q", sc)
	}
	expires, err := time.Parse(http.TimeFormat, m[2])
	if err != nil || expires.Sub(signedInAt.Add(30*24*time.Hour)).Abs() > 5*time.Second {
		t.Errorf("session cookie Expires: got %s, want about now+30d", m[2])
	}
	claims, err := gw.keys.Decode(m[1])
	if err != nil {
		t.Fatalf("decode session cookie: %v", err)
	}
	if claims["name"] != "Jane" || claims["email"] != "jane@example.com" || claims["sub"] != "42" {
		t.Errorf("claims: got %v", claims)
	}
	if _, ok := claims["picture"]; ok {
		t.Errorf("claims: got a picture key, want none: %v", claims)
	}
	if d := claims["exp"].(float64) - claims["iat"].(float64); d != 2592000 {
		t.Errorf("exp-iat: got %v, want 2592000", d)
	}
	if _, ok := claims["jti"].(string); !ok {
		t.Errorf("claims: no jti: %v", claims)
	}

	// Check 9: the session, and a renewed cookie.
	first := b.get("next-auth.session-token")
	r = b.getPage("/api/auth/session")
	var session struct {
		User    map[string]any `json:"user"`
		Expires string         `json:"expires"`
	}
	if err := json.Unmarshal([]byte(r.body), &session); err != nil {
		t.Fatalf("session body %s: %v", r.body, err)
	}
	if len(session.User) != 2 || session.User["name"] != "Jane" || session.User["email"] != "jane@example.com" {
		t.Errorf("session user: got %v, want {name: Jane, email: jane@example.com}", session.User)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(session.Expires) {
		t.Errorf("expires: got %q, want an ISO time with milliseconds", session.Expires)
	}
	if again := b.get("next-auth.session-token"); again == "" || again == first {
		t.Errorf("GET /session did not re-issue the session cookie")
	}
	if r.header.Get("Cache-Control") != "private, no-cache, no-store" {
		t.Errorf("GET /session Cache-Control: got %q", r.header.Get("Cache-Control"))
	}

	// Check 10: update() — a JSON POST with the CSRF token.
	r = b.do(http.MethodPost, "/api/auth/session", `{"csrfToken":"`+tok+`","data":{"x":1}}`, "application/json")
	if r.status != 200 || !strings.Contains(r.body, `"name":"Jane"`) || r.header.Get("Cache-Control") != "" {
		t.Errorf("update: got %d %s Cache-Control %q, want 200 session and no Cache-Control", r.status, r.body, r.header.Get("Cache-Control"))
	}
	// Check 11.
	r = b.do(http.MethodPost, "/api/auth/session", `{"csrfToken":"wrong"}`, "application/json")
	if r.status != 400 || r.body != "{}" {
		t.Errorf("update with a wrong CSRF token: got %d %s, want 400 {}", r.status, r.body)
	}

	// Check 14: sign-out with a bad CSRF token keeps the session.
	r = b.postForm("/api/auth/signout", url.Values{"csrfToken": {"wrong"}, "json": {"true"}})
	if r.status != 200 || r.body != `{"url":"http://localhost:3000/api/auth/signout?csrf=true"}` || r.cookie("next-auth.session-token") != "" {
		t.Errorf("signout bad csrf: got %d %s %q", r.status, r.body, r.setCookies)
	}
	// Check 13: sign-out refuses an off-site callbackUrl and clears the cookie.
	r = b.postForm("/api/auth/signout", url.Values{"csrfToken": {tok}, "callbackUrl": {"http://evil.com/x"}, "json": {"true"}})
	if r.status != 200 || r.body != `{"url":"http://localhost:3000"}` {
		t.Errorf("signout: got %d %s", r.status, r.body)
	}
	if got := r.cookie("next-auth.session-token"); got != "next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("signout Set-Cookie: got %q", got)
	}
	if !strings.Contains(gw.logs.String(), "signOut event sub=42 name=Jane") {
		t.Errorf("events.signOut did not receive the token; log:\n%s", gw.logs.String())
	}
	if r := b.getPage("/api/auth/session"); r.body != "{}" {
		t.Errorf("session after sign-out: got %s, want {}", r.body)
	}
}

func TestConformanceInvalidTokens(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	clear := "next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
	tokenExpiredBy := func(d time.Duration) string {
		// A clock set so that exp = now - d.
		past := newKeyRingAt(t, time.Now().Add(-time.Hour-d))
		tok, err := past.Encode(map[string]any{"name": "Jane", "sub": "42"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name   string
		cookie string
		valid  bool
	}{
		{"garbage", "garbage", false},
		{"expired 20s ago", tokenExpiredBy(20 * time.Second), false},
		{"expired 10s ago (within the 15 s tolerance)", tokenExpiredBy(10 * time.Second), true},
		{"other secret", mustEncode(t, newKeyRingWith(t, "other-secret"), map[string]any{"sub": "1"}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := gw.browser(t)
			b.set("next-auth.session-token", tc.cookie)
			r := b.getPage("/api/auth/session")
			if tc.valid {
				if r.status != 200 || !strings.Contains(r.body, `"name":"Jane"`) {
					t.Errorf("got %d %s, want the session", r.status, r.body)
				}
				return
			}
			if r.status != 200 || r.body != "{}" || r.cookie("next-auth.session-token") != clear {
				t.Errorf("got %d %s %q, want 200 {} and %q", r.status, r.body, r.setCookies, clear)
			}
		})
	}
}

func TestConformanceErrorsAndUnsupported(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	tests := []struct {
		method, path string
		status       int
		location     string
		contentType  string
		body         string
	}{
		{"GET", "/api/auth/error?error=CredentialsSignin", 302, "http://localhost:3000/api/auth/signin?error=CredentialsSignin", "", ""},
		{"GET", "/api/auth/error?error=AccessDenied", 403, "", "text/html; charset=utf-8", ""},
		{"GET", "/api/auth/error?error=Verification", 403, "", "text/html; charset=utf-8", ""},
		{"GET", "/api/auth/error?error=Configuration", 500, "", "text/html; charset=utf-8", ""},
		{"GET", "/api/auth/error", 200, "", "text/html; charset=utf-8", ""},
		{"GET", "/api/auth/error/AccessDenied", 403, "", "text/html; charset=utf-8", ""},
		{"GET", "/api/auth/session?callbackUrl=javascript:alert(1)", 500, "", "application/json",
			`{"message":"There is a problem with the server configuration. Check the server logs for more information."}`},
		{"GET", "/api/auth/callback/credentials", 500, "", "text/plain; charset=utf-8", "Error: Callback for provider type credentials not supported"},
		{"PUT", "/api/auth/session", 400, "", "text/plain; charset=utf-8", "Error: This action with HTTP PUT is not supported by NextAuth.js"},
		{"GET", "/api/auth/nonsense", 400, "", "text/plain; charset=utf-8", "Error: This action with HTTP GET is not supported by NextAuth.js"},
		{"POST", "/api/auth/callback/nope", 400, "", "text/plain; charset=utf-8", "Error: This action with HTTP POST is not supported by NextAuth.js"},
		{"POST", "/api/auth/_log", 200, "", "application/json", "{}"},
		{"GET", "/api/auth/signin/credentials", 200, "", "text/html; charset=utf-8", ""},
		{"GET", "/api/auth/verify-request", 200, "", "text/html; charset=utf-8", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := gw.browser(t).do(tc.method, tc.path, "", "")
			if r.status != tc.status {
				t.Errorf("status: got %d, want %d (body %s)", r.status, tc.status, r.body)
			}
			if got := r.header.Get("Location"); got != tc.location {
				t.Errorf("Location: got %q, want %q", got, tc.location)
			}
			if tc.contentType != "" && r.header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type: got %q, want %q", r.header.Get("Content-Type"), tc.contentType)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("body: got %q, want %q", r.body, tc.body)
			}
		})
	}
}

func TestConformanceSecureCookiesAndChunking(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "callbacks", url: "https://app.example.com"})
	b := gw.browser(t)
	r := b.getPage("/api/auth/csrf")
	if c := r.setCookies[0]; !regexp.MustCompile(`^__Host-next-auth\.csrf-token=[0-9a-f]{64}%7C[0-9a-f]{64}; Path=/; HttpOnly; Secure; SameSite=Lax$`).MatchString(c) {
		t.Errorf("CSRF cookie: got %q", c)
	}
	if c := r.setCookies[1]; c != "__Secure-next-auth.callback-url=https%3A%2F%2Fapp.example.com; Path=/; HttpOnly; Secure; SameSite=Lax" {
		t.Errorf("callback-url cookie: got %q", c)
	}
	r = b.signIn("password", "big", "pw")
	names := r.cookieNames()
	if strings.Join(names, ",") != "__Secure-next-auth.session-token.0,__Secure-next-auth.session-token.1" {
		t.Fatalf("big token: got cookies %q, want .0 and .1", names)
	}
	chunk0 := strings.TrimPrefix(strings.SplitN(r.setCookies[0], ";", 2)[0], "__Secure-next-auth.session-token.0=")
	if len(chunk0) != 3933 {
		t.Errorf("chunk .0: got %d characters, want 3933", len(chunk0))
	}
	// A session read reassembles the chunks.
	if s := b.getPage("/api/auth/session"); !strings.Contains(s.body, `"name":"big"`) {
		t.Fatalf("session from chunks: got %s", s.body)
	}
	tok := b.csrf()
	r = b.do(http.MethodPost, "/api/auth/session", `{"csrfToken":"`+tok+`","data":{"small":true}}`, "application/json")
	want := []string{
		"__Secure-next-auth.session-token.0=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax",
		"__Secure-next-auth.session-token.1=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax",
	}
	if len(r.setCookies) != 3 || r.setCookies[0] != want[0] || r.setCookies[1] != want[1] || !strings.HasPrefix(r.setCookies[2], "__Secure-next-auth.session-token=eyJ") {
		t.Errorf("back to one cookie: got %q", r.setCookies)
	}
}

func TestSecretRotation(t *testing.T) {
	old := startGateway(t, gatewayConfig{fixture: "conformance", secrets: []string{"old-secret"}})
	b := old.browser(t)
	if r := b.signIn("credentials", "jane", "pw"); r.status != 200 {
		t.Fatalf("sign in: %d %s", r.status, r.body)
	}
	csrfCookie := b.get("next-auth.csrf-token")
	sessionCookie := b.get("next-auth.session-token")

	rotated := startGateway(t, gatewayConfig{fixture: "conformance", secrets: []string{"new-secret", "old-secret"}})
	b2 := rotated.browser(t)
	b2.set("next-auth.csrf-token", csrfCookie)
	b2.set("next-auth.session-token", sessionCookie)
	r := b2.getPage("/api/auth/session")
	if !strings.Contains(r.body, `"name":"Jane"`) {
		t.Fatalf("session under the rotated ring: got %s", r.body)
	}
	if r.cookie("next-auth.csrf-token") != "" {
		t.Errorf("a CSRF cookie hashed with the old secret was replaced: %q", r.setCookies)
	}
	// The renewed cookie is encrypted with the new secret only.
	newOnly := newKeyRingWith(t, "new-secret")
	if _, err := newOnly.Decode(b2.get("next-auth.session-token")); err != nil {
		t.Errorf("renewed cookie does not decode with the new secret: %v", err)
	}
	removed := startGateway(t, gatewayConfig{fixture: "conformance", secrets: []string{"new-secret"}})
	b3 := removed.browser(t)
	b3.set("next-auth.session-token", sessionCookie)
	if r := b3.getPage("/api/auth/session"); r.body != "{}" {
		t.Errorf("old token after the old secret was removed: got %s, want {}", r.body)
	}
}

// TestJSONSwitchIsAString: only the string "true" in the parsed body selects the JSON
// answer; a JSON boolean true gives the 302 (quirk 4).
func TestJSONSwitchIsAString(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	b := gw.browser(t)
	tok := b.csrf()
	r := b.do(http.MethodPost, "/api/auth/signout", `{"csrfToken":"`+tok+`","json":true}`, "application/json")
	if r.status != 302 || r.header.Get("Location") != "http://localhost:3000" {
		t.Errorf("json:true boolean: got %d %q, want 302 to the origin", r.status, r.header.Get("Location"))
	}
	r = b.do(http.MethodPost, "/api/auth/signout", `{"csrfToken":"`+tok+`","json":"true"}`, "application/json")
	if r.status != 200 || r.body != `{"url":"http://localhost:3000"}` {
		t.Errorf("json:\"true\" string: got %d %s, want 200 {url}", r.status, r.body)
	}
}

// TestOversizedBody: a body over the limit is refused with 413 before anything runs.
func TestOversizedBody(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	b := gw.browser(t)
	r := b.do(http.MethodPost, "/api/auth/callback/credentials", "password="+strings.Repeat("a", 2<<20), "application/x-www-form-urlencoded")
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("got %d, want 413", r.status)
	}
}
