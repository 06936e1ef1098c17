package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/internal/testkit"
)

// echoUpstream is a real app behind the gateway: it answers every request with what it
// received (path, headers, cookies) as JSON, streams server-sent events on /sse, and echoes
// bytes on an upgraded connection on /ws.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: event %d\n\n", i)
				http.NewResponseController(w).Flush()
				time.Sleep(50 * time.Millisecond)
			}
			return
		case "/ws":
			if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				http.Error(w, "want an upgrade", http.StatusBadRequest)
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen-User: %s\r\n\r\n", r.Header.Get("X-Callgate-User"))
			rw.Flush()
			_, _ = io.Copy(conn, rw) // echo until the client closes
			return
		case "/slow":
			// Never answers: the gateway's upstream timeout gives up and cancels the request.
			<-r.Context().Done()
			return
		}
		headers := map[string]string{}
		for k, v := range r.Header {
			headers[k] = strings.Join(v, ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "headers": headers})
	}))
	t.Cleanup(up.Close)
	return up
}

// seen is what the echo upstream reports.
type seen struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "callgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
	return path
}

// startProxyGateway runs a gateway with the proxy test scripts and the given YAML config.
func startProxyGateway(t *testing.T, yaml string) *testGateway {
	t.Helper()
	return startGateway(t, gatewayOptions{
		ScriptsDir: filepath.Join("testdata", "proxy-scripts"),
		Args:       []string{"--config", writeConfig(t, yaml)},
	})
}

func get(t *testing.T, client *http.Client, rawURL string, header http.Header) httpResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, client, req)
}

func signedInClient(t *testing.T, gw *testGateway) *http.Client {
	t.Helper()
	client := newBrowserClient(t)
	if res := signInWithCredentials(t, client, gw, "jatin", "secret"); res.Status != http.StatusOK || jarCookie(t, client, gw, sessionCookieName) == "" {
		t.Fatalf("sign in: got status %d and no session cookie; body %s", res.Status, res.Body)
	}
	return client
}

func TestProxyDecisions(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf(`
routes:
  - {name: app, path: /, upstream: %[1]s}
  - {name: docs, path: /public, upstream: %[1]s, public: true}
`, up.URL))
	signedIn := signedInClient(t, gw)
	anonymous := newBrowserClient(t)
	html := http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	api := http.Header{"Accept": {"application/json"}}

	tests := []struct {
		name         string
		client       *http.Client
		path         string
		header       http.Header
		wantStatus   int
		wantLocation string // exact, when set
		wantUpstream bool
		wantUser     string // X-Callgate-User the app sees
	}{
		{"signed-out browser is sent to sign in", anonymous, "/app/page?x=1", html, 302,
			gw.URL + "/api/auth/signin?callbackUrl=" + url.QueryEscape(gw.URL+"/app/page?x=1"), false, ""},
		{"signed-out API client gets 401", anonymous, "/app/page", api, 401, "", false, ""},
		{"public route needs no session", anonymous, "/public/readme", api, 200, "", true, ""},
		{"dot-dot out of a public route is not public", anonymous, "/public/../app/x", api, 401, "", false, ""},
		{"public prefix is segment-wise", anonymous, "/publicity", api, 401, "", false, ""},
		{"authorized may let anonymous requests through", anonymous, "/anonymous", api, 200, "", true, ""},
		{"signed in and allowed", signedIn, "/app/page", html, 200, "", true, "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"public route still tells who is signed in", signedIn, "/public/readme", api, 200, "", true, "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"signed in but denied", signedIn, "/deny", html, 403, "", false, ""},
		{"signed in but denied, API", signedIn, "/deny", api, 403, "", false, ""},
		{"authorized redirects", signedIn, "/redirect", html, 302, "/elsewhere", false, ""},
		{"authorized redirect off-site is refused", signedIn, "/offsite", html, 403, "", false, ""},
		{"gateway endpoints are not proxied", anonymous, "/healthz", api, 200, "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, tc.client, gw.URL+tc.path, tc.header)
			if res.Status != tc.wantStatus {
				t.Fatalf("GET %s: got status %d, want %d; body %s", tc.path, res.Status, tc.wantStatus, res.Body)
			}
			if tc.wantLocation != "" && res.Header.Get("Location") != tc.wantLocation {
				t.Errorf("GET %s: got Location %q, want %q", tc.path, res.Header.Get("Location"), tc.wantLocation)
			}
			var s seen
			gotUpstream := json.Unmarshal(res.Body, &s) == nil && s.Path != ""
			if gotUpstream != tc.wantUpstream {
				t.Fatalf("GET %s: reached upstream %v, want %v; body %s", tc.path, gotUpstream, tc.wantUpstream, res.Body)
			}
			if gotUpstream && s.Headers["X-Callgate-User"] != tc.wantUser {
				t.Errorf("GET %s: upstream got X-Callgate-User %q, want %q", tc.path, s.Headers["X-Callgate-User"], tc.wantUser)
			}
		})
	}

	t.Run("identity headers and callback headers reach the app", func(t *testing.T) {
		res := get(t, signedIn, gw.URL+"/extra?q=42", api)
		var s seen
		if err := json.Unmarshal(res.Body, &s); err != nil || res.Status != 200 {
			t.Fatalf("GET /extra: got status %d body %s, want 200 from the upstream", res.Status, res.Body)
		}
		want := map[string]string{
			"X-Callgate-User": "65a1f0c2e4b0a1b2c3d4e5f6", "X-Callgate-Email": "jatin@example.com", "X-Callgate-Name": "Jatin",
			"X-Role": "admin", "X-Route": "app", "X-Seen-Query": "42", "X-Seen-Accept": "application/json",
		}
		for k, v := range want {
			if s.Headers[k] != v {
				t.Errorf("upstream header %s: got %q, want %q", k, s.Headers[k], v)
			}
		}
		if strings.Contains(s.Headers["Cookie"], "next-auth") {
			t.Errorf("upstream got the gateway's cookies %q, want none", s.Headers["Cookie"])
		}
	})
}

