package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store/bolt"
)

// The OAuth end-to-end tests run against Ory Hydra, a real OpenID Connect provider, with
// its in-memory database. test.sh builds it into testdata/hydra/bin (a module of its own,
// so the gateway's go.mod never carries Hydra's dependencies); CALLGATE_HYDRA may point at
// another binary.

const (
	hydraClientID     = "gateway"
	hydraClientSecret = "gateway-secret-0123456789"
	gatewayOrigin     = "http://localhost:3000"
)

type hydra struct {
	issuer  string // as the discovery document names it (through the counting proxy)
	admin   string
	refresh atomic.Int64 // refresh_token grants that reached the provider
	codes   atomic.Int64 // authorization_code grants
	// busy is the time spent inside the provider, summed over the requests it answered.
	busy atomic.Int64
}

// startHydra runs Hydra behind a counting reverse proxy (which is the issuer everyone
// talks to) with a login and consent app that signs in one test user.
func startHydra(t *testing.T) *hydra {
	bin := testkit.HydraBinary(t, "..")
	h := &hydra{}
	publicPort, adminPort := testkit.FreePort(t, false), testkit.FreePort(t, false)
	h.admin = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	publicURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", publicPort))
	rp := httputil.NewSingleHostReverseProxy(publicURL)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/oauth2/token" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			switch form.Get("grant_type") {
			case "refresh_token":
				h.refresh.Add(1)
			case "authorization_code":
				h.codes.Add(1)
			}
		}
		start := time.Now()
		rp.ServeHTTP(w, r)
		h.busy.Add(int64(time.Since(start)))
	}))
	t.Cleanup(proxy.Close)
	app := httptest.NewServer(h.loginConsentApp(t))
	t.Cleanup(app.Close)

	testkit.Hydra{
		Binary: bin, Issuer: proxy.URL, LoginURL: app.URL + "/login", ConsentURL: app.URL + "/consent",
		PublicPort: publicPort, AdminPort: adminPort,
	}.Start(t)
	var doc struct {
		Issuer string `json:"issuer"`
	}
	getJSON(t, proxy.URL+"/.well-known/openid-configuration", &doc)
	h.issuer = doc.Issuer
	return h
}

func getJSON(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: decode: %v", u, err)
	}
}

// adminCall sends JSON to Hydra's admin API and decodes the answer.
func (h *hydra) adminCall(t *testing.T, method, path string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, h.admin+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, body, err)
		}
	}
}

// createClient registers the gateway with callbacks for the given provider ids.
func (h *hydra) createClient(t *testing.T, providerIDs ...string) {
	var uris []string
	for _, id := range providerIDs {
		uris = append(uris, gatewayOrigin+"/api/auth/callback/"+id)
	}
	h.adminCall(t, http.MethodPost, "/admin/clients", map[string]any{
		"client_id": hydraClientID, "client_secret": hydraClientSecret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid offline_access email profile", "redirect_uris": uris,
		"token_endpoint_auth_method": "client_secret_basic",
	}, nil)
}

// loginConsentApp accepts every login as the test user and grants what was asked, adding
// profile claims and groups to the ID token.
func (h *hydra) loginConsentApp(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	accept := func(w http.ResponseWriter, kind, challenge string, body map[string]any) {
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		h.adminCall(t, http.MethodPut, "/admin/oauth2/auth/requests/"+kind+"/accept?"+kind+"_challenge="+url.QueryEscape(challenge), body, &out)
		http.Redirect(w, &http.Request{}, out.RedirectTo, http.StatusFound)
	}
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		accept(w, "login", r.URL.Query().Get("login_challenge"), map[string]any{"subject": "user-42"})
	})
	mux.HandleFunc("/consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.URL.Query().Get("consent_challenge")
		var req struct {
			RequestedScope    []string `json:"requested_scope"`
			RequestedAudience []string `json:"requested_access_token_audience"`
		}
		resp, err := http.Get(h.admin + "/admin/oauth2/auth/requests/consent?consent_challenge=" + url.QueryEscape(challenge))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_ = json.NewDecoder(resp.Body).Decode(&req)
		resp.Body.Close()
		accept(w, "consent", challenge, map[string]any{
			"grant_scope": req.RequestedScope, "grant_access_token_audience": req.RequestedAudience,
			"session": map[string]any{"id_token": map[string]any{
				"email": "ada@example.com", "name": "Ada Lovelace", "groups": []string{"engineering", "admins"},
			}},
		})
	})
	return mux
}

// authorize runs the browser's trip through the provider: POST /signin/:id, then Hydra's
// login and consent, up to the redirect back to the gateway. It returns the gateway path
// and query the provider sent the browser to.
func authorize(t *testing.T, b *browser, providerID string) string {
	t.Helper()
	authURL, back := signInThroughProvider(t, b, providerID, gatewayOrigin+"/dashboard")
	if !strings.Contains(authURL, "/oauth2/auth?") {
		t.Fatalf("POST /signin/%s: got {url: %s}, want the provider's authorization URL", providerID, authURL)
	}
	return back
}

