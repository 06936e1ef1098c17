package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/internal/testkit"
)

// These tests hold the gateway to "a cheap request must not cost a lot, and nothing
// operational leaks": bounded session-cookie chunks, stored values that can never turn into
// a 500, read deadlines on auth bodies, and operational endpoints only for operators.

// manyChunks is a Cookie header with n session chunks, as an attacker sends them.
func manyChunks(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(sessionCookieName + "." + strconv.Itoa(i) + "=x")
	}
	return b.String()
}

// rawCSRF gets a CSRF token and the raw (still encoded) cookie pair that goes with it.
func rawCSRF(t *testing.T, gw *testGateway) (token, cookiePair string) {
	t.Helper()
	res := sendWith(t, http.MethodGet, gw.URL+"/api/auth/csrf", "", nil, "")
	var body struct{ CSRFToken string }
	if err := json.Unmarshal(res.Body, &body); err != nil || body.CSRFToken == "" {
		t.Fatalf("GET /api/auth/csrf: %d %s", res.Status, res.Body)
	}
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "next-auth.csrf-token=") {
			pair, _, _ := strings.Cut(c, ";")
			return body.CSRFToken, pair
		}
	}
	t.Fatalf("GET /api/auth/csrf set no CSRF cookie: %q", res.Header.Values("Set-Cookie"))
	return "", ""
}

// sendWith sends one request with an explicit Cookie header (no jar), Host and form body,
// without following redirects.
func sendWith(t *testing.T, method, target, cookies string, header http.Header, form string) httpResult {
	t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	if form != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return do(t, client, req)
}

// TestSessionCookieChunksBounded: 30,000 session chunks cost one bounded request: no session,
// and at most MaxChunks deletions besides the cookies the response really sets.
func TestSessionCookieChunksBounded(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf("routes:\n  - {name: app, path: /app, upstream: %s}\n", up.URL))
	huge := manyChunks(30000)
	signedIn := signedInClient(t, gw)
	session := sessionCookieName + "=" + jarCookie(t, signedIn, gw, sessionCookieName)
	csrf, csrfPair := rawCSRF(t, gw)
	apiHeader := http.Header{"Accept": {"application/json"}}
	maxSetCookies := cookie.MaxChunks + 2 // the deletions, plus the CSRF and callback-url init cookies

	for _, tc := range []struct {
		name, method, path, cookies, form string
		header                            http.Header
		wantStatus                        int
		wantBody                          string // exact, when set
		extraSetCookies                   int    // cookies the route itself writes
	}{
		{"session read, chunks only", http.MethodGet, "/api/auth/session", huge, "", nil, 200, "{}", 0},
		{"session read, valid session beside them", http.MethodGet, "/api/auth/session", session + "; " + huge, "", nil, 200, "{}", 0},
		{"home page", http.MethodGet, "/", session + "; " + huge, "", nil, 200, "", 0},
		{"proxied request has no session", http.MethodGet, "/app/x", session + "; " + huge, "", apiHeader, 401, "", 0},
		{"sign-in writes its own chunk and no more deletions than the cap", http.MethodPost, "/api/auth/callback/credentials", csrfPair + "; " + huge,
			url.Values{"username": {"jatin"}, "password": {"secret"}, "csrfToken": {csrf}, "json": {"true"}}.Encode(), nil, 200, "", 1},
		{"sign-out", http.MethodPost, "/api/auth/signout", csrfPair + "; " + session + "; " + huge,
			url.Values{"csrfToken": {csrf}, "json": {"true"}}.Encode(), nil, 200, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := sendWith(t, tc.method, gw.URL+tc.path, tc.cookies, tc.header, tc.form)
			if res.Status != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %.300s", tc.method, tc.path, res.Status, tc.wantStatus, res.Body)
			}
			if tc.wantBody != "" && string(res.Body) != tc.wantBody {
				t.Errorf("%s %s: body %.300s, want %s", tc.method, tc.path, res.Body, tc.wantBody)
			}
			if n := len(res.Header.Values("Set-Cookie")); n > maxSetCookies+tc.extraSetCookies {
				t.Errorf("%s %s: %d Set-Cookie lines, want at most %d", tc.method, tc.path, n, maxSetCookies+tc.extraSetCookies)
			}
		})
	}
}