func TestProxyStripsSpoofedIdentity(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf(`
routes:
  - {name: app, path: /, upstream: %[1]s}
  - {name: open, path: /public, upstream: %[1]s, public: true}
  - {name: cookies, path: /public/cookies, upstream: %[1]s, public: true, pass_gateway_cookies: true}
identity:
  preset: oauth2-proxy
`, up.URL))
	signedIn := signedInClient(t, gw)
	spoof := http.Header{
		"Accept":                         {"application/json"},
		"X-Callgate-User":                {"admin"},
		"X_callgate_user":                {"admin"},
		"X-Auth-Request-Email":           {"root@example.com"},
		"X-Callgate-Assertion":           {"forged"},
		"Remote-User":                    {"admin"},
		"Connection":                     {"X-Callgate-User, X-Forwarded-For"},
		"X-Forwarded-For":                {"6.6.6.6"},
		"X-Forwarded-Host":               {"evil.example"},
		"X-Forwarded-Proto":              {"https"},
		"Forwarded":                      {"for=6.6.6.6;host=evil.example;proto=https"},
		"Cookie":                         {"app=1"},
		"X-Forwarded-Preferred-Username": {"admin"},
	}
	gwHost := strings.TrimPrefix(gw.URL, "http://")
	tests := []struct {
		name       string
		client     *http.Client
		path       string
		want       map[string]string // header → value; "" means absent
		wantCookie string
	}{
		{"signed out on a public route: every identity header gone", newBrowserClient(t), "/public/x", map[string]string{
			"X-Callgate-User": "", "X_callgate_user": "", "X-Auth-Request-Email": "", "X-Callgate-Assertion": "", "Remote-User": "",
			"X-Forwarded-Preferred-Username": "", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": gwHost,
			"X-Forwarded-Proto": "http", "Forwarded": "",
		}, "app=1"},
		{"signed in: ours replace theirs", signedIn, "/app", map[string]string{
			"X-Callgate-User": "65a1f0c2e4b0a1b2c3d4e5f6", "X_callgate_user": "", "X-Auth-Request-Email": "jatin@example.com",
			"X-Auth-Request-User": "65a1f0c2e4b0a1b2c3d4e5f6", "Remote-User": "", "X-Forwarded-For": "127.0.0.1", "Forwarded": "",
		}, "app=1"},
		{"a route may ask for the gateway cookies", signedIn, "/public/cookies", map[string]string{"X-Callgate-User": "65a1f0c2e4b0a1b2c3d4e5f6"}, "next-auth.session-token="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, tc.client, gw.URL+tc.path, spoof)
			var s seen
			if err := json.Unmarshal(res.Body, &s); err != nil || res.Status != 200 {
				t.Fatalf("GET %s: got status %d body %s, want 200 from the upstream", tc.path, res.Status, res.Body)
			}
			for k, v := range tc.want {
				if got := s.Headers[k]; got != v {
					t.Errorf("upstream header %s: got %q, want %q", k, got, v)
				}
			}
			if a := s.Headers["X-Callgate-Assertion"]; a == "forged" {
				t.Errorf("upstream got the client's forged assertion")
			}
			if !strings.Contains(s.Headers["Cookie"], tc.wantCookie) {
				t.Errorf("upstream Cookie %q, want it to contain %q", s.Headers["Cookie"], tc.wantCookie)
			}
			if tc.wantCookie == "app=1" && strings.Contains(s.Headers["Cookie"], "next-auth") {
				t.Errorf("upstream Cookie %q holds the gateway's cookies", s.Headers["Cookie"])
			}
		})
	}
}

