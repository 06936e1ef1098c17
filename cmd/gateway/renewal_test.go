package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Session renewal on the proxy and forward-auth paths: a session is renewed by the requests
// an app receives, not only by GET /api/auth/session.

// renewalDatabaseScripts are database sessions with a short maxAge and updateAge, so a test
// can move its clock past both.
const renewalDatabaseScripts = `import Credentials from "callgate/providers/credentials";
import bcrypt from "bcryptjs";
import { users } from "callgate/store";

export default {
  session: { strategy: "database", maxAge: 7200, updateAge: 600 },
  providers: [
    Credentials({
      credentials: { username: {}, password: {} },
      async authorize(credentials) {
        const user = await users.findOne({ username: credentials.username });
        if (!user || !(await bcrypt.compare(credentials.password, user.password))) return null;
        return { id: user._id, name: user.name, email: user.email };
      },
    }),
  ],
};
`

// cookieUpstream is an app that sets a cookie of its own on every answer, so a test can see
// that the gateway adds its renewal to the app's cookies rather than replacing them.
func cookieUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "app-pref=dark; Path=/")
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(r.Header.Get("X-Callgate-User")))
	}))
	t.Cleanup(up.Close)
	return up
}

// sessionSetCookie is the session cookie among Set-Cookie values: its value and whether
// there was one.
func sessionSetCookie(values []string) (*http.Cookie, bool) {
	for _, v := range values {
		if c, err := http.ParseSetCookie(v); err == nil && c.Name == sessionCookieName {
			return c, true
		}
	}
	return nil, false
}

// renewalCookies are the Set-Cookie values of a session renewal on an answer: Set-Cookie
// for proxied requests and Traefik/Caddy forward-auth, the numbered headers for nginx.
func renewalCookies(res httpResult, nginx bool) []string {
	if !nginx {
		return res.Header.Values("Set-Cookie")
	}
	var out []string
	for i := 1; ; i++ {
		v := res.Header.Get("X-Callgate-Set-Cookie-" + string(rune('0'+i)))
		if v == "" {
			return out
		}
		out = append(out, v)
	}
}