// signInThroughProvider is POST /signin/:provider with callbackURL, then the browser's trip
// through the provider (with its own cookie jar), up to the redirect back to the gateway.
// It returns the provider's authorization URL and the gateway path and query the provider
// sent the browser to.
func signInThroughProvider(t *testing.T, b *browser, providerID, callbackURL string) (authURL, back string) {
	t.Helper()
	r := b.postForm("/api/auth/signin/"+providerID, url.Values{"csrfToken": {b.csrf()}, "callbackUrl": {callbackURL}, "json": {"true"}})
	var res struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || res.URL == "" {
		t.Fatalf("POST /signin/%s: got %d %s, want {url}", providerID, r.status, r.body)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), gatewayOrigin+"/") {
			back = strings.TrimPrefix(req.URL.String(), gatewayOrigin)
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := client.Get(res.URL)
	if err != nil {
		t.Fatalf("follow the provider: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if back == "" {
		t.Fatalf("the provider did not send the browser back: %d %s", resp.StatusCode, body)
	}
	return res.URL, back
}

func errorCode(r reply) string {
	loc := r.header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		return ""
	}
	return u.Query().Get("error")
}

const hydraScript = `
import OIDC from "callgate/providers/oidc";
const common = { issuer: %q, clientId: %q, clientSecret: %q,
  authorization: { params: { scope: "openid offline_access email profile" } } };
export default {
  providers: [
    OIDC({ ...common, id: "hydra", name: "Hydra" }),
    OIDC({ ...common, id: "hydra-state", name: "Hydra (state only)", checks: ["state"] }),
    // Hydra requires state on every authorization request, so "pkce" alone cannot be tried here.
    OIDC({ ...common, id: "hydra-pkce", name: "Hydra (PKCE and state)", checks: ["pkce", "state"] }),
    OIDC({ ...common, id: "hydra-refresh", name: "Hydra (refresh)", refresh: true,
      profile(profile, tokens) {
        return { id: profile.sub, name: profile.name, email: profile.email, groups: profile.groups };
      } }),
  ],
  callbacks: {
    jwt({ token, user, account, profile, trigger, isNewUser }) {
      if (account && trigger !== "refresh") {
        token.accountKeys = Object.keys(account).sort();
        token.provider = account.provider;
        token.groups = profile?.groups ?? user?.groups ?? null;
        token.trigger = trigger;
        token.isNewUser = isNewUser;
      }
      if (trigger === "refresh") token.refreshes = (token.refreshes ?? 0) + 1;
      if (account) token.accessToken = account.access_token;
      return token;
    },
    session({ session, token }) {
      return { ...session, sub: token.sub, accountKeys: token.accountKeys, provider: token.provider, groups: token.groups,
        trigger: token.trigger, isNewUser: token.isNewUser, accessToken: token.accessToken, refreshes: token.refreshes ?? 0 };
    },
  },
};
`