// jwksKeyfunc verifies tokens against the gateway's published JWKS, as an app would.
func jwksKeyfunc(t *testing.T, gw *testGateway) jwt.Keyfunc {
	t.Helper()
	res := get(t, http.DefaultClient, gw.URL+"/.well-known/jwks.json", nil)
	if res.Status != 200 {
		t.Fatalf("GET /.well-known/jwks.json: got %d, want 200", res.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(res.Body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %s: %v (want at least one key)", res.Body, err)
	}
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		keys := set.Key(kid)
		if len(keys) == 0 {
			return nil, fmt.Errorf("kid %q not in the JWKS", kid)
		}
		return keys[0].Key, nil
	}
}

func TestAssertionVerifiesAgainstJWKS(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf(`
routes:
  - {name: app, path: /, upstream: %[1]s}
  - {name: plain, path: /plain, upstream: %[1]s, assertion: false}
identity:
  assertion: {claims: [role, name]}
`, up.URL))
	client := signedInClient(t, gw)
	keyfunc := jwksKeyfunc(t, gw)
	assertionOf := func(path string) string {
		res := get(t, client, gw.URL+path, nil)
		var s seen
		if err := json.Unmarshal(res.Body, &s); err != nil {
			t.Fatalf("GET %s: body %s: %v", path, res.Body, err)
		}
		return s.Headers["X-Callgate-Assertion"]
	}

	tests := []struct {
		path  string
		claim string
		want  any
	}{
		{"/app", "iss", gw.URL}, {"/app", "aud", "app"}, {"/app", "sub", "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"/app", "email", "jatin@example.com"}, {"/app", "role", "admin"}, {"/app", "name", "Jatin"},
		{"/extra", "tier", "gold"}, {"/extra", "beta", true}, {"/extra", "sub", "65a1f0c2e4b0a1b2c3d4e5f6"},
	}
	for _, tc := range tests {
		raw := assertionOf(tc.path)
		var claims jwt.MapClaims
		tok, err := jwt.ParseWithClaims(raw, &claims, keyfunc, jwt.WithValidMethods([]string{"ES256"}),
			jwt.WithIssuer(gw.URL), jwt.WithExpirationRequired())
		if err != nil || !tok.Valid {
			t.Fatalf("GET %s: assertion %q does not verify against the JWKS: %v", tc.path, raw, err)
		}
		got := claims[tc.claim]
		if aud, ok := got.([]any); ok && len(aud) == 1 {
			got = aud[0]
		}
		if got != tc.want {
			t.Errorf("GET %s: claim %s: got %v, want %v", tc.path, tc.claim, got, tc.want)
		}
		if life := claims["exp"].(float64) - claims["iat"].(float64); life != 300 {
			t.Errorf("GET %s: got lifetime %vs, want 300s", tc.path, life)
		}
	}
	// The payload keeps its claims' order: the configured ones, the callback's as it wrote
	// them (a claim the core owns keeps its place and the core's value), then the core's.
	for path, want := range map[string][]string{
		"/app":   {"role", "name", "aud", "sub", "email", "iss", "iat", "exp"},
		"/extra": {"role", "name", "tier", "sub", "beta", "aud", "email", "iss", "iat", "exp"},
	} {
		parts := strings.Split(assertionOf(path), ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
		if err != nil {
			t.Fatalf("GET %s: assertion payload: %v", path, err)
		}
		if got := testkit.ObjectKeys(t, payload); !slices.Equal(got, want) {
			t.Errorf("GET %s: assertion claims in order %v, want %v", path, got, want)
		}
	}
	if first, second := assertionOf("/app"), assertionOf("/app"); first != second {
		t.Errorf("two requests of one session got two assertions; want one signed per session and route")
	}
	if a := assertionOf("/plain"); a != "" {
		t.Errorf("route with assertion: false: got assertion %q, want none", a)
	}
}

func TestProxyStreamsAndUpgrades(t *testing.T) {
	up := echoUpstream(t)
	gw := startProxyGateway(t, fmt.Sprintf("routes:\n  - {name: app, path: /, upstream: %s}\n", up.URL))
	client := signedInClient(t, gw)
	cookie := sessionCookieName + "=" + jarCookie(t, client, gw, sessionCookieName)

	t.Run("server-sent events arrive one by one", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/sse", nil)
		req.Header.Set("Cookie", cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /sse: %v", err)
		}
		defer res.Body.Close()
		r := bufio.NewReader(res.Body)
		start := time.Now()
		line, err := r.ReadString('\n')
		if err != nil || line != "data: event 0\n" {
			t.Fatalf("first SSE line: got %q (%v), want %q", line, err, "data: event 0\n")
		}
		if d := time.Since(start); d > 90*time.Millisecond {
			t.Errorf("first event after %v: the proxy buffered the stream", d)
		}
		rest, _ := io.ReadAll(r)
		if !strings.Contains(string(rest), "data: event 2") {
			t.Errorf("SSE rest: got %q, want events 1 and 2", rest)
		}
	})

	t.Run("an upgraded connection passes both ways", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: %s\r\n\r\n",
			strings.TrimPrefix(gw.URL, "http://"), cookie)
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: got %v (%v), want 101", res, err)
		}
		if got := res.Header.Get("X-Seen-User"); got != "65a1f0c2e4b0a1b2c3d4e5f6" {
			t.Errorf("upstream saw X-Callgate-User %q on the upgrade, want the user id", got)
		}
		fmt.Fprint(conn, "ping over the tunnel")
		buf := make([]byte, len("ping over the tunnel"))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping over the tunnel" {
			t.Errorf("echo: got %q (%v), want %q", buf, err, "ping over the tunnel")
		}
	})

	t.Run("a signed-out upgrade is refused", func(t *testing.T) {
		res := get(t, newBrowserClient(t), gw.URL+"/ws", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}})
		if res.Status != http.StatusUnauthorized {
			t.Errorf("signed-out upgrade: got %d, want 401", res.Status)
		}
	})
}