// TestBadCookiesNeverServerError: whatever cookies a browser (or an attacker, or a sibling
// app on a shared domain) sends, no route answers 5xx; a bad session cookie is no session.
func TestBadCookiesNeverServerError(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf("routes:\n  - {name: app, path: /app, upstream: %s}\n", up.URL))
	signedIn := signedInClient(t, gw)
	session := sessionCookieName + "=" + jarCookie(t, signedIn, gw, sessionCookieName)
	s := sessionCookieName
	cases := []struct {
		name, cookies string
		signedIn      bool // /api/auth/session still returns the user
	}{
		{"undecodable token", s + "=garbage", false},
		{"bad percent-encoding", s + "=%zz%E0%A4%A", false},
		{"chunk gap", s + ".0=eyJhbGciOiJkaXIi; " + s + ".2=rest", false},
		{"chunk numbering not canonical", s + ".00=a; " + s + ".+1=b; " + s + ".0x2=c; " + s + ".-1=d", false},
		{"chunk index past the cap", s + ".9999999999999999999999=a", false},
		{"plain name beside chunks", s + "=a; " + s + ".0=b; " + s + ".1=c", false},
		{"one more chunk than the cap", manyChunks(cookie.MaxChunks + 1), false},
		{"empty and quoted values", s + `=""; ` + s + `.0="; ` + s + ".1=", false},
		{"garbage pairs", `;;=;==; ` + s + `; "` + s + `"=x; ` + s + "\t=\t", false},
		{"callback-url not a URL", "next-auth.callback-url=%2F%25zz", false},
		{"callback-url with a bad escape decoded raw", "next-auth.callback-url=http%3A%2F%2Flocalhost%2F%zz", false},
		{"callback-url javascript:", "next-auth.callback-url=javascript%3Aalert(1)", false},
		{"callback-url unparsable host", "next-auth.callback-url=http%3A%2F%2F%5B%3A%3A1", false},
		{"callback-url off-site", "next-auth.callback-url=https%3A%2F%2Fevil.example%2F", false},
		{"csrf cookie garbage", "next-auth.csrf-token=zz%7Cyy%7C", false},
		{"valid session beside a bad callback-url", session + "; next-auth.callback-url=%2F%25zz", true},
		{"valid session beside foreign chunk names", session + "; " + s + ".01=x; " + s + "-legacy=y", true},
	}
	routes := []struct{ method, path, form string }{
		{http.MethodGet, "/api/auth/session", ""},
		{http.MethodGet, "/api/auth/csrf", ""},
		{http.MethodGet, "/api/auth/providers", ""},
		{http.MethodGet, "/api/auth/signin", ""},
		{http.MethodGet, "/api/auth/signin?callbackUrl=%2Fok", ""},
		{http.MethodGet, "/api/auth/signout", ""},
		{http.MethodGet, "/api/auth/error?error=Nope", ""},
		{http.MethodGet, "/api/auth/verify-request", ""},
		{http.MethodPost, "/api/auth/session", "csrfToken=x"},
		{http.MethodPost, "/api/auth/signout", "csrfToken=x"},
		{http.MethodPost, "/api/auth/callback/credentials", "csrfToken=x&username=jatin&password=secret"},
		{http.MethodGet, "/", ""},
		{http.MethodGet, "/app/x", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, rt := range routes {
				res := sendWith(t, rt.method, gw.URL+rt.path, tc.cookies, http.Header{"Accept": {"application/json"}}, rt.form)
				if res.Status >= 500 {
					t.Errorf("%s %s with Cookie %.120q: status %d, want < 500; body %.200s", rt.method, rt.path, tc.cookies, res.Status, res.Body)
				}
			}
			res := sendWith(t, http.MethodGet, gw.URL+"/api/auth/session", tc.cookies, nil, "")
			if got := strings.Contains(string(res.Body), `"name":"Jatin"`); got != tc.signedIn || (!tc.signedIn && string(res.Body) != "{}") {
				t.Errorf("GET /api/auth/session: %d %s, want signed in %v", res.Status, res.Body, tc.signedIn)
			}
		})
	}
}

