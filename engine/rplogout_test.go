package engine_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestSignoutThroughProviderEndSession: a sign-out of a session started with a provider
// that has logout.endSession on keeps NextAuth's semantics (CSRF, the session cookie
// cleared, events.signOut) and sends the browser on to the provider's
// end_session_endpoint, with the session's own ID token as id_token_hint, the client id,
// and the callback URL as post_logout_redirect_uri once the core has checked it. With
// json=true (next-auth/react's signOut()) that URL is the {url} answer.
func TestSignoutThroughProviderEndSession(t *testing.T) {
	tests := []struct {
		name, provider, callbackURL string
		json                        bool
		// wantRedirect is post_logout_redirect_uri; "" means the sign-out stays at the gateway
		// and goes to wantLocal.
		wantRedirect, wantLocal string
	}{
		{name: "json", provider: "rp", callbackURL: gatewayOrigin + "/bye", json: true, wantRedirect: gatewayOrigin + "/bye"},
		{name: "form post", provider: "rp", callbackURL: gatewayOrigin + "/bye", wantRedirect: gatewayOrigin + "/bye"},
		{name: "relative callback URL", provider: "rp", callbackURL: "/bye?x=1", json: true, wantRedirect: gatewayOrigin + "/bye?x=1"},
		{name: "another origin is not passed on", provider: "rp", callbackURL: "http://evil.example/x", json: true, wantRedirect: gatewayOrigin},
		{name: "provider without endSession", provider: "test", callbackURL: gatewayOrigin + "/bye", json: true, wantLocal: gatewayOrigin + "/bye"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := startTestIssuer(t, time.Now, time.Hour)
			g := startLogoutGateway(t, iss, "jwt", time.Now)
			iss.setClaims(func(c map[string]any) { c["sid"] = "sid-rp" })
			b := g.browser(t)
			if r := b.getPage(authorize(t, b, tt.provider)); r.status != 302 || errorCode(r) != "" {
				t.Fatalf("sign in: got %d Location %q", r.status, r.header.Get("Location"))
			}
			form := url.Values{"csrfToken": {b.csrf()}, "callbackUrl": {tt.callbackURL}}
			if tt.json {
				form.Set("json", "true")
			}
			r := b.postForm("/api/auth/signout", form)
			target := r.header.Get("Location")
			if tt.json {
				var body struct{ URL string }
				if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 200 {
					t.Fatalf("POST /signout: got %d %s, want 200 {url}", r.status, r.body)
				}
				target = body.URL
			} else if r.status != 302 {
				t.Fatalf("POST /signout: got %d, want 302", r.status)
			}
			if s, _ := readSession(t, b); s.User.Email != "" {
				t.Errorf("the session cookie outlived the sign-out: %+v", s)
			}
			if !strings.Contains(strings.ReplaceAll(g.logs.String(), `\"`, `"`), `signOut event {"token":{`) {
				t.Errorf("events.signOut({token}) did not run; log:\n%s", g.logs.String())
			}
			if tt.wantLocal != "" {
				if target != tt.wantLocal {
					t.Errorf("sign-out went to %q, want %q", target, tt.wantLocal)
				}
				return
			}
			u, err := url.Parse(target)
			if err != nil || !strings.HasPrefix(target, iss.issuer()+"/oauth2/sessions/logout?") {
				t.Fatalf("sign-out went to %q, want the provider's end_session_endpoint", target)
			}
			q := u.Query()
			if q.Get("ui") != "plain" || q.Get("client_id") != iss.clientID || q.Get("post_logout_redirect_uri") != tt.wantRedirect {
				t.Errorf("end-session query %v: want ui kept, client_id %q, post_logout_redirect_uri %q", q, iss.clientID, tt.wantRedirect)
			}
			// The hint is the ID token this session signed in with: the issuer's signature,
			// its sid.
			jws, err := jose.ParseSigned(q.Get("id_token_hint"), []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatalf("id_token_hint %q: %v", q.Get("id_token_hint"), err)
			}
			payload, err := jws.Verify(&iss.key.PublicKey)
			if err != nil {
				t.Fatalf("id_token_hint is not the issuer's: %v", err)
			}
			var claims struct{ Sid, Sub string }
			if err := json.Unmarshal(payload, &claims); err != nil || claims.Sid != "sid-rp" || claims.Sub != "user-7" {
				t.Errorf("id_token_hint claims %s: want sub user-7, sid sid-rp", payload)
			}
		})
	}
}
