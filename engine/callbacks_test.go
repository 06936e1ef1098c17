package engine_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignInCallbackOutcomes: what signIn returns decides the sign-in exactly as in
// NextAuth v4 (docs/wire.md §3.7 step 2), with the core's same-origin check on returned URLs.
func TestSignInCallbackOutcomes(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "callbacks"})
	tests := []struct {
		username string
		status   int
		body     string
		session  bool
	}{
		{"jane", 200, `{"url":"http://localhost:3000"}`, true},
		{"denied", 403, `{"url":"http://localhost:3000/api/auth/error?error=AccessDenied"}`, false},
		{"elsewhere", 200, `{"url":"http://localhost:3000/welcome"}`, false},
		{"offsite", 200, `{"url":"http://localhost:3000"}`, false},
		{"angry", 200, `{"url":"http://localhost:3000/api/auth/error?error=Nope%20here"}`, false},
		{"buggy", 500, `{"url":"http://localhost:3000/api/auth/error?error=Configuration"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.username, func(t *testing.T) {
			r := gw.browser(t).signIn("password", tc.username, "pw")
			if r.status != tc.status || r.body != tc.body {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.body)
			}
			if got := r.cookie("next-auth.session-token") != ""; got != tc.session {
				t.Errorf("session cookie set: got %v, want %v", got, tc.session)
			}
		})
	}
	if !strings.Contains(gw.logs.String(), "code=UNSAFE_REDIRECT") {
		t.Errorf("the off-site URL from signIn was not logged")
	}
}

// TestCallbackArguments: the jwt and session callbacks get NextAuth v4's argument keys and
// triggers, on sign-in, on a session read and on update().
func TestCallbackArguments(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "callbacks"})
	b := gw.browser(t)
	r := b.signIn("password", "jane", "pw")
	claims, err := gw.keys.Decode(b.get("next-auth.session-token"))
	if err != nil {
		t.Fatalf("sign in: %d %s: %v", r.status, r.body, err)
	}
	want := map[string]any{
		"argKeys": "account,isNewUser,token,trigger,user", "trigger": "signIn", "isNewUser": false,
		"providerAccountId": "u-jane", "sub": "u-jane", "name": "jane", "email": "jane@example.com",
		"picture": "https://img.example.com/jane.png",
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("sign-in token %s: got %v, want %v", k, claims[k], v)
		}
	}

	type seen struct {
		User struct {
			Name  string `json:"name"`
			Image string `json:"image"`
			Seen  struct {
				ArgKeys string          `json:"argKeys"`
				Trigger *string         `json:"trigger"`
				Update  json.RawMessage `json:"update"`
			} `json:"seen"`
		} `json:"user"`
		SessionArgKeys string `json:"sessionArgKeys"`
	}
	var s seen
	r = b.getPage("/api/auth/session")
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("session: %s", r.body)
	}
	if s.User.Seen.ArgKeys != "session,token" || s.User.Seen.Trigger != nil || s.SessionArgKeys != "session,token" {
		t.Errorf("GET /session: jwt keys %q trigger %v, session keys %q; want session,token / null / session,token",
			s.User.Seen.ArgKeys, s.User.Seen.Trigger, s.SessionArgKeys)
	}
	if s.User.Image != "https://img.example.com/jane.png" {
		t.Errorf("default session.user.image: got %q, want the token's picture", s.User.Image)
	}

	tok := b.csrf()
	r = b.do(http.MethodPost, "/api/auth/session", `{"csrfToken":"`+tok+`","data":{"theme":"dark"}}`, "application/json")
	s = seen{}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	if s.User.Seen.ArgKeys != "session,token,trigger" || s.User.Seen.Trigger == nil || *s.User.Seen.Trigger != "update" ||
		string(s.User.Seen.Update) != `{"theme":"dark"}` {
		t.Errorf("update: jwt keys %q trigger %v update %s; want session,token,trigger / update / {\"theme\":\"dark\"}",
			s.User.Seen.ArgKeys, s.User.Seen.Trigger, s.User.Seen.Update)
	}

	// jwt returning null ends the session.
	r = b.do(http.MethodPost, "/api/auth/session", `{"csrfToken":"`+tok+`","data":{"end":true}}`, "application/json")
	if r.status != 200 || r.body != "{}" || r.cookie("next-auth.session-token") != "next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" {
		t.Errorf("jwt returning null: got %d %s %q, want {} and the cookie deleted", r.status, r.body, r.setCookies)
	}
}

// TestAuthorizeArguments: authorize gets the whole form as credentials and req with
// {query, body, headers, method}; a numeric id becomes a string sub.
func TestAuthorizeArguments(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "callbacks"})
	b := gw.browser(t)
	form := url.Values{"username": {"numeric"}, "password": {"pw"}, "csrfToken": {b.csrf()}, "json": {"true"}}
	r := b.postForm("/api/auth/callback/password?from=test", form)
	claims, err := gw.keys.Decode(b.get("next-auth.session-token"))
	if err != nil {
		t.Fatalf("sign in: %d %s: %v", r.status, r.body, err)
	}
	if claims["sub"] != "42" {
		t.Errorf("sub for a numeric id: got %#v, want \"42\"", claims["sub"])
	}
}

// TestCustomPages: pages.signIn, pages.signOut and pages.error move the built-in pages.
func TestCustomPages(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "pages"})
	tests := []struct{ path, location string }{
		{"/api/auth/signin", "/login?callbackUrl=http%3A%2F%2Flocalhost%3A3000"},
		{"/api/auth/signin/credentials", "/login?callbackUrl=http%3A%2F%2Flocalhost%3A3000&error=credentials"},
		{"/api/auth/signin?error=SessionRequired&callbackUrl=%2Fdash", "/login?callbackUrl=http%3A%2F%2Flocalhost%3A3000%2Fdash&error=SessionRequired"},
		{"/api/auth/signout", "/bye"},
		{"/api/auth/error?error=AccessDenied", "/oops?error=AccessDenied"},
		{"/api/auth/error?error=CredentialsSignin", "http://localhost:3000/api/auth/signin?error=CredentialsSignin"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := gw.browser(t).getPage(tc.path)
			if r.status != 302 || r.header.Get("Location") != tc.location {
				t.Errorf("got %d Location %q, want 302 %q", r.status, r.header.Get("Location"), tc.location)
			}
		})
	}
}

// TestBuiltinPages: the sign-in page shows the error message and every credential field;
// values from the request are escaped.
func TestBuiltinPages(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	b := gw.browser(t)
	r := b.getPage("/api/auth/signin?error=CredentialsSignin")
	for _, want := range []string{
		"Sign in failed. Check the details you provided are correct.",
		`action="http://localhost:3000/api/auth/callback/credentials"`,
		`<label for="input-username-for-credentials-provider">Username</label>`,
		`type="password"`,
		`name="csrfToken" value="` + b.csrf() + `"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("sign-in page lacks %q", want)
		}
	}
	r = b.getPage("/api/auth/error?error=" + url.QueryEscape(`<script>alert(1)</script>`))
	if strings.Contains(r.body, "<script>alert(1)") {
		t.Errorf("error page does not escape the error code")
	}
	if r.header.Get("Content-Security-Policy") == "" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("HTML pages lack CSP and frame protection: %v", r.header)
	}
}

// TestHomePage: signed out, a link to sign in; signed in, who you are, the session JSON and
// a sign-out form.
func TestHomePage(t *testing.T) {
	gw := startGateway(t, gatewayConfig{fixture: "conformance"})
	b := gw.browser(t)
	r := b.getPage("/")
	if r.status != 200 || !strings.Contains(r.body, "You are not signed in.") || !strings.Contains(r.body, "/api/auth/signin") {
		t.Fatalf("signed out: got %d %s", r.status, r.body)
	}
	b.signIn("credentials", "jane", "pw")
	r = b.getPage("/")
	for _, want := range []string{"Signed in", "<strong>Jane</strong>", "&#34;email&#34;: &#34;jane@example.com&#34;", `action="http://localhost:3000/api/auth/signout"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("signed in page lacks %q:\n%s", want, r.body)
		}
	}
}