// TestProxyRenewsSessionPastUpdateAge signs in, moves the clock past session.updateAge and
// sends one request through each path that judges sessions for an app: a proxied route,
// Traefik/Caddy forward-auth and nginx auth_request. The answer must carry the renewed
// session cookie (a new token under jwt, the same id with a later expiry under database),
// a proxied answer on top of the app's own cookie and never cacheable by a shared cache.
// Moving the clock past the original expiry then proves the renewal was real: the renewed
// cookie is still signed in. Before updateAge, no answer carries a cookie.
func TestProxyRenewsSessionPastUpdateAge(t *testing.T) {
	up := cookieUpstream(t)
	dbScripts := t.TempDir()
	if err := os.WriteFile(filepath.Join(dbScripts, "auth.config.js"), []byte(renewalDatabaseScripts), 0o600); err != nil {
		t.Fatal(err)
	}
	strategies := []struct {
		name    string
		scripts string
		// pastUpdateAge moves the clock past updateAge; pastExpiry then past the expiry the
		// session had before its renewal (but not past the renewed one).
		pastUpdateAge, pastExpiry, maxAge time.Duration
		sameValue                         bool // database: the cookie keeps its id
	}{
		{"jwt", filepath.Join("testdata", "proxy-scripts"), 25 * time.Hour, 30 * 24 * time.Hour, 30 * 24 * time.Hour, false},
		{"database", dbScripts, 700 * time.Second, 7000 * time.Second, 7200 * time.Second, true},
	}
	paths := []struct {
		name  string
		path  string
		nginx bool
	}{
		{"proxied", "/page", false},
		{"forward-auth", "/_callgate/forward-auth", false},
		{"nginx auth_request", "/_callgate/auth", true},
	}
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			clock := &movedClock{}
			yaml := "proxy:\n  trusted_proxies: [127.0.0.1]\nroutes:\n  - {name: app, path: /page, upstream: " + up.URL + "}\n"
			gw := startGateway(t, gatewayOptions{ScriptsDir: st.scripts, Now: clock.Now, Args: []string{"--config", writeConfig(t, yaml)}})
			for _, p := range paths {
				t.Run(p.name, func(t *testing.T) {
					client := signedInClient(t, gw)
					cookie := jarCookie(t, client, gw, sessionCookieName)
					send := func(value string) httpResult {
						h := http.Header{"Cookie": {sessionCookieName + "=" + value}, "Accept": {"application/json"},
							"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {strings.TrimPrefix(gw.URL, "http://")}, "X-Forwarded-Uri": {"/page"}}
						return get(t, http.DefaultClient, gw.URL+p.path, h)
					}
					res := send(cookie)
					if res.Status != http.StatusOK {
						t.Fatalf("before updateAge: got %d %s, want 200", res.Status, res.Body)
					}
					if c, ok := sessionSetCookie(renewalCookies(res, p.nginx)); ok {
						t.Fatalf("before updateAge: got a session cookie %q, want none (the proxy renews at most once per updateAge)", c.Raw)
					}

					clock.advance(st.pastUpdateAge)
					res = send(cookie)
					if res.Status != http.StatusOK {
						t.Fatalf("past updateAge: got %d %s, want 200", res.Status, res.Body)
					}
					renewal := renewalCookies(res, p.nginx)
					c, ok := sessionSetCookie(renewal)
					if !ok || c.Value == "" {
						t.Fatalf("past updateAge: got Set-Cookie %q, want the renewed session cookie", renewal)
					}
					if (c.Value == cookie) != st.sameValue {
						t.Errorf("past updateAge: renewed value equal to the old one: %v, want %v", c.Value == cookie, st.sameValue)
					}
					if want := clock.Now().Add(st.maxAge); c.Expires.Before(want.Add(-time.Minute)) || c.Expires.After(want.Add(time.Minute)) {
						t.Errorf("past updateAge: renewed cookie expires %v, want about %v (now + maxAge)", c.Expires, want)
					}
					if !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode {
						t.Errorf("past updateAge: renewed cookie %q lacks the session cookie's flags", c.Raw)
					}
					if p.path == "/page" {
						if got := res.Header.Values("Set-Cookie"); !strings.Contains(strings.Join(got, "\n"), "app-pref=dark") {
							t.Errorf("proxied: Set-Cookie %q lost the app's own cookie", got)
						}
						if got := res.Header.Get("Cache-Control"); got != "private, no-store" {
							t.Errorf("proxied: Cache-Control %q on an answer that renews a session, want private, no-store", got)
						}
					}

					clock.advance(st.pastExpiry)
					if res := send(c.Value); res.Status != http.StatusOK {
						t.Errorf("past the original expiry with the renewed cookie: got %d %s, want 200 (still signed in)", res.Status, res.Body)
					}
					if !st.sameValue {
						if res := send(cookie); res.Status != http.StatusUnauthorized {
							t.Errorf("past the original expiry with the old cookie: got %d, want 401", res.Status)
						}
					}
				})
			}
		})
	}
}

