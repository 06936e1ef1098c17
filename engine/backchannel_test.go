package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
	"github.com/callgate/callgate/store/bolt"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0) against the test issuer,
// whose logout tokens the tests sign and shape; engine/oauth_hydra_test.go and
// cmd/gateway/logout_test.go run it against Hydra.

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutScript signs in through the test issuer with back-channel logout on ("test") and
// off ("plain"). Its jwt callback builds a new token object, as many scripts do, and its
// events.signOut logs what it was given.
const logoutScript = `
import OIDC from "callgate/providers/oidc";
const common = { issuer: %q, clientId: %q, clientSecret: %q };
export default {
  session: { strategy: %q },
  providers: [
    OIDC({ ...common, id: "test", name: "Test issuer", logout: { backchannel: true } }),
    OIDC({ ...common, id: "plain", name: "Test issuer without logout" }),
    OIDC({ ...common, id: "rp", name: "Test issuer, signing out there too", logout: { endSession: true } }),
  ],
  callbacks: {
    jwt({ token }) { return { name: token.name, email: token.email, sub: token.sub }; },
  },
  events: {
    signOut(message) { console.log("signOut event " + JSON.stringify(message)); },
  },
};
`

// startLogoutGateway runs a gateway with a bolt store for the test issuer iss.
func startLogoutGateway(t *testing.T, iss *testIssuer, strategy string, now func() time.Time) *gateway {
	g, _ := startLogoutGatewayWithStore(t, iss, strategy, now)
	return g
}

func startLogoutGatewayWithStore(t *testing.T, iss *testIssuer, strategy string, now func() time.Time) (*gateway, store.Store) {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(logoutScript, iss.issuer(), iss.clientID, iss.clientSecret, strategy)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin, store: st, now: now}), st
}

// signInWithSID signs a new browser in through provider "test", whose ID token names the
// provider session sid.
func signInWithSID(t *testing.T, g *gateway, iss *testIssuer, sid string) *browser {
	t.Helper()
	iss.setClaims(func(c map[string]any) { c["sid"] = sid })
	b := g.browser(t)
	if r := b.getPage(authorize(t, b, "test")); r.status != 302 || errorCode(r) != "" {
		t.Fatalf("sign in (sid %s): got %d Location %q", sid, r.status, r.header.Get("Location"))
	}
	if s, _ := readSession(t, b); s.User.Email != "grace@example.com" {
		t.Fatalf("sign in (sid %s): session %+v, want Grace", sid, s)
	}
	return b
}

// logoutClaims are valid logout token claims for iss naming sid.
func logoutClaims(iss *testIssuer, sid string) map[string]any {
	return map[string]any{
		"iss": iss.issuer(), "aud": iss.clientID, "iat": time.Now().Unix(), "jti": rand.Text(),
		"events": map[string]any{backchannelEvent: map[string]any{}}, "sid": sid,
	}
}

// signLogoutTokenKID signs claims with a new key under kid.
func signLogoutTokenKID(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	return signJWS(t, newECKey(t), kid, "logout+jwt", claims)
}

// signLogoutToken signs claims with key (the issuer's published one unless given) under
// the issuer's key id, with typ as the header's typ ("" for none).
func signLogoutToken(t *testing.T, iss *testIssuer, claims map[string]any, typ string, key *ecdsa.PrivateKey) string {
	t.Helper()
	if key == nil {
		key = iss.key
	}
	return signJWS(t, key, iss.keyID, typ, claims)
}