func TestProxyUpstreamFailures(t *testing.T) {
	up := echoUpstream(t)
	down := freeLoopbackAddr(t) // nothing listens here
	gw := startProxyGateway(t, fmt.Sprintf(`
routes:
  - {name: down, path: /, upstream: "http://%s", public: true}
  - {name: slow, path: /slow, upstream: %s, public: true}
proxy:
  upstream_timeout: 300ms
`, down, up.URL))
	tests := []struct {
		path       string
		accept     string
		wantStatus int
		wantBody   string
	}{
		{"/", "text/html", 502, "not answering"},
		{"/", "application/json", 502, `"bad_gateway"`},
		{"/slow", "text/html", 504, "too long"},
	}
	for _, tc := range tests {
		start := time.Now()
		res := get(t, http.DefaultClient, gw.URL+tc.path, http.Header{"Accept": {tc.accept}})
		if res.Status != tc.wantStatus || !strings.Contains(string(res.Body), tc.wantBody) {
			t.Errorf("GET %s (%s): got %d %q, want %d containing %q", tc.path, tc.accept, res.Status, res.Body, tc.wantStatus, tc.wantBody)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("GET %s: answered after %v, want well under the upstream's 2s", tc.path, d)
		}
	}
}

func TestForwardAuth(t *testing.T) {
	trusting := startProxyGateway(t, "proxy:\n  trusted_proxies: [127.0.0.1]\nroutes:\n  - {name: app, host: app.example.test, path: /, upstream: http://127.0.0.1:1}\n")
	distrusting := startProxyGateway(t, "proxy:\n  trusted_proxies: [10.0.0.0/8]\n")
	cookieOf := func(gw *testGateway) string {
		c := signedInClient(t, gw)
		return sessionCookieName + "=" + jarCookie(t, c, gw, sessionCookieName)
	}
	trustingCookie, distrustingCookie := cookieOf(trusting), cookieOf(distrusting)
	forwarded := func(uri string) http.Header {
		return http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.test"}, "X-Forwarded-Uri": {uri}}
	}
	with := func(h http.Header, kv ...string) http.Header {
		out := h.Clone()
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name         string
		gw           *testGateway
		path         string
		header       http.Header
		wantStatus   int
		wantLocation string
		wantUser     string
	}{
		{"nginx: signed in", trusting, "/_callgate/auth", with(forwarded("/page"), "Cookie", trustingCookie), 200, "", "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"nginx: signed out is 401, never a redirect", trusting, "/_callgate/auth", with(forwarded("/page"), "Accept", "text/html"), 401, "", ""},
		{"nginx: denied", trusting, "/_callgate/auth", with(forwarded("/deny"), "Cookie", trustingCookie), 403, "", ""},
		{"traefik: signed-out browser goes to sign in, back to the original URL", trusting, "/_callgate/forward-auth", with(forwarded("/page?a=b"), "Accept", "text/html"), 302,
			trusting.URL + "/api/auth/signin?callbackUrl=" + url.QueryEscape("https://app.example.test/page?a=b"), ""},
		{"traefik: signed-out API client", trusting, "/_callgate/forward-auth", with(forwarded("/page"), "Accept", "application/json"), 401, "", ""},
		{"traefik: signed in", trusting, "/_callgate/forward-auth", with(forwarded("/page"), "Cookie", trustingCookie), 200, "", "65a1f0c2e4b0a1b2c3d4e5f6"},
		{"traefik: authorized judges the forwarded URI", trusting, "/_callgate/forward-auth", with(forwarded("/anonymous"), "Accept", "text/html"), 200, "", ""},
		{"untrusted: forwarded URI ignored, judged as itself", distrusting, "/_callgate/forward-auth", with(forwarded("/anonymous"), "Accept", "text/html"), 302,
			distrusting.URL + "/api/auth/signin?callbackUrl=" + url.QueryEscape(distrusting.URL+"/"), ""},
		{"untrusted: forwarded /deny ignored for a signed-in user", distrusting, "/_callgate/auth", with(forwarded("/deny"), "Cookie", distrustingCookie), 200, "", "65a1f0c2e4b0a1b2c3d4e5f6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, tc.gw.URL+tc.path, tc.header)
			if res.Status != tc.wantStatus {
				t.Fatalf("got status %d, want %d; body %s", res.Status, tc.wantStatus, res.Body)
			}
			if tc.wantLocation != "" && res.Header.Get("Location") != tc.wantLocation {
				t.Errorf("got Location %q, want %q", res.Header.Get("Location"), tc.wantLocation)
			}
			if got := res.Header.Get("X-Callgate-User"); got != tc.wantUser {
				t.Errorf("got X-Callgate-User %q, want %q", got, tc.wantUser)
			}
			if tc.wantUser != "" && res.Header.Get("X-Callgate-Assertion") == "" {
				t.Errorf("allowed answer carries no assertion header")
			}
		})
	}
}