// TestCrossSiteSignoutStoresNothing: a POST that proves nothing (no CSRF token, or a wrong
// one) stores no cookie at all, so a cross-site form cannot plant a callback URL that breaks
// every later request of that browser; and a stored bad callback URL is ignored anyway.
func TestCrossSiteSignoutStoresNothing(t *testing.T) {
	gw := startGateway(t, gatewayOptions{})
	evil := http.Header{"Origin": {"https://evil.example"}, "Referer": {"https://evil.example/page"}}
	laterRequests := func(t *testing.T, client *http.Client) {
		t.Helper()
		for _, path := range []string{"/api/auth/session", "/api/auth/csrf", "/api/auth/signin", "/api/auth/signout", "/api/auth/providers", "/"} {
			res := get(t, client, gw.URL+path, nil)
			if res.Status >= 500 {
				t.Errorf("later GET %s: status %d, want < 500; body %.200s", path, res.Status, res.Body)
			}
		}
	}
	post := func(t *testing.T, client *http.Client, form url.Values) httpResult {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gw.URL+"/api/auth/signout", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = evil.Clone()
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(t, client, req)
	}

	for _, tc := range []struct {
		name     string
		prepare  func(t *testing.T, client *http.Client)
		form     url.Values
		wantJSON bool
	}{
		{"fresh browser, no token", nil, url.Values{"callbackUrl": {"/%zz"}}, false},
		{"fresh browser, no token, json", nil, url.Values{"callbackUrl": {"/%zz"}, "json": {"true"}}, true},
		{"browser with a CSRF cookie, wrong token", func(t *testing.T, c *http.Client) { csrfToken(t, c, gw) },
			url.Values{"callbackUrl": {"/%zz"}, "csrfToken": {"wrong"}}, false},
		{"signed-in browser, no token", func(t *testing.T, c *http.Client) {
			if res := signInWithCredentials(t, c, gw, "jatin", "secret"); res.Status != http.StatusOK {
				t.Fatalf("sign in: %d %s", res.Status, res.Body)
			}
		}, url.Values{"callbackUrl": {"/%zz"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := newBrowserClient(t)
			if tc.prepare != nil {
				tc.prepare(t, client)
			}
			before := jarCookie(t, client, gw, sessionCookieName)
			res := post(t, client, tc.form)
			if got := res.Header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("CSRF-less sign-out POST set cookies %q, want none", got)
			}
			wantURL := gw.URL + "/api/auth/signout?csrf=true"
			if tc.wantJSON {
				if res.Status != http.StatusOK || !strings.Contains(string(res.Body), wantURL) {
					t.Errorf("got %d %s, want 200 {\"url\":%q}", res.Status, res.Body, wantURL)
				}
			} else if res.Status != http.StatusFound || res.Header.Get("Location") != wantURL {
				t.Errorf("got %d Location %q, want 302 to %s", res.Status, res.Header.Get("Location"), wantURL)
			}
			if after := jarCookie(t, client, gw, sessionCookieName); after != before {
				t.Errorf("the session cookie changed on a CSRF-less sign-out")
			}
			laterRequests(t, client)
		})
	}

	t.Run("with the CSRF token a bad callbackUrl still never breaks later requests", func(t *testing.T) {
		client := newBrowserClient(t)
		res := post(t, client, url.Values{"callbackUrl": {"/%zz"}, "csrfToken": {csrfToken(t, client, gw)}})
		if res.Status >= 500 {
			t.Fatalf("sign-out with a token: %d %s", res.Status, res.Body)
		}
		laterRequests(t, client)
	})
}

