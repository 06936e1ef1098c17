package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/callgate/callgate/internal/testkit"
)

// This file holds the test harness for package main: a real gateway served by the same code as
// `gateway serve`, on a loopback port, plus an HTTP client that keeps cookies like a browser.

// testGatewaySecret is the AUTH_SECRET of gateways started by startGateway unless a test sets one.
const testGatewaySecret = "callgate-test-secret-0123456789abcdef0123456789"

// repoPath names a file relative to the repository root; go test runs in cmd/gateway.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{"..", ".."}, elem...)...)
}

// gatewayOptions configures startGateway; zero values pick the defaults in the comments.
type gatewayOptions struct {
	Secret     string            // AUTH_SECRET; testGatewaySecret
	ScriptsDir string            // --scripts; the repository's default scripts/
	UsersFile  string            // imported with `users import` before serving; testdata/users.json
	Args       []string          // more `serve` flags, e.g. --config FILE
	Now        func() time.Time  // serve's clock (engine, session token, proxy, assertion keys); time.Now
	Env        map[string]string // more environment variables serve sees, beside AUTH_SECRET
	// Host is the host name of the gateway's public URL (--url); 127.0.0.1. It listens on
	// 127.0.0.1 either way. WebAuthn needs a domain ("localhost"): its RP ID cannot be an
	// IP address.
	Host string
	// ListenAll listens on every address (0.0.0.0) instead of 127.0.0.1, on the same port.
	ListenAll bool
}

// waitForRedisPing waits until a redis-server on port answers PING.
func waitForRedisPing(t *testing.T, port string) {
	t.Helper()
	testkit.WaitFor(t, "redis-server on port "+port+" answers", 5*time.Second, func() error {
		out, err := exec.Command("redis-cli", "-p", port, "ping").Output()
		if err == nil && strings.TrimSpace(string(out)) != "PONG" {
			err = fmt.Errorf("PING answered %q", out)
		}
		return err
	})
}

// movedClock is the real clock plus an offset a test moves forward, for the engine's
// session expiries and caches (gatewayOptions.Now). Safe for concurrent use.
type movedClock struct{ offset atomic.Int64 }

func (c *movedClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *movedClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// testGateway is a gateway running inside the test process.
type testGateway struct {
	URL     string // origin, e.g. http://127.0.0.1:41234 (the base path /api/auth is not included)
	Secret  string
	DataDir string
	logs    *syncBuffer
}

// Logs returns everything the gateway wrote to stdout and stderr so far.
func (g *testGateway) Logs() string { return g.logs.String() }

// startGateway imports the users into a fresh data directory, then runs `gateway serve` on a free
// loopback port until the test ends, and returns once GET /api/auth/providers answers 200.
// At cleanup it stops the gateway, waits for serve to return, and prints the gateway's log if the
// test failed.
func startGateway(t *testing.T, opts gatewayOptions) *testGateway {
	t.Helper()
	if opts.Secret == "" {
		opts.Secret = testGatewaySecret
	}
	if opts.ScriptsDir == "" {
		opts.ScriptsDir = repoPath("scripts")
	}
	if opts.UsersFile == "" {
		opts.UsersFile = repoPath("testdata", "users.json")
	}

	logs := &syncBuffer{}
	c := &cli{
		stdin:  strings.NewReader(""),
		stdout: logs,
		stderr: logs,
		// Only the secret comes from the environment, so the developer's own variables
		// (a REDIS_URL, say) cannot change what the test runs against.
		getenv: func(key string) string {
			if key == "AUTH_SECRET" {
				return opts.Secret
			}
			return opts.Env[key]
		},
		now: opts.Now,
	}
	gw := &testGateway{Secret: opts.Secret, DataDir: t.TempDir(), logs: logs}

	importArgs := []string{"users", "import", "--data", gw.DataDir, opts.UsersFile}
	if err := c.run(t.Context(), importArgs); err != nil {
		t.Fatalf("gateway %s: %v\n%s", strings.Join(importArgs, " "), err, logs)
	}

	addr := freeLoopbackAddr(t)
	gw.URL = "http://" + addr
	if opts.Host != "" {
		_, port, _ := net.SplitHostPort(addr)
		gw.URL = "http://" + net.JoinHostPort(opts.Host, port)
	}
	listen := addr
	if opts.ListenAll {
		_, port, _ := net.SplitHostPort(addr)
		listen = net.JoinHostPort("0.0.0.0", port)
	}
	serveArgs := []string{"serve", "--listen", listen, "--url", gw.URL, "--data", gw.DataDir, "--scripts", opts.ScriptsDir}
	serveArgs = append(serveArgs, patientAuthorize(t, opts.Args)...)

	ctx, stop := context.WithCancel(context.Background())
	var serveErr error // written before served is closed
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveErr = c.run(ctx, serveArgs)
	}()

	t.Cleanup(func() {
		stop()
		select {
		case <-served:
			if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
				t.Errorf("gateway serve returned %v, want nil once its context is cancelled", serveErr)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("gateway serve did not return within 10s of its context being cancelled")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})

	if err := waitUntilReady(ctx, gw.URL+"/api/auth/providers", served); err != nil {
		if errors.Is(err, errServeReturned) {
			err = fmt.Errorf("%w: %v", err, serveErr)
		}
		t.Fatalf("gateway %s: %v\n%s", strings.Join(serveArgs, " "), err, logs)
	}
	return gw
}

// patientAuthorize gives authorize the longest deadline there is (30 s) in the config file
// of args, adding one when there is none, unless the test chose a deadline for it itself.
// authorize compares passwords with bcrypt in JavaScript: under the race detector on a
// busy 2-core machine one sign-in can take longer than the default 5 s, and a test of
// something else must then be slow, not fail.
func patientAuthorize(t *testing.T, args []string) []string {
	t.Helper()
	out := slices.Clone(args)
	at := slices.Index(out, "--config")
	doc := map[string]any{}
	if at >= 0 && at+1 < len(out) {
		b, err := os.ReadFile(out[at+1])
		if err != nil {
			t.Fatalf("read the test's config: %v", err)
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			// A test of a malformed file: serve is to see it as written.
			return out
		}
		if doc == nil {
			doc = map[string]any{}
		}
	}
	sc, _ := doc["script"].(map[string]any)
	if sc == nil {
		sc = map[string]any{}
	}
	if _, set := sc["timeout"]; set {
		return out
	}
	timeouts, _ := sc["timeouts"].(map[string]any)
	if timeouts == nil {
		timeouts = map[string]any{}
	}
	if _, set := timeouts["authorize"]; set {
		return out
	}
	timeouts["authorize"] = "30s"
	sc["timeouts"] = timeouts
	doc["script"] = sc
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("write the test's config: %v", err)
	}
	path := writeConfig(t, string(b))
	if at >= 0 && at+1 < len(out) {
		out[at+1] = path
		return out
	}
	return append(out, "--config", path)
}