func TestCrossHostSignIn(t *testing.T) {
	gw := startProxyGateway(t, `
cookie_domain: .example.test
routes:
  - {name: app, host: app.example.test, upstream: "http://127.0.0.1:1"}
`)
	tests := []struct {
		callbackURL string
		want        string
	}{
		{"http://app.example.test/dashboard", "http://app.example.test/dashboard"},
		{"http://evil.example/", gw.URL},
		{"http://app.example.test.evil.example/", gw.URL},
		{"https://app.example.test/", gw.URL}, // another scheme is another origin
	}
	for _, tc := range tests {
		client := newBrowserClient(t)
		form := url.Values{"username": {"jatin"}, "password": {"secret"}, "csrfToken": {csrfToken(t, client, gw)}, "callbackUrl": {tc.callbackURL}, "json": {"true"}}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gw.URL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res := do(t, client, req)
		var body struct{ URL string }
		_ = json.Unmarshal(res.Body, &body)
		if body.URL != tc.want {
			t.Errorf("sign in with callbackUrl %s: got url %q, want %q", tc.callbackURL, body.URL, tc.want)
		}
		var sessionCookie string
		for _, c := range res.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, sessionCookieName+"=") {
				sessionCookie = c
			}
		}
		if !strings.Contains(sessionCookie, "Domain=.example.test") {
			t.Errorf("session Set-Cookie %q, want Domain=.example.test", sessionCookie)
		}
	}
}