// slowBodyPOST opens a connection, sends the headers of a POST with a 1000-byte form body and
// only 20 bytes of it, then reads the answer. It returns the status and whether the server
// closed the connection after answering (the handler returned and the connection is gone).
func slowBodyPOST(t *testing.T, addr, path string) (status int, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ncsrfToken=x&usernam", path, addr)
	// Generous: the deadline under test is 300 ms; a hung handler never answers at all.
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("POST %s with a stalled body: no answer: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_, err = br.ReadByte()
	return res.StatusCode, err == io.EOF
}

// TestAuthBodyReadDeadline: every /api/auth/* body is read under server.request_body_timeout:
// a sender that stalls gets 408 and its connection closed, and the deadline covers the body
// only, so a callback slower than it still finishes.
func TestAuthBodyReadDeadline(t *testing.T) {
	slow := `import Credentials from "callgate/providers/credentials";
export default {
  providers: [
    Credentials({
      name: "credentials",
      credentials: { username: { label: "Username", type: "text" } },
      authorize(credentials) {
        // Busy for longer than the body deadline: it must not be what cuts the request.
        const end = Date.now() + 900;
        while (Date.now() < end) {}
        return { id: "u-slow", name: "Slow", email: "slow@example.com" };
      },
    }),
  ],
};
`
	gw := startGateway(t, gatewayOptions{
		ScriptsDir: writeFiles(t, map[string]string{"auth.config.js": slow}),
		Args:       []string{"--config", writeConfig(t, "server:\n  request_body_timeout: 300ms\n")},
	})
	addr := strings.TrimPrefix(gw.URL, "http://")
	for _, path := range []string{
		"/api/auth/callback/credentials", "/api/auth/signin/credentials", "/api/auth/signout",
		"/api/auth/session", "/api/auth/_log", "/api/auth/csrf",
	} {
		t.Run(path, func(t *testing.T) {
			status, closed := slowBodyPOST(t, addr, path)
			if status != http.StatusRequestTimeout {
				t.Errorf("POST %s with a stalled body: status %d, want 408", path, status)
			}
			if !closed {
				t.Errorf("POST %s with a stalled body: the connection stayed open after the answer", path)
			}
		})
	}
	t.Run("a slow callback after a prompt body is not cut off", func(t *testing.T) {
		client := newBrowserClient(t)
		res := signInWithCredentials(t, client, gw, "slow", "")
		if res.Status != http.StatusOK || jarCookie(t, client, gw, sessionCookieName) == "" {
			t.Fatalf("sign-in with a 900 ms authorize and a 300 ms body deadline: %d %s, want 200 and a session", res.Status, res.Body)
		}
	})
}

// brokenScript is a scripts file whose offending line holds a secret: a refused reload must
// not show it to anyone but the operator.
const brokenScript = "export default { providers: [] };\nconst apiKey = \"sk_live_TOPSECRET42\" );\n"

// waitFor polls check until it returns true, or fails the test after 15 s.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	testkit.WaitFor(t, what, 15*time.Second, func() error {
		if check() {
			return nil
		}
		return errors.New("not yet")
	})
}

type opsStatus struct {
	Status    string `json:"status"`
	LastError *struct {
		Message    string `json:"message"`
		File       string `json:"file"`
		Line       int    `json:"line"`
		Column     int    `json:"column"`
		SourceLine string `json:"source_line"`
	} `json:"last_error"`
}

