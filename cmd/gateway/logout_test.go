package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// hydraLogoutScript signs in through Hydra with back-channel logout on.
const hydraLogoutScript = `import OIDC from "callgate/providers/oidc";
export default {
  session: { strategy: %q },
  providers: [OIDC({ id: "hydra", name: "Hydra", issuer: %q, clientId: %q, clientSecret: %q,
    authorization: { params: { scope: "openid offline_access email profile" } },
    logout: { backchannel: true } })],
};
`

// followRedirects sends req with client (which must not follow redirects itself) and
// follows every redirect, posting the login form of the test's login app as username
// when it is reached, until a response that is not a redirect, or one to stop, whose URL
// it returns with the status.
func followRedirects(t *testing.T, client *http.Client, h *hydraProvider, req *http.Request, username string, stop func(*url.URL) bool) (*url.URL, int) {
	t.Helper()
	for range 20 {
		res := do(t, client, req)
		loc := res.Header.Get("Location")
		if res.Status < 300 || res.Status > 399 || loc == "" {
			return req.URL, res.Status
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			t.Fatalf("redirect from %s to %q: %v", req.URL, loc, err)
		}
		if stop != nil && stop(next) {
			return next, res.Status
		}
		if strings.HasPrefix(next.String(), h.LoginApp+"/login?") {
			// The login form, filled in and posted as a person would.
			form := url.Values{"challenge": {next.Query().Get("login_challenge")}, "username": {username}}
			req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, h.LoginApp+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			continue
		}
		req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, next.String(), nil)
	}
	t.Fatalf("more than 20 redirects from %s", req.URL)
	return nil, 0
}

// signInThroughHydra signs client in at gw with provider "hydra": POST /signin/hydra, then
// Hydra's login form and consent, back to the gateway's callback and on to callbackURL.
func signInThroughHydra(t *testing.T, client *http.Client, gw *testGateway, h *hydraProvider, callbackURL string) {
	t.Helper()
	form := url.Values{"csrfToken": {csrfToken(t, client, gw)}, "callbackUrl": {callbackURL}, "json": {"true"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gw.URL+"/api/auth/signin/hydra", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := do(t, client, req)
	var out struct{ URL string }
	if err := json.Unmarshal(res.Body, &out); err != nil || !strings.HasPrefix(out.URL, h.Issuer+"/oauth2/auth?") {
		t.Fatalf("POST /signin/hydra: got %d %s, want {url} at Hydra's authorization endpoint", res.Status, res.Body)
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, out.URL, nil)
	landed, _ := followRedirects(t, client, h, req, "ada", func(u *url.URL) bool { return u.String() == callbackURL })
	if landed.String() != callbackURL {
		t.Fatalf("sign-in through Hydra ended at %s, want %s; gateway log:\n%s", landed, callbackURL, gw.Logs())
	}
}

// TestReplicasBackchannelLogoutThroughHydra signs in through Ory Hydra on one of two
// gateways sharing Redis, then signs out at Hydra (its /oauth2/sessions/logout, confirmed by
// the login app): Hydra posts a logout token (sid only) to gateway A's back-channel
// endpoint, and the session must end on both replicas, for jwt and for database sessions. The time from the sign-out at Hydra to the session's
// end on both is logged; the issue asks for "within a second", the wait allows more on a
// busy machine.
func TestReplicasBackchannelLogoutThroughHydra(t *testing.T) {
	redisURL := testRedisURL(t)
	for _, strategy := range []string{"jwt", "database"} {
		t.Run(strategy, func(t *testing.T) {
			hydra := startHydraProvider(t)
			args, _, _ := replicaSetup(t, redisURL, "jwt", "")
			const clientID, clientSecret = "gateway-logout", "gateway-logout-secret-0123456789"
			scripts := t.TempDir()
			src := fmt.Sprintf(hydraLogoutScript, strategy, hydra.Issuer, clientID, clientSecret)
			if err := os.WriteFile(filepath.Join(scripts, "auth.config.js"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			a := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts})
			b := startGateway(t, gatewayOptions{Args: args, ScriptsDir: scripts})
			hydra.createClient(t, clientID, clientSecret, a.URL+"/api/auth/callback/hydra", map[string]any{
				"backchannel_logout_uri": a.URL + "/api/auth/backchannel-logout/hydra",
			})

			client := newBrowserClient(t) // one jar for the gateways and Hydra: cookies ignore the port
			signInThroughHydra(t, client, a, hydra, a.URL+"/")
			// Each replica is asked with the cookie as issued: a jar would drop it after the
			// first {} and make the second answer say nothing.
			cookie := jarCookie(t, client, a, sessionCookieName)
			for _, gw := range []*testGateway{a, b} {
				if status, body := sessionWithCookie(t, gw, cookie); status != http.StatusOK || sessionUserName(body) != "Ada Lovelace" {
					t.Fatalf("GET /session through %s before the logout: got %d %v, want Ada's session", gw.URL, status, body)
				}
			}

			// Sign out at Hydra, with its login session cookie: the login app confirms, Hydra
			// completes the logout and posts the logout token to gateway A.
			start := time.Now()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, hydra.Issuer+"/oauth2/sessions/logout", nil)
			landed, status := followRedirects(t, client, hydra, req, "", nil)
			if status != http.StatusOK || !strings.HasPrefix(landed.String(), hydra.Issuer+"/oauth2/fallbacks/logout/callback") {
				t.Fatalf("logout at Hydra ended at %s with %d, want Hydra's logged-out page", landed, status)
			}
			var took [2]time.Duration
			for i, gw := range []*testGateway{b, a} {
				testkit.WaitFor(t, "GET /session through "+gw.URL+" answers {} after the logout at Hydra", 10*time.Second, func() error {
					if status, body := sessionWithCookie(t, gw, cookie); status != http.StatusOK || len(body) != 0 {
						return fmt.Errorf("got %d %v", status, body)
					}
					return nil
				})
				took[i] = time.Since(start)
			}
			t.Logf("back-channel logout (%s sessions): the session ended on B (the replica Hydra did not call) %v and on A %v after the sign-out at Hydra began",
				strategy, took[0], took[1])
			// The revocation takes effect before the endpoint logs it: await the line.
			testkit.WaitFor(t, "gateway A logs the accepted back-channel logout", 10*time.Second, func() error {
				if !strings.Contains(a.Logs(), "code=BACKCHANNEL_LOGOUT ") {
					return errors.New("no BACKCHANNEL_LOGOUT line yet")
				}
				return nil
			})
			if strings.Contains(a.Logs(), "BACKCHANNEL_LOGOUT_ERROR") {
				t.Errorf("gateway A logged a refused back-channel logout; log:\n%s", a.Logs())
			}
		})
	}
}

// sessionWithCookie is GET /api/auth/session at gw with the session cookie value.
func sessionWithCookie(t *testing.T, gw *testGateway, value string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/auth/session", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookieName, Value: value})
	res := do(t, &http.Client{Timeout: 10 * time.Second}, req)
	var body map[string]any
	_ = json.Unmarshal(res.Body, &body)
	return res.Status, body
}