// signJWS signs claims with key (ES256) under kid, with typ as the header's typ ("" for
// none).
func signJWS(t *testing.T, key *ecdsa.PrivateKey, kid, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type logoutReply struct {
	status       int
	cacheControl string
	cookies      []string
	body         string
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// postLogout posts body to the gateway's back-channel logout endpoint of provider, as the
// provider does: no cookies.
func postLogout(t *testing.T, g *gateway, provider, contentType, body string) logoutReply {
	t.Helper()
	resp, err := http.Post(g.srv.URL+"/api/auth/backchannel-logout/"+provider, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST back-channel logout: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := logoutReply{status: resp.StatusCode, cacheControl: resp.Header.Get("Cache-Control"), cookies: resp.Header.Values("Set-Cookie"), body: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("back-channel logout answered %d with %q: not JSON: %v", r.status, b, err)
		}
	}
	return r
}

func postLogoutToken(t *testing.T, g *gateway, provider, token string) logoutReply {
	t.Helper()
	return postLogout(t, g, provider, "application/x-www-form-urlencoded", url.Values{"logout_token": {token}}.Encode())
}

// proxyReads reports whether the reverse proxy's session read (SessionFromRequest)
// finds a session for the cookies of cookieHeader.
func proxyReads(t *testing.T, g *gateway, cookieHeader string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, gatewayOrigin+"/app", nil)
	req.Header.Set("Cookie", cookieHeader)
	sess, err := g.eng.SessionFromRequest(req)
	if err != nil {
		t.Fatalf("SessionFromRequest: %v", err)
	}
	return sess != nil
}

// sessionGone awaits b's session ending.
func sessionGone(t *testing.T, b *browser, what string) {
	t.Helper()
	testkit.WaitFor(t, what, 5*time.Second, func() error {
		r := b.getPage("/api/auth/session")
		if r.status != 200 || r.body != "{}" {
			return fmt.Errorf("GET /session: %d %s", r.status, r.body)
		}
		return nil
	})
}

// TestBackchannelLogoutEndsProviderSessions signs in three browsers through the test
// issuer (provider sessions sid-a, sid-a again, sid-b) and ends them from the provider:
// a logout by sid ends exactly the sessions started from it; a logout by sub alone ends
// every session of that subject with the provider, and not one started after it.
func TestBackchannelLogoutEndsProviderSessions(t *testing.T) {
	iss := startTestIssuer(t, time.Now, time.Hour)
	clock := &jumpClock{}
	g := startLogoutGateway(t, iss, "jwt", clock.now)
	a1 := signInWithSID(t, g, iss, "sid-a")
	a2 := signInWithSID(t, g, iss, "sid-a")
	b := signInWithSID(t, g, iss, "sid-b")

	a1Cookies := a1.cookieHeader()
	if !proxyReads(t, g, a1Cookies) {
		t.Fatal("the proxy finds no session before the logout")
	}
	r := postLogoutToken(t, g, "test", signLogoutToken(t, iss, logoutClaims(iss, "sid-a"), "logout+jwt", nil))
	if r.status != 200 || r.body != "" || r.cacheControl != "no-store" || len(r.cookies) != 0 {
		t.Fatalf("logout by sid: got %d %q Cache-Control %q cookies %v, want 200, empty, no-store, no cookie", r.status, r.body, r.cacheControl, r.cookies)
	}
	sessionGone(t, a1, "the first sid-a session ends")
	sessionGone(t, a2, "the second sid-a session ends")
	if proxyReads(t, g, a1Cookies) {
		t.Error("the proxy still finds the sid-a session after the logout")
	}
	if s, _ := readSession(t, b); s.User.Email != "grace@example.com" {
		t.Fatalf("the sid-b session after the sid-a logout: got %+v, want it alive", s)
	}
	// Reading the session renewed its token through a jwt callback that builds a new
	// object: the provider session must still be in it, or the next logout misses it.
	for range 2 {
		readSession(t, b)
	}
	logs := strings.ReplaceAll(g.logs.String(), `\"`, `"`)
	if !strings.Contains(logs, `signOut event {"token":{"oidc_session":{"provider":"test","sid":"sid-a"}}}`) {
		t.Errorf("events.signOut was not told of the sid-a logout; log:\n%s", logs)
	}

	claims := logoutClaims(iss, "")
	delete(claims, "sid")
	claims["sub"] = "user-7"
	if r := postLogoutToken(t, g, "test", signLogoutToken(t, iss, claims, "", nil)); r.status != 200 {
		t.Fatalf("logout by sub: got %d %s, want 200", r.status, r.body)
	}
	sessionGone(t, b, "the sid-b session ends with the subject's logout")

	// A sub logout cuts off at its second: a sign-in after it is not touched.
	clock.add(2 * time.Second)
	fresh := signInWithSID(t, g, iss, "sid-c")
	if s, _ := readSession(t, fresh); s.User.Email != "grace@example.com" {
		t.Errorf("a sign-in after the subject's logout: got %+v, want it alive", s)
	}
}

// TestBackchannelLogoutRefusesBadTokens posts malformed, forged, misdirected, replayed and
// mistyped logout tokens, each naming the signed-in browser's provider session: each must
// be refused with the status named (400 for a token, per section 2.8), a JSON error, no
// cookie, and the session must live on.
func TestBackchannelLogoutRefusesBadTokens(t *testing.T) {
	iss := startTestIssuer(t, time.Now, time.Hour)
	g := startLogoutGateway(t, iss, "jwt", time.Now)
	b := signInWithSID(t, g, iss, "sid-live")
	valid := func(edit func(map[string]any)) string {
		c := logoutClaims(iss, "sid-live")
		if edit != nil {
			edit(c)
		}
		return signLogoutToken(t, iss, c, "logout+jwt", nil)
	}
	b64 := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	unsigned := b64(map[string]string{"alg": "none", "typ": "logout+jwt"}) + "." + b64(logoutClaims(iss, "sid-live")) + "."
	hmacSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(iss.clientSecret + "-padded-to-32-bytes!")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(logoutClaims(iss, "sid-live"))
	hmacJWS, _ := hmacSigner.Sign(payload)
	hmacToken, _ := hmacJWS.CompactSerialize()
	replayed := valid(func(c map[string]any) { c["sid"] = "sid-other" })
	if r := postLogoutToken(t, g, "test", replayed); r.status != 200 {
		t.Fatalf("first use of the token replayed below: got %d %s, want 200", r.status, r.body)
	}

	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name, provider, contentType, body string
		status                            int
		reason                            string // in error_description
	}{
		{name: "no logout_token", body: "", status: 400, reason: "missing"},
		{name: "not a JWT", body: "logout_token=garbage", status: 400, reason: "not a signed JWT"},
		{name: "alg none", body: "logout_token=" + unsigned, status: 400, reason: "not a signed JWT"},
		{name: "HMAC with the client secret", body: "logout_token=" + hmacToken, status: 400, reason: "not a signed JWT"},
		{name: "key not in the JWKS", body: "logout_token=" + signLogoutToken(t, iss, logoutClaims(iss, "sid-live"), "logout+jwt", newECKey(t)), status: 400, reason: "signature"},
		// A kid the JWKS does not list may be a key the provider has just published, which
		// the gateway fetches at most every 30 s: the provider is asked to try again.
		{name: "a kid the JWKS does not list", body: "logout_token=" + signLogoutTokenKID(t, logoutClaims(iss, "sid-live"), "made-up-kid"), status: 503, reason: "try again"},
		{name: "wrong issuer", body: "logout_token=" + valid(func(c map[string]any) { c["iss"] = "https://issuer.invalid" }), status: 400, reason: "different provider"},
		{name: "wrong audience", body: "logout_token=" + valid(func(c map[string]any) { c["aud"] = "another-client" }), status: 400, reason: "audience"},
		{name: "a nonce present", body: "logout_token=" + valid(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" }), status: 400, reason: "nonce"},
		{name: "no events", body: "logout_token=" + valid(func(c map[string]any) { delete(c, "events") }), status: 400, reason: "events claim is missing"},
		{name: "events without the logout event", body: "logout_token=" + valid(func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}), status: 400, reason: "no " + backchannelEvent},
		{name: "logout event not an object", body: "logout_token=" + valid(func(c map[string]any) {
			c["events"] = map[string]any{backchannelEvent: "yes"}
		}), status: 400, reason: "must be a JSON object"},
		{name: "neither sub nor sid", body: "logout_token=" + valid(func(c map[string]any) { delete(c, "sid") }), status: 400, reason: "neither sub nor sid"},
		{name: "no jti", body: "logout_token=" + valid(func(c map[string]any) { delete(c, "jti") }), status: 400, reason: "jti"},
		{name: "no iat", body: "logout_token=" + valid(func(c map[string]any) { delete(c, "iat") }), status: 400, reason: "iat claim is missing"},
		{name: "iat too old", body: "logout_token=" + valid(func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }), status: 400, reason: "not within"},
		{name: "iat in the future", body: "logout_token=" + valid(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }), status: 400, reason: "not within"},
		{name: "expired", body: "logout_token=" + valid(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), status: 400, reason: "expired"},
		{name: "typ of an access token", body: "logout_token=" + signLogoutToken(t, iss, logoutClaims(iss, "sid-live"), "at+jwt", nil), status: 400, reason: "typ"},
		{name: "replayed jti", body: "logout_token=" + replayed, status: 400, reason: "used before"},
		{name: "logout_token twice", body: "logout_token=" + valid(nil) + "&logout_token=" + valid(nil), status: 400, reason: "more than once"},
		{name: "JSON body", contentType: "application/json", body: `{"logout_token":"` + valid(nil) + `"}`, status: 400, reason: "x-www-form-urlencoded"},
		{name: "provider without back-channel logout", provider: "plain", body: "logout_token=" + valid(nil), status: 404, reason: "no provider"},
		{name: "unknown provider", provider: "nope", body: "logout_token=" + valid(nil), status: 404, reason: "no provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			provider, contentType := tt.provider, tt.contentType
			if provider == "" {
				provider = "test"
			}
			if contentType == "" {
				contentType = form
			}
			r := postLogout(t, g, provider, contentType, tt.body)
			if r.status != tt.status || r.Error == "" || !strings.Contains(r.Description, tt.reason) {
				t.Errorf("got %d %s, want %d with an error JSON whose description has %q", r.status, r.body, tt.status, tt.reason)
			}
			if r.cacheControl != "no-store" || len(r.cookies) != 0 {
				t.Errorf("Cache-Control %q cookies %v, want no-store and no cookie", r.cacheControl, r.cookies)
			}
			if s, _ := readSession(t, b); s.User.Email != "grace@example.com" {
				t.Fatalf("the session after a refused logout: got %+v, want it alive", s)
			}
		})
	}
	// The endpoint is POST only; any other method is NextAuth's unsupported action.
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/api/auth/backchannel-logout/test", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("GET back-channel logout: got %d, want 400", resp.StatusCode)
	}
}