// TestOpsEndpointsOnlyForOperators: /-/status, /metrics and /healthz by host. On the
// gateway's own host they are the gateway's (status redacted, health without error details,
// metrics only while there is no admin listener); on a route host they are the app's; the
// admin listener serves them in full and nothing else.
func TestOpsEndpointsOnlyForOperators(t *testing.T) {
	up := echoUpstream(t)
	admin := freeLoopbackAddr(t)
	proxyScripts, err := os.ReadFile(filepath.Join("testdata", "proxy-scripts", "auth.config.js"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{"auth.config.js": string(proxyScripts)})
	gw := startGateway(t, gatewayOptions{ScriptsDir: dir, Args: []string{"--config", writeConfig(t, fmt.Sprintf(`
server:
  admin_listen: %s
routes:
  - {name: app, host: app.example.test, path: /, upstream: %s, public: true}
  - {name: site, path: /, upstream: %[2]s, public: true}
`, admin, up.URL))}})
	adminURL := "http://" + admin
	if err := os.WriteFile(filepath.Join(dir, "auth.config.js"), []byte(brokenScript), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload on the admin listener's /-/status", func() bool {
		res := sendWith(t, http.MethodGet, adminURL+"/-/status", "", nil, "")
		var s opsStatus
		return res.Status == 200 && json.Unmarshal(res.Body, &s) == nil && s.LastError != nil
	})

	gatewayHost := strings.TrimPrefix(gw.URL, "http://")
	const (
		upstream     = "upstream"
		statusPublic = "status, source line redacted"
		statusFull   = "status in full"
		metricsBody  = "metrics"
		healthShort  = "health"
	)
	for _, tc := range []struct {
		where, base, host, path, want string
	}{
		{"gateway host", gw.URL, gatewayHost, "/-/status", statusPublic},
		{"gateway host", gw.URL, gatewayHost, "/metrics", upstream}, // served on the admin listener only
		{"gateway host", gw.URL, gatewayHost, "/healthz", healthShort},
		{"route host", gw.URL, "app.example.test", "/-/status", upstream},
		{"route host", gw.URL, "app.example.test", "/metrics", upstream},
		{"route host", gw.URL, "app.example.test", "/healthz", upstream},
		{"admin listener", adminURL, admin, "/-/status", statusFull},
		{"admin listener", adminURL, admin, "/metrics", metricsBody},
		{"admin listener", adminURL, admin, "/healthz", healthShort},
	} {
		t.Run(tc.where+" "+tc.path, func(t *testing.T) {
			res := sendWith(t, http.MethodGet, tc.base+tc.path, "", http.Header{"Host": {tc.host}}, "")
			var s seen
			reachedApp := json.Unmarshal(res.Body, &s) == nil && s.Path != ""
			if reachedApp != (tc.want == upstream) {
				t.Fatalf("GET %s on %s: reached the app %v, want %v; %d %.300s", tc.path, tc.where, reachedApp, tc.want == upstream, res.Status, res.Body)
			}
			switch tc.want {
			case upstream:
				if s.Path != tc.path {
					t.Errorf("the app saw path %q, want %q", s.Path, tc.path)
				}
			case statusPublic, statusFull:
				var st opsStatus
				if err := json.Unmarshal(res.Body, &st); err != nil || res.Status != 200 || st.LastError == nil {
					t.Fatalf("GET %s: %d %s, want 200 with last_error", tc.path, res.Status, res.Body)
				}
				e := st.LastError
				if e.File != "auth.config.js" || e.Line != 2 || e.Column == 0 || e.Message == "" {
					t.Errorf("last_error %+v: want auth.config.js:2:col and the message", *e)
				}
				hasSecret := strings.Contains(string(res.Body), "TOPSECRET")
				if tc.want == statusPublic && (hasSecret || !strings.Contains(e.SourceLine, "redacted")) {
					t.Errorf("public /-/status source_line %q: want it redacted (body %s)", e.SourceLine, res.Body)
				}
				if tc.want == statusFull && !strings.Contains(e.SourceLine, "sk_live_TOPSECRET42") {
					t.Errorf("admin /-/status source_line %q: want the offending line", e.SourceLine)
				}
			case metricsBody:
				if res.Status != 200 || !strings.Contains(string(res.Body), `callgate_script_reloads_total{outcome="failed"} 1`) {
					t.Errorf("GET /metrics: %d %.300s, want the Prometheus metrics", res.Status, res.Body)
				}
			case healthShort:
				var h struct {
					Status string         `json:"status"`
					Store  map[string]any `json:"store"`
				}
				if err := json.Unmarshal(res.Body, &h); err != nil || res.Status != 200 || h.Status != "ok" || h.Store["state"] != "ok" {
					t.Errorf("GET /healthz: %d %s, want 200 status ok with the store's state", res.Status, res.Body)
				}
			}
		})
	}
	t.Run("the admin listener serves nothing else", func(t *testing.T) {
		for _, path := range []string{"/api/auth/session", "/", "/status"} {
			if res := sendWith(t, http.MethodGet, adminURL+path, "", nil, ""); res.Status != http.StatusNotFound {
				t.Errorf("admin GET %s: %d, want 404", path, res.Status)
			}
		}
	})

	t.Run("without an admin listener the gateway host serves /metrics", func(t *testing.T) {
		plain := startProxyGateway(t, fmt.Sprintf("routes:\n  - {name: site, path: /, upstream: %s, public: true}\n", up.URL))
		res := sendWith(t, http.MethodGet, plain.URL+"/metrics", "", nil, "")
		if res.Status != 200 || !strings.Contains(string(res.Body), "callgate_http_requests_total") {
			t.Errorf("GET /metrics on the gateway host: %d %.200s, want the metrics", res.Status, res.Body)
		}
		res = sendWith(t, http.MethodGet, plain.URL+"/metrics", "", http.Header{"Host": {"unknown.example.test"}}, "")
		if res.Status != 200 || !strings.Contains(string(res.Body), "callgate_http_requests_total") {
			t.Errorf("GET /metrics on a host no route names (a probe by IP): %d %.200s, want the metrics", res.Status, res.Body)
		}
	})
}

