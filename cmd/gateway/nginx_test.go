package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// requireTool is testkit.RequireTool: the tool's path, or a skip with the reason (a failure
// in CI).
func requireTool(t *testing.T, name string, fallbacks ...string) string {
	t.Helper()
	return testkit.RequireTool(t, name, fallbacks...)
}

// The addresses the documented block uses for the gateway and the app.
const (
	docGatewayAddr  = "127.0.0.1:3000"
	docUpstreamAddr = "127.0.0.1:8080"
)

// documentedNginxBlock returns the nginx block under "### nginx" in docs/proxy.md.
func documentedNginxBlock(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(repoPath("docs", "proxy.md"))
	if err != nil {
		t.Fatalf("read docs/proxy.md: %v", err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### nginx\n")
	if !ok {
		t.Fatal("docs/proxy.md: no \"### nginx\" section")
	}
	_, block, ok := strings.Cut(section, "```nginx\n")
	if !ok {
		t.Fatal("docs/proxy.md: no ```nginx block in the nginx section")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/proxy.md: the ```nginx block is not closed")
	}
	for _, addr := range []string{docGatewayAddr, docUpstreamAddr} {
		if !strings.Contains(block, addr) {
			t.Fatalf("docs/proxy.md: the nginx block no longer uses %s, which the test replaces", addr)
		}
	}
	return block
}

// startNginx runs real nginx with the documented block, the gateway and the app at the
// given addresses.
func startNginx(t *testing.T, listen, gateway, upstream string) {
	t.Helper()
	block := strings.NewReplacer(docGatewayAddr, gateway, docUpstreamAddr, upstream).Replace(documentedNginxBlock(t))
	testkit.StartNginx(t, listen, block)
}

func TestNginxAuthRequest(t *testing.T) {
	requireTool(t, "nginx", "/usr/sbin/nginx")
	up := echoUpstream(t)
	nginxAddr := freeLoopbackAddr(t)
	nginxURL := "http://" + nginxAddr
	// The gateway's public URL is nginx's: browsers only ever talk to nginx.
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", "proxy-scripts"),
		Args:       []string{"--url", nginxURL, "--config", writeConfig(t, "proxy:\n  trusted_proxies: [127.0.0.1]\n")},
	})
	startNginx(t, nginxAddr, strings.TrimPrefix(gw.URL, "http://"), strings.TrimPrefix(up.URL, "http://"))

	client := newBrowserClient(t)
	html := http.Header{"Accept": {"text/html"}}

	// Signed out: nginx turns the gateway's 401 into the sign-in redirect, even with a
	// forged identity header. The original URL's query (with an encoded & in a value)
	// must come back whole in callbackUrl.
	const page = "/reports/42?tab=a%26b&x=1"
	res := get(t, client, nginxURL+page, http.Header{"Accept": {"text/html"}, "X-Callgate-User": {"admin"}})
	wantLocation := nginxURL + "/api/auth/signin?callbackUrl=" + url.QueryEscape(nginxURL+page)
	if res.Status != http.StatusFound || res.Header.Get("Location") != wantLocation {
		t.Fatalf("signed out GET %s through nginx: got %d Location %q, want 302 %q; body %s", page, res.Status, res.Header.Get("Location"), wantLocation, res.Body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("callbackUrl") != nginxURL+page {
		t.Fatalf("sign-in redirect %q: got callbackUrl %q, want %q", res.Header.Get("Location"), loc.Query().Get("callbackUrl"), nginxURL+page)
	}

	// Sign in through nginx with that callbackUrl, as the sign-in form would.
	var csrf struct{ CSRFToken string }
	csrfRes := get(t, client, nginxURL+"/api/auth/csrf", nil)
	if err := json.Unmarshal(csrfRes.Body, &csrf); err != nil || csrf.CSRFToken == "" {
		t.Fatalf("GET /api/auth/csrf through nginx: got %d %s", csrfRes.Status, csrfRes.Body)
	}
	form := url.Values{"username": {"jatin"}, "password": {"secret"}, "csrfToken": {csrf.CSRFToken}, "callbackUrl": {loc.Query().Get("callbackUrl")}, "json": {"true"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, nginxURL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	signIn := do(t, client, req)
	var landed struct{ URL string }
	if err := json.Unmarshal(signIn.Body, &landed); err != nil || landed.URL != nginxURL+page {
		t.Fatalf("sign in through nginx: got %d %s, want url %s", signIn.Status, signIn.Body, nginxURL+page)
	}

	// Signed in: the upstream gets the identity nginx copied from the auth answer.
	res = get(t, client, landed.URL, html)
	var s seen
	if err := json.Unmarshal(res.Body, &s); err != nil || res.Status != http.StatusOK {
		t.Fatalf("signed in GET through nginx: got %d %s, want 200 from the upstream", res.Status, res.Body)
	}
	for header, want := range map[string]string{"X-Callgate-User": "65a1f0c2e4b0a1b2c3d4e5f6", "X-Callgate-Email": "jatin@example.com"} {
		if s.Headers[header] != want {
			t.Errorf("upstream behind nginx: %s got %q, want %q", header, s.Headers[header], want)
		}
	}
	if s.Path != page {
		t.Errorf("upstream behind nginx: got %q, want %s", s.Path, page)
	}
	if parts := strings.Split(s.Headers["X-Callgate-Assertion"], "."); len(parts) != 3 {
		t.Errorf("upstream behind nginx: got assertion %q, want a JWT", s.Headers["X-Callgate-Assertion"])
	}

	// A redirect chosen by the authorized callback reaches the browser through the same
	// @signin location.
	if res := get(t, client, nginxURL+"/redirect", html); res.Status != http.StatusFound || res.Header.Get("Location") != nginxURL+"/elsewhere" && res.Header.Get("Location") != "/elsewhere" {
		t.Errorf("signed in GET /redirect through nginx: got %d Location %q, want 302 to /elsewhere", res.Status, res.Header.Get("Location"))
	}

	// Denied by the authorized callback: nginx passes the 403 on.
	if res := get(t, client, nginxURL+"/deny", html); res.Status != http.StatusForbidden {
		t.Errorf("signed in GET /deny through nginx: got %d, want 403", res.Status)
	}
}

// TestNginxPassesSessionRenewal: real nginx with the documented block, a gateway whose
// clock the test moves past session.updateAge. The answer nginx sends the browser carries
// the renewed session cookie (from the auth answer's X-Callgate-Set-Cookie-N headers) next
// to the app's own cookie, and the renewed cookie, sent back through nginx, is still signed
// in past the expiry the session had before.
func TestNginxPassesSessionRenewal(t *testing.T) {
	requireTool(t, "nginx", "/usr/sbin/nginx")
	up := cookieUpstream(t)
	nginxAddr := freeLoopbackAddr(t)
	nginxURL := "http://" + nginxAddr
	clock := &movedClock{}
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", "proxy-scripts"),
		Now:        clock.Now,
		Args:       []string{"--url", nginxURL, "--config", writeConfig(t, "proxy:\n  trusted_proxies: [127.0.0.1]\n")},
	})
	startNginx(t, nginxAddr, strings.TrimPrefix(gw.URL, "http://"), strings.TrimPrefix(up.URL, "http://"))

	client := newBrowserClient(t)
	var csrf struct{ CSRFToken string }
	if res := get(t, client, nginxURL+"/api/auth/csrf", nil); json.Unmarshal(res.Body, &csrf) != nil || csrf.CSRFToken == "" {
		t.Fatalf("GET /api/auth/csrf through nginx: got %d %s", res.Status, res.Body)
	}
	form := url.Values{"username": {"jatin"}, "password": {"secret"}, "csrfToken": {csrf.CSRFToken}, "callbackUrl": {nginxURL + "/"}, "json": {"true"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, nginxURL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := do(t, client, req); res.Status != http.StatusOK {
		t.Fatalf("sign in through nginx: got %d %s", res.Status, res.Body)
	}
	u, _ := url.Parse(nginxURL + "/")
	var cookie string
	for _, c := range client.Jar.Cookies(u) {
		if c.Name == sessionCookieName {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatal("sign in through nginx: no session cookie")
	}
	send := func(value string) httpResult {
		noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		return get(t, noRedirects, nginxURL+"/page", http.Header{"Cookie": {sessionCookieName + "=" + value}, "Accept": {"text/html"}})
	}

	res := send(cookie)
	if _, renewed := sessionSetCookie(res.Header.Values("Set-Cookie")); res.Status != http.StatusOK || renewed {
		t.Fatalf("before updateAge through nginx: got %d, renewed %v; want 200 and no session cookie", res.Status, renewed)
	}
	clock.advance(25 * time.Hour) // past the default updateAge (24 h)
	res = send(cookie)
	if res.Status != http.StatusOK {
		t.Fatalf("past updateAge through nginx: got %d %s, want 200", res.Status, res.Body)
	}
	c, ok := sessionSetCookie(res.Header.Values("Set-Cookie"))
	if !ok || c.Value == "" || c.Value == cookie {
		t.Fatalf("past updateAge through nginx: got Set-Cookie %q, want a renewed session cookie", res.Header.Values("Set-Cookie"))
	}
	if got := strings.Join(res.Header.Values("Set-Cookie"), "\n"); !strings.Contains(got, "app-pref=dark") {
		t.Errorf("past updateAge through nginx: Set-Cookie %q lost the app's own cookie", got)
	}
	for _, h := range []string{"X-Callgate-Set-Cookie-1", "X-Callgate-User"} {
		if res.Header.Get(h) != "" {
			t.Errorf("nginx passed the gateway's %s on to the browser", h)
		}
	}
	clock.advance(30 * 24 * time.Hour) // past the old cookie's expiry, not the renewed one's
	if res := send(c.Value); res.Status != http.StatusOK || string(res.Body) != "65a1f0c2e4b0a1b2c3d4e5f6" {
		t.Errorf("renewed cookie past the old expiry through nginx: got %d %q, want 200 from the app for the signed-in user", res.Status, res.Body)
	}
	if res := send(cookie); res.Status != http.StatusFound {
		t.Errorf("old cookie past its expiry through nginx: got %d, want 302 to sign in", res.Status)
	}
}