// TestProxyRenewalJWTCallback: the jwt callback runs on a proxy renewal as on a session
// read (NextAuth's {token, session: undefined}, no trigger), so what it puts in the token
// reaches the app, and a jwt callback that returns null ends the session for proxied apps
// too: the answer deletes the cookie and the request is judged signed out. A callback that
// throws is the gateway's failure, not the user's: the request is judged by the session as
// read (the app is reached), no cookie is sent, never a 500.
func TestProxyRenewalJWTCallback(t *testing.T) {
	const scripts = `import Credentials from "callgate/providers/credentials";
export default {
  providers: [Credentials({ credentials: { username: {} }, authorize: (c) => ({ id: c.username, name: c.username }) })],
  callbacks: {
    jwt({ token, user, trigger, session }) {
      if (user) return token;
      if (token.sub === "banned") return null;
      if (token.sub === "broken") throw new Error("the user directory is down");
      token.renewals = (token.renewals ?? 0) + 1;
      token.seen = String(trigger) + "/" + String(session);
      return token;
    },
  },
};
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(scripts), 0o600); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"renewals": r.Header.Get("X-Renewals"), "seen": r.Header.Get("X-Seen")})
	}))
	t.Cleanup(up.Close)
	clock := &movedClock{}
	yaml := "identity:\n  headers: {X-Callgate-User: sub, X-Seen: seen}\nroutes:\n  - {name: app, path: /, upstream: " + up.URL + "}\n"
	gw := startGateway(t, gatewayOptions{ScriptsDir: dir, Now: clock.Now, Args: []string{"--config", writeConfig(t, yaml)}})
	tests := []struct {
		user       string
		wantStatus int
		wantSeen   string
		wantClear  bool
		noCookie   bool
	}{
		{"ada", http.StatusOK, "undefined/undefined", false, false},
		{"banned", http.StatusUnauthorized, "", true, false},
		{"broken", http.StatusOK, "", false, true},
	}
	cookies := map[string]string{}
	for _, tt := range tests {
		client := newBrowserClient(t)
		if res := signInWithCredentials(t, client, gw, tt.user, ""); res.Status != http.StatusOK {
			t.Fatalf("sign in %s: got %d %s", tt.user, res.Status, res.Body)
		}
		cookies[tt.user] = jarCookie(t, client, gw, sessionCookieName)
	}
	clock.advance(25 * time.Hour)
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			res := get(t, http.DefaultClient, gw.URL+"/page", http.Header{"Cookie": {sessionCookieName + "=" + cookies[tt.user]}, "Accept": {"application/json"}})
			if res.Status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", res.Status, res.Body, tt.wantStatus)
			}
			c, ok := sessionSetCookie(res.Header.Values("Set-Cookie"))
			if tt.noCookie {
				if ok {
					t.Errorf("got session cookie %q from a renewal that failed, want none", c.Raw)
				}
				if !strings.Contains(gw.Logs(), "SESSION_RENEWAL_ERROR") {
					t.Errorf("the failed renewal was not logged as SESSION_RENEWAL_ERROR")
				}
				return
			}
			if !ok {
				t.Fatalf("got Set-Cookie %q, want the session cookie renewed or deleted", res.Header.Values("Set-Cookie"))
			}
			if cleared := c.Value == "" && c.MaxAge < 0; cleared != tt.wantClear {
				t.Errorf("session cookie %q: deleted %v, want %v", c.Raw, cleared, tt.wantClear)
			}
			if tt.wantSeen != "" {
				var body map[string]string
				_ = json.Unmarshal(res.Body, &body)
				if body["seen"] != tt.wantSeen {
					t.Errorf("the app saw the jwt callback's argument as %q, want %q", body["seen"], tt.wantSeen)
				}
			}
		})
	}
}

// lifetimeScripts sign in with credentials under an idle timeout of one hour (maxAge), a
// renewal every minute (updateAge) and an absolute lifetime of two hours (absoluteMaxAge).
func lifetimeScripts(t *testing.T, strategy string) string {
	t.Helper()
	src := strings.Replace(renewalDatabaseScripts, `session: { strategy: "database", maxAge: 7200, updateAge: 600 }`,
		`session: { strategy: "`+strategy+`", maxAge: 3600, updateAge: 60, absoluteMaxAge: 7200 }`, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSessionAbsoluteLifetime keeps a session busy, one request every 50 minutes (well
// inside the one-hour idle timeout), through a proxied route or GET /api/auth/session, for
// both strategies. Every renewal slides the expiry, but never past two hours from sign-in:
// the renewal just before the end is cut short, and at two hours the session is over,
// however active it was. Without absoluteMaxAge the same pattern stays signed in
// (TestProxyRenewsSessionPastUpdateAge), so this fails if the bound is not applied.
func TestSessionAbsoluteLifetime(t *testing.T) {
	up := cookieUpstream(t)
	for _, strategy := range []string{"jwt", "database"} {
		for _, path := range []string{"/page", "/api/auth/session"} {
			t.Run(strategy+" "+path, func(t *testing.T) {
				clock := &movedClock{}
				yaml := "routes:\n  - {name: app, path: /page, upstream: " + up.URL + "}\n"
				gw := startGateway(t, gatewayOptions{ScriptsDir: lifetimeScripts(t, strategy), Now: clock.Now, Args: []string{"--config", writeConfig(t, yaml)}})
				client := signedInClient(t, gw)
				signedIn := clock.Now()
				cookie := jarCookie(t, client, gw, sessionCookieName)
				signedInWith := func(value string) (bool, *http.Cookie) {
					res := get(t, http.DefaultClient, gw.URL+path, http.Header{"Cookie": {sessionCookieName + "=" + value}, "Accept": {"application/json"}})
					c, _ := sessionSetCookie(res.Header.Values("Set-Cookie"))
					if path == "/page" {
						return res.Status == http.StatusOK, c
					}
					var s map[string]any
					_ = json.Unmarshal(res.Body, &s)
					return res.Status == http.StatusOK && s["user"] != nil, c
				}
				for i, at := range []time.Duration{50 * time.Minute, 100 * time.Minute} {
					clock.advance(50 * time.Minute)
					ok, c := signedInWith(cookie)
					if !ok || c == nil || c.Value == "" {
						t.Fatalf("request %d at +%v: signed in %v, renewal %v; want a renewed session", i, at, ok, c)
					}
					want := clock.Now().Add(time.Hour)
					if end := signedIn.Add(2 * time.Hour); want.After(end) {
						want = end // cut short by the absolute lifetime
					}
					if c.Expires.Before(want.Add(-time.Minute)) || c.Expires.After(want.Add(time.Minute)) {
						t.Errorf("request %d at +%v: renewed cookie expires at +%v, want +%v", i, at, c.Expires.Sub(signedIn).Round(time.Minute), want.Sub(signedIn).Round(time.Minute))
					}
					cookie = c.Value
				}
				clock.advance(21 * time.Minute) // +121 minutes: idle for 21, but past the absolute end
				if ok, _ := signedInWith(cookie); ok {
					t.Errorf("at +121m, past absoluteMaxAge: still signed in, want the session over")
				}
			})
		}
	}
}

// TestInteropAuthTimeClaimDecodesWithNextAuth: with absoluteMaxAge the token carries the
// auth_time claim, which NextAuth does not set; next-auth/jwt's own decode() must still
// accept the gateway's cookie, at sign-in and after a proxy renewal, and read auth_time as
// the sign-in time.
func TestInteropAuthTimeClaimDecodesWithNextAuth(t *testing.T) {
	node := requireNodeInterop(t)
	up := cookieUpstream(t)
	clock := &movedClock{}
	yaml := "routes:\n  - {name: app, path: /page, upstream: " + up.URL + "}\n"
	gw := startGateway(t, gatewayOptions{ScriptsDir: lifetimeScripts(t, "jwt"), Now: clock.Now, Args: []string{"--config", writeConfig(t, yaml)}})
	client := signedInClient(t, gw)
	signedIn := clock.Now().Unix()
	cookie := jarCookie(t, client, gw, sessionCookieName)
	clock.advance(2 * time.Minute)
	res := get(t, http.DefaultClient, gw.URL+"/page", http.Header{"Cookie": {sessionCookieName + "=" + cookie}})
	renewed, ok := sessionSetCookie(res.Header.Values("Set-Cookie"))
	if !ok || renewed.Value == "" {
		t.Fatalf("proxied request past updateAge: got %d, Set-Cookie %q; want a renewed cookie", res.Status, res.Header.Values("Set-Cookie"))
	}
	for name, token := range map[string]string{"sign-in": cookie, "renewed": renewed.Value} {
		out, err := node.run(t.Context(), "jwt.mjs", "decode", gw.Secret, token)
		if err != nil {
			t.Fatalf("%s cookie: next-auth/jwt decode: %v", name, err)
		}
		var claims map[string]any
		if err := json.Unmarshal(out, &claims); err != nil {
			t.Fatalf("%s cookie: decode output %q: %v", name, out, err)
		}
		if at, _ := claims["auth_time"].(float64); int64(at) < signedIn-1 || int64(at) > signedIn+1 || claims["sub"] != "65a1f0c2e4b0a1b2c3d4e5f6" {
			t.Errorf("%s cookie: got claims %s, want auth_time %d (the sign-in) and the user's sub", name, out, signedIn)
		}
	}
}