// storeErrorField is the store status's error text, in compact or indented JSON.
var storeErrorField = regexp.MustCompile(`"error":\s*"`)

// TestHealthzHidesStoreErrors: with the store down, the public /healthz and /-/status say so
// (degraded, state unavailable) without the error text; the admin listener has it.
func TestHealthzHidesStoreErrors(t *testing.T) {
	admin := freeLoopbackAddr(t)
	deadRedis := "redis://" + freeLoopbackAddr(t) + "/0"
	gw := startGateway(t, gatewayOptions{Args: []string{"--store", deadRedis, "--config", writeConfig(t, fmt.Sprintf("demo_user: false\nserver:\n  admin_listen: %s\n", admin))}})
	for _, tc := range []struct {
		url        string
		wantDetail bool
	}{
		{gw.URL + "/healthz", false},
		{gw.URL + "/-/status", false},
		{"http://" + admin + "/healthz", true},
		{"http://" + admin + "/-/status", true},
	} {
		res := sendWith(t, http.MethodGet, tc.url, "", nil, "")
		body := string(res.Body)
		if !strings.Contains(body, `"unavailable"`) {
			t.Errorf("GET %s: %d %s, want the store reported unavailable", tc.url, res.Status, body)
		}
		if got := storeErrorField.MatchString(body); got != tc.wantDetail {
			t.Errorf("GET %s: shows the store error %v, want %v; body %s", tc.url, got, tc.wantDetail, body)
		}
	}
}

// TestAppReceivesItsOwnStatusPaths: the gateway reserves only what it serves, so an app
// behind a route gets /status, /readyz and /livez, on a route host and on the gateway's.
func TestAppReceivesItsOwnStatusPaths(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf(`
routes:
  - {name: app, host: app.example.test, path: /, upstream: %s, public: true}
  - {name: site, path: /, upstream: %[1]s, public: true}
`, up.URL))
	for _, host := range []string{strings.TrimPrefix(gw.URL, "http://"), "app.example.test"} {
		for _, path := range []string{"/status", "/readyz", "/livez", "/-/other"} {
			res := sendWith(t, http.MethodGet, gw.URL+path, "", http.Header{"Host": {host}}, "")
			var s seen
			if json.Unmarshal(res.Body, &s) != nil || s.Path != path {
				t.Errorf("GET %s on %s: %d %.200s, want the app's answer", path, host, res.Status, res.Body)
			}
		}
	}
}