// TestBackchannelLogoutDatabaseSessions: database sessions record the provider session
// they were started from, so a logout by sid ends exactly those (refused on read, and
// deleted), and a logout by sub ends (and deletes at once) every session of that subject
// with the provider, not one started after it; events.signOut({session}) runs.
func TestBackchannelLogoutDatabaseSessions(t *testing.T) {
	iss := startTestIssuer(t, time.Now, time.Hour)
	clock := &jumpClock{}
	g, st := startLogoutGatewayWithStore(t, iss, "database", clock.now)
	a := signInWithSID(t, g, iss, "sid-db-1")
	b := signInWithSID(t, g, iss, "sid-db-2")

	aCookies := a.cookieHeader()
	if !proxyReads(t, g, aCookies) {
		t.Fatal("the proxy finds no database session before the logout")
	}
	if r := postLogoutToken(t, g, "test", signLogoutToken(t, iss, logoutClaims(iss, "sid-db-1"), "", nil)); r.status != 200 {
		t.Fatalf("logout by sid: got %d %s, want 200", r.status, r.body)
	}
	// The proxy's read (cached for a second) refuses it at once: the revocation cleared
	// the cache.
	if proxyReads(t, g, aCookies) {
		t.Error("the proxy still finds the sid-db-1 session after the logout")
	}
	sessionGone(t, a, "the sid-db-1 database session ends")
	if s, _ := readSession(t, b); s.User.Email != "grace@example.com" {
		t.Fatalf("the sid-db-2 session after the sid-db-1 logout: got %+v, want it alive", s)
	}
	acc, err := st.FindAccount(t.Context(), "test", "user-7")
	if err != nil {
		t.Fatalf("the provider account: %v", err)
	}
	if list, err := st.ListSessions(t.Context(), acc.UserID); err != nil || len(list) != 1 || list[0].ProviderSessionID != "sid-db-2" {
		t.Errorf("store sessions after the sid logout: got %+v, %v; want only sid-db-2's", list, err)
	}

	claims := logoutClaims(iss, "")
	delete(claims, "sid")
	claims["sub"] = "user-7"
	if r := postLogoutToken(t, g, "test", signLogoutToken(t, iss, claims, "", nil)); r.status != 200 {
		t.Fatalf("logout by sub: got %d %s, want 200", r.status, r.body)
	}
	if list, err := st.ListSessions(t.Context(), acc.UserID); err != nil || len(list) != 0 {
		t.Errorf("store sessions after the sub logout: got %+v, %v; want none", list, err)
	}
	sessionGone(t, b, "the sid-db-2 database session ends with the subject's logout")
	logs := strings.ReplaceAll(g.logs.String(), `\"`, `"`)
	if !strings.Contains(logs, `signOut event {"session":{`) || !strings.Contains(logs, `"userId":"`+acc.UserID+`"`) {
		t.Errorf("events.signOut({session}) did not name the deleted session; log:\n%s", logs)
	}

	clock.add(2 * time.Second)
	fresh := signInWithSID(t, g, iss, "sid-db-3")
	if s, _ := readSession(t, fresh); s.User.Email != "grace@example.com" {
		t.Errorf("a sign-in after the subject's logout: got %+v, want it alive", s)
	}
}

