package engine_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// keyOrderScript builds its token and session in orders no sorting would give, reads the
// order it was handed, and changes the token inside session(), which NextAuth encodes
// after session() has run.
const keyOrderScript = `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ credentials: { username: {}, password: {} },
    authorize: (c) => c.password === "pw" ? { id: "u1", name: "Jane", email: "jane@example.com", role: "admin" } : null })],
  callbacks: {
    async jwt({ token, user }) {
      if (user) return { zeta: 1, ...token, alpha: user.role, seen: Object.keys(token).join(",") };
      token.read = (token.read ?? 0) + 1;
      return token;
    },
    async session({ session, token }) {
      token.touched = "by session";
      return { zz: "first", user: { role: token.alpha, ...session.user }, handed: Object.keys(session).join(",") + "|" + Object.keys(session.user).join(","), expires: session.expires, aa: "last" };
    },
  },
};
`

// TestKeyOrderAsBuilt: the /session body and the session token keep the insertion order of
// the objects the callbacks returned, the default session is {user: {name, email, image},
// expires} and the new token {name, email, picture, sub} in NextAuth's order, and the
// token is encoded after session(), with what session() changed on it.
func TestKeyOrderAsBuilt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(keyOrderScript), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 29, 8, 43, 6, 0, time.UTC)
	gw := startGateway(t, gatewayConfig{fixture: dir, now: func() time.Time { return at }})
	b := gw.browser(t)
	if r := b.signIn("credentials", "jane", "pw"); r.status != 200 {
		t.Fatalf("sign in: %d %s", r.status, r.body)
	}
	payloadKeys := func() []string {
		t.Helper()
		_, payload, err := gw.keys.DecodePayload(b.get("next-auth.session-token"))
		if err != nil {
			t.Fatal(err)
		}
		return testkit.ObjectKeys(t, payload)
	}
	// The sign-in token: jwt saw NextAuth's new token {name, email, picture, sub} and
	// returned zeta first; iat, exp and jti are appended by the encoding.
	if got, want := payloadKeys(), []string{"zeta", "name", "email", "sub", "alpha", "seen", "iat", "exp", "jti"}; !slices.Equal(got, want) {
		t.Errorf("sign-in token claims: got %v, want %v", got, want)
	}
	_, payload, _ := gw.keys.DecodePayload(b.get("next-auth.session-token"))
	if !strings.Contains(string(payload), `"seen":"name,email,picture,sub"`) {
		t.Errorf("jwt at sign-in was handed %s, want the token keys name,email,picture,sub", payload)
	}

	r := b.do(http.MethodGet, "/api/auth/session", "", "")
	want := `{"zz":"first","user":{"role":"admin","name":"Jane","email":"jane@example.com"},"handed":"user,expires|name,email,image","expires":"2026-12-29T08:43:06.000Z","aa":"last"}`
	if r.status != 200 || r.body != want {
		t.Errorf("/session:\ngot  %d %s\nwant %s", r.status, r.body, want)
	}
	// The read token: the cookie's claims in their order (iat, exp, jti set in place), then
	// what jwt and session added, in the order they added it.
	if got, want := payloadKeys(), []string{"zeta", "name", "email", "sub", "alpha", "seen", "iat", "exp", "jti", "read", "touched"}; !slices.Equal(got, want) {
		t.Errorf("renewed token claims: got %v, want %v", got, want)
	}
	_, payload, _ = gw.keys.DecodePayload(b.get("next-auth.session-token"))
	if !regexp.MustCompile(`"read":1,"touched":"by session"}$`).Match(payload) {
		t.Errorf("renewed token %s: want session()'s change on it, encoded after session()", payload)
	}
}