// errServeReturned says that serve stopped before the gateway was ready.
var errServeReturned = errors.New("serve returned before the gateway was ready")

// waitUntilReady polls readyURL until it answers 200. It gives up when served is closed (serve
// returned) or after 15 seconds.
func waitUntilReady(ctx context.Context, readyURL string, served <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastProblem error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
		if err != nil {
			return fmt.Errorf("build readiness request: %w", err)
		}
		res, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			lastProblem = fmt.Errorf("GET %s: status %d", readyURL, res.StatusCode)
		} else {
			lastProblem = err
		}
		select {
		case <-served:
			return errServeReturned
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last attempt: %v)", ctx.Err(), lastProblem)
		case <-tick.C:
		}
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a moment ago. The
// gateway takes an address, not a listener, so the port is released before serve binds it.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("release port %s: %v", addr, err)
	}
	return addr
}

// newBrowserClient returns an HTTP client that keeps cookies and does not follow redirects, so a
// test sees every 302 and Set-Cookie the gateway sends.
func newBrowserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("create cookie jar: %v", err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// httpResult is a response read to the end.
type httpResult struct {
	Status  int
	Header  http.Header
	Cookies []*http.Cookie // from Set-Cookie
	Body    []byte
}

// do sends req with client and reads the whole response.
func do(t *testing.T, client *http.Client, req *http.Request) httpResult {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return httpResult{Status: res.StatusCode, Header: res.Header, Cookies: res.Cookies(), Body: body}
}

// csrfToken fetches GET /api/auth/csrf with client (which stores the CSRF cookie) and returns the
// token to echo back in forms.
func csrfToken(t *testing.T, client *http.Client, gw *testGateway) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, gw.URL+"/api/auth/csrf", nil)
	if err != nil {
		t.Fatalf("build csrf request: %v", err)
	}
	res := do(t, client, req)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /api/auth/csrf: got status %d, want 200; body %s", res.Status, res.Body)
	}
	var body struct {
		CSRFToken string `json:"csrfToken"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil || body.CSRFToken == "" {
		t.Fatalf("GET /api/auth/csrf: got body %s, want {\"csrfToken\":…} (%v)", res.Body, err)
	}
	return body.CSRFToken
}

// signInWithCredentials signs in the way the next-auth client does with redirect:false: it gets a
// CSRF token, then posts the credentials form with json=true. The session cookie, if any, lands
// in client's jar.
func signInWithCredentials(t *testing.T, client *http.Client, gw *testGateway, username, password string) httpResult {
	t.Helper()
	form := url.Values{
		"username":    {username},
		"password":    {password},
		"csrfToken":   {csrfToken(t, client, gw)},
		"callbackUrl": {gw.URL + "/"},
		"json":        {"true"},
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gw.URL+"/api/auth/callback/credentials", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("build sign-in request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, client, req)
}

// sessionCookieName is the session cookie's name on a plain-http gateway (NextAuth adds the
// __Secure- prefix only for https URLs).
const sessionCookieName = "next-auth.session-token"

// jarCookie returns the value of the named cookie client would send to gw, or "".
func jarCookie(t *testing.T, client *http.Client, gw *testGateway, name string) string {
	t.Helper()
	u, err := url.Parse(gw.URL + "/")
	if err != nil {
		t.Fatalf("parse gateway URL %q: %v", gw.URL, err)
	}
	for _, c := range client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// syncBuffer collects a gateway's output while it runs.
type syncBuffer = testkit.SyncBuffer