type oauthSession struct {
	User struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"user"`
	Sub         string   `json:"sub"`
	AccountKeys []string `json:"accountKeys"`
	Provider    string   `json:"provider"`
	Groups      []string `json:"groups"`
	Trigger     string   `json:"trigger"`
	IsNewUser   bool     `json:"isNewUser"`
	AccessToken string   `json:"accessToken"`
	Refreshes   int      `json:"refreshes"`
}

func readSession(t *testing.T, b *browser) (oauthSession, reply) {
	t.Helper()
	r := b.getPage("/api/auth/session")
	var s oauthSession
	if r.status != 200 {
		t.Fatalf("GET /session: status %d body %s", r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("GET /session: %v in %s", err, r.body)
	}
	return s, r
}

// jumpClock is a test jumpClock that can jump forward.
type jumpClock struct{ offset atomic.Int64 }

func (c *jumpClock) now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *jumpClock) add(d time.Duration) { c.offset.Add(int64(d)) }

func TestOAuthAgainstHydra(t *testing.T) {
	h := startHydra(t)
	h.createClient(t, "hydra", "hydra-state", "hydra-pkce", "hydra-refresh")
	dir := t.TempDir()
	src := fmt.Sprintf(hydraScript, h.issuer, hydraClientID, hydraClientSecret)
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	newGateway := func(t *testing.T, c *jumpClock) *gateway {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return startGateway(t, gatewayConfig{fixture: dir, url: gatewayOrigin, now: c.now, store: st})
	}
	gw := newGateway(t, &jumpClock{})

	t.Run("sign in with each set of checks", func(t *testing.T) {
		for _, id := range []string{"hydra", "hydra-state", "hydra-pkce"} {
			// A gateway (and store) per provider: the same e-mail through a second provider
			// is OAuthAccountNotLinked, tested below.
			g := newGateway(t, &jumpClock{})
			b := g.browser(t)
			back := authorize(t, b, id)
			r := b.getPage(back)
			if r.status != 302 || r.header.Get("Location") != gatewayOrigin+"/dashboard" {
				t.Fatalf("%s callback: got %d Location %q, want 302 to /dashboard; body %s", id, r.status, r.header.Get("Location"), r.body)
			}
			s, _ := readSession(t, b)
			if s.User.Email != "ada@example.com" || s.User.Name != "Ada Lovelace" || s.Provider != id {
				t.Errorf("%s session: got %+v, want Ada's from %s", id, s, id)
			}
			wantKeys := "access_token,expires_at,id_token,provider,providerAccountId,refresh_token,scope,token_type,type"
			if got := strings.Join(s.AccountKeys, ","); got != wantKeys {
				t.Errorf("%s account keys: got %s, want %s", id, got, wantKeys)
			}
			if want := []string{"engineering", "admins"}; strings.Join(s.Groups, ",") != strings.Join(want, ",") {
				t.Errorf("%s profile groups: got %v, want %v", id, s.Groups, want)
			}
			if s.Trigger != "signUp" || !s.IsNewUser {
				t.Errorf("%s first sign-in: trigger, isNewUser = %q, %v; want signUp, true", id, s.Trigger, s.IsNewUser)
			}
			firstSub := s.Sub
			again := g.browser(t)
			if r := again.getPage(authorize(t, again, id)); r.status != 302 || errorCode(r) != "" {
				t.Fatalf("%s second sign-in: got %d %s", id, r.status, r.header.Get("Location"))
			}
			s2, _ := readSession(t, again)
			if s2.Trigger != "signIn" || s2.IsNewUser || s2.Sub != firstSub {
				t.Errorf("%s second sign-in: trigger, isNewUser, sub = %q, %v, %q; want signIn, false, %q (the same user)", id, s2.Trigger, s2.IsNewUser, s2.Sub, firstSub)
			}
			for _, name := range []string{"next-auth.state", "next-auth.pkce.code_verifier", "next-auth.nonce"} {
				if b.get(name) != "" {
					t.Errorf("%s: check cookie %s still set after the callback", id, name)
				}
			}
		}
	})

	t.Run("refused callbacks", func(t *testing.T) {
		type setup func(t *testing.T, b *browser) string
		tests := []struct {
			name string
			gw   func(t *testing.T) *gateway
			run  setup
			want string
		}{
			{"tampered state", nil, func(t *testing.T, b *browser) string {
				back := authorize(t, b, "hydra")
				u, _ := url.Parse(back)
				q := u.Query()
				q.Set("state", q.Get("state")+"x")
				u.RawQuery = q.Encode()
				return u.String()
			}, "OAuthCallback"},
			{"missing state cookie", nil, func(t *testing.T, b *browser) string {
				back := authorize(t, b, "hydra")
				b.del("next-auth.state")
				return back
			}, "OAuthCallback"},
			{"replayed code", nil, func(t *testing.T, b *browser) string {
				back := authorize(t, b, "hydra")
				saved := map[string]string{}
				for _, n := range []string{"next-auth.state", "next-auth.pkce.code_verifier", "next-auth.nonce"} {
					saved[n] = b.get(n)
				}
				if r := b.getPage(back); r.status != 302 || errorCode(r) != "" {
					t.Fatalf("first use of the code: got %d %s, want a sign-in", r.status, r.header.Get("Location"))
				}
				// The replay comes from a browser without that session, holding the same
				// (still valid) check cookies.
				b.del("next-auth.session-token")
				for n, v := range saved {
					b.set(n, v)
				}
				return back
			}, "OAuthCallback"},
			{"wrong nonce", nil, func(t *testing.T, b *browser) string {
				other := gw.browser(t)
				authorize(t, other, "hydra")
				back := authorize(t, b, "hydra")
				b.set("next-auth.nonce", other.get("next-auth.nonce"))
				return back
			}, "OAuthCallback"},
			{"state cookie of another provider", nil, func(t *testing.T, b *browser) string {
				other := gw.browser(t)
				authorize(t, other, "hydra-state")
				back := authorize(t, b, "hydra")
				b.set("next-auth.state", other.get("next-auth.state"))
				return back
			}, "OAuthCallback"},
			{"e-mail of a user linked to another provider", nil, func(t *testing.T, b *browser) string {
				first := gw.browser(t)
				if r := first.getPage(authorize(t, first, "hydra")); r.status != 302 || errorCode(r) != "" {
					t.Fatalf("sign in through hydra: got %d %s", r.status, r.header.Get("Location"))
				}
				return authorize(t, b, "hydra-state")
			}, "OAuthAccountNotLinked"},
			{"provider error", nil, func(t *testing.T, b *browser) string {
				return "/api/auth/callback/hydra?error=access_denied&error_description=denied"
			}, "Callback"},
			{"expired ID token", func(t *testing.T) *gateway {
				// The log check below proves it is the expiry that is refused.
				c := &jumpClock{}
				c.add(2 * time.Hour) // Hydra's ID tokens live one hour
				return newGateway(t, c)
			}, func(t *testing.T, b *browser) string { return authorize(t, b, "hydra") }, "OAuthCallback"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				g := gw
				if tt.gw != nil {
					g = tt.gw(t)
				}
				b := g.browser(t)
				back := tt.run(t, b)
				r := b.getPage(back)
				if got := errorCode(r); r.status != 302 || got != tt.want {
					t.Fatalf("got %d Location %q, want a redirect with error=%s", r.status, r.header.Get("Location"), tt.want)
				}
				if tt.name == "expired ID token" && !strings.Contains(g.logs.String(), "token is expired") {
					t.Errorf("the refusal was not for the ID token's expiry; log:\n%s", g.logs.String())
				}
				if tt.name == "wrong nonce" && !strings.Contains(g.logs.String(), "nonce does not match") {
					t.Errorf("the refusal was not for the nonce; log:\n%s", g.logs.String())
				}
				if s, _ := readSession(t, b); s.User.Email != "" {
					t.Errorf("a refused callback left a session: %+v", s)
				}
			})
		}
	})

	t.Run("callback leg without the provider's time", func(t *testing.T) {
		g := newGateway(t, &jumpClock{})
		const n = 20
		var total time.Duration
		for i := range n {
			b := g.browser(t)
			back := authorize(t, b, "hydra")
			busy := h.busy.Load()
			start := time.Now()
			r := b.getPage(back)
			took := time.Since(start) - time.Duration(h.busy.Load()-busy)
			if r.status != 302 || errorCode(r) != "" {
				t.Fatalf("sign-in %d: got %d %s", i, r.status, r.header.Get("Location"))
			}
			if i > 0 { // the first one also discovers the issuer and fetches its keys
				total += took
			}
		}
		t.Logf("callback leg (check cookies, code exchange and ID token validation, store, callbacks, session cookie), provider time excluded: mean %v over %d sign-ins", total/(n-1), n-1)
	})

	t.Run("refresh rotation: 50 parallel reads, one refresh", func(t *testing.T) {
		c := &jumpClock{}
		g := newGateway(t, c)
		b := g.browser(t)
		if r := b.getPage(authorize(t, b, "hydra-refresh")); r.status != 302 || errorCode(r) != "" {
			t.Fatalf("sign in: got %d %s", r.status, r.header.Get("Location"))
		}
		before, _ := readSession(t, b)
		if before.AccessToken == "" || before.Refreshes != 0 {
			t.Fatalf("after sign-in: got %+v, want an access token and no refresh", before)
		}
		for round := 1; round <= 2; round++ {
			start := h.refresh.Load()
			c.add(2 * time.Hour) // past the access token's one-hour expiry and its grace period
			cookieHeader := b.cookieHeader()
			var wg sync.WaitGroup
			results := make([]oauthSession, 50)
			cookies := make([]string, 50)
			errs := make(chan error, 50)
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/api/auth/session", nil)
					req.Header.Set("Cookie", cookieHeader)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("status %d: %s", resp.StatusCode, body)
						return
					}
					if err := json.Unmarshal(body, &results[i]); err != nil {
						errs <- err
						return
					}
					for _, sc := range resp.Header.Values("Set-Cookie") {
						if strings.HasPrefix(sc, "next-auth.session-token=") {
							cookies[i] = strings.SplitN(strings.TrimPrefix(sc, "next-auth.session-token="), ";", 2)[0]
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("round %d: parallel session read: %v", round, err)
			}
			if got := h.refresh.Load() - start; got != 1 {
				t.Errorf("round %d: refresh grants at the provider: got %d, want exactly 1", round, got)
			}
			for i, s := range results {
				if s.User.Email != "ada@example.com" || s.AccessToken == before.AccessToken || s.AccessToken != results[0].AccessToken || s.Refreshes != round {
					t.Fatalf("round %d: request %d got %+v; want Ada with the one new access token, refreshes=%d", round, i, s, round)
				}
				if cookies[i] == "" {
					t.Fatalf("round %d: request %d got no renewed session cookie", round, i)
				}
			}
			// Continue with one of the renewed cookies: its refresh token is the rotated one,
			// so the next round proves the rotation left a usable grant.
			b.set("next-auth.session-token", cookies[len(cookies)-1])
			before = results[0]
		}
	})
}