// revokeFailingStore is a real store whose Revoke fails while down is set, as a Redis that
// stops answering between two commands would.
type revokeFailingStore struct {
	store.Store
	down atomic.Bool
}

func (s *revokeFailingStore) Revoke(ctx context.Context, r store.Revocation) error {
	if s.down.Load() {
		return fmt.Errorf("revoke: %w", store.ErrUnavailable)
	}
	return s.Store.Revoke(ctx, r)
}

// TestBackchannelLogoutStoreTrouble: a logout the gateway cannot carry out is never a
// 200 nor a 400. Without a store it is 501; with the store failing it is 503, the session
// lives on, and the jti is given back, so the provider's retry of the same token ends the
// session once the store is back.
func TestBackchannelLogoutStoreTrouble(t *testing.T) {
	iss := startTestIssuer(t, time.Now, time.Hour)
	t.Run("no store", func(t *testing.T) {
		dir := t.TempDir()
		src := fmt.Sprintf(logoutScript, iss.issuer(), iss.clientID, iss.clientSecret, "jwt")
		if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		g := startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin})
		b := signInWithSID(t, g, iss, "sid-nostore")
		r := postLogoutToken(t, g, "test", signLogoutToken(t, iss, logoutClaims(iss, "sid-nostore"), "", nil))
		if r.status != 501 || r.Error != "unsupported" || r.cacheControl != "no-store" {
			t.Errorf("got %d %s (Cache-Control %q), want 501 unsupported, no-store", r.status, r.body, r.cacheControl)
		}
		if s, _ := readSession(t, b); s.User.Email != "grace@example.com" {
			t.Errorf("the session after a logout not carried out: got %+v, want it alive", s)
		}
	})
	t.Run("store failing", func(t *testing.T) {
		dir := t.TempDir()
		src := fmt.Sprintf(logoutScript, iss.issuer(), iss.clientID, iss.clientSecret, "jwt")
		if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := bolt.Open(filepath.Join(t.TempDir(), "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		failing := &revokeFailingStore{Store: st}
		g := startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin, store: failing})
		b := signInWithSID(t, g, iss, "sid-flaky")
		token := signLogoutToken(t, iss, logoutClaims(iss, "sid-flaky"), "", nil)
		failing.down.Store(true)
		r := postLogoutToken(t, g, "test", token)
		if r.status != 503 || r.Error != "temporarily_unavailable" {
			t.Errorf("store failing: got %d %s, want 503 temporarily_unavailable", r.status, r.body)
		}
		if s, _ := readSession(t, b); s.User.Email != "grace@example.com" {
			t.Errorf("the session after a failed logout: got %+v, want it alive", s)
		}
		failing.down.Store(false)
		if r := postLogoutToken(t, g, "test", token); r.status != 200 {
			t.Fatalf("the provider's retry once the store is back: got %d %s, want 200", r.status, r.body)
		}
		sessionGone(t, b, "the session ends on the retry")
	})
}
