package engine_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// TestUndefinedCallbacksUseDefaults: with a script that defines no callback and no event,
// the engine asks the typed API (Defines) and applies NextAuth's defaults as it did with
// the string API: signIn allows, redirect keeps same-origin URLs only, jwt makes the token
// from the user, session shows the token's name and email.
func TestUndefinedCallbacksUseDefaults(t *testing.T) {
	dir := t.TempDir()
	src := `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ credentials: { username: {}, password: {} },
    authorize: (c) => c.password === "pw" ? { id: "u1", name: "Jane", email: "jane@example.com" } : null })],
};
`
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, gatewayConfig{fixture: dir})
	for _, tt := range []struct{ callbackURL, want string }{
		{"/dash", "http://localhost:3000/dash"},
		{"https://evil.example/x", "http://localhost:3000"},
	} {
		b := gw.browser(t)
		r := b.postForm("/api/auth/callback/credentials", url.Values{"username": {"jane"}, "password": {"pw"},
			"csrfToken": {b.csrf()}, "json": {"true"}, "callbackUrl": {tt.callbackURL}})
		var body struct{ URL string }
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 200 || body.URL != tt.want {
			t.Fatalf("sign in with callbackUrl %s: got %d %s, want url %s", tt.callbackURL, r.status, r.body, tt.want)
		}
		claims, err := gw.keys.Decode(b.get("next-auth.session-token"))
		if err != nil {
			t.Fatal(err)
		}
		if claims["sub"] != "u1" || claims["name"] != "Jane" || claims["email"] != "jane@example.com" {
			t.Errorf("default token: got %v", claims)
		}
		r = b.getPage("/api/auth/session")
		var s struct {
			User    map[string]any `json:"user"`
			Expires string         `json:"expires"`
		}
		if err := json.Unmarshal([]byte(r.body), &s); err != nil || s.Expires == "" || len(s.User) != 2 ||
			s.User["name"] != "Jane" || s.User["email"] != "jane@example.com" {
			t.Errorf("default session: got %d %s", r.status, r.body)
		}
	}
}
