package engine_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/internal/testkit"
	"github.com/callgate/callgate/store"
)

// testSecret is the secret of the wire specification's conformance checks.
const testSecret = "test-secret"

// gateway is an engine served over a real loopback listener.
type gateway struct {
	srv  *httptest.Server
	eng  *engine.Engine
	keys *token.KeyRing
	logs *syncBuffer
	now  func() time.Time
}

type gatewayConfig struct {
	fixture string // directory under testdata/scripts, or an absolute scripts dir
	url     string // public URL; default http://localhost:3000
	secrets []string
	users   store.Users
	now     func() time.Time
	timeout time.Duration // per-call script deadline; default 30s (bcrypt under -race on a busy machine is slow)
	// store and security turn on database sessions, revocations and sign-in limits.
	store    store.Store
	security guard.Options
	// fetchAllow lists the hosts the scripts' fetch may reach.
	fetchAllow []string
	// signed, when set, makes the session token a JWS (session.token.format jws).
	signed *token.SignedOptions
}

func startGateway(t testing.TB, gc gatewayConfig) *gateway {
	t.Helper()
	if gc.url == "" {
		gc.url = "http://localhost:3000"
	}
	if len(gc.secrets) == 0 {
		gc.secrets = []string{testSecret}
	}
	if gc.timeout == 0 {
		gc.timeout = 30 * time.Second
	}
	if gc.now == nil {
		gc.now = time.Now
	}
	dir := gc.fixture
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "testdata", "scripts", gc.fixture)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var factors store.Factors
	if gc.store != nil {
		factors = gc.store
	}
	gen, err := script.Load(context.Background(), script.Options{Dir: dir, Logger: logger, Users: gc.users, Factors: factors,
		Timeouts: script.Timeouts{Default: gc.timeout}, Fetch: script.FetchOptions{Allow: gc.fetchAllow}})
	if err != nil {
		t.Fatalf("load scripts %s: %v", dir, err)
	}
	t.Cleanup(gen.Close)
	keys, err := token.NewKeyRing(gc.secrets, "", token.WithClock(gc.now))
	if err != nil {
		t.Fatal(err)
	}
	var tokens token.Codec
	if gc.signed != nil {
		if tokens, err = token.NewSigned(*gc.signed, token.WithClock(gc.now)); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(gc.url)
	eng, err := engine.New(engine.Options{URL: u, Keys: keys, Tokens: tokens, Generation: gen, Logger: logger, Now: gc.now,
		Store: gc.store, Security: gc.security})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	t.Cleanup(stopWatch)
	if err := eng.WatchRevocations(watchCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	srv := httptest.NewServer(eng.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &gateway{srv: srv, eng: eng, keys: keys, logs: logs, now: gc.now}
}

// browser keeps cookies the way a browser does for one origin, as raw (still
// percent-encoded) values, and records every Set-Cookie it receives.
type browser struct {
	t      testing.TB
	gw     *gateway
	names  []string
	values map[string]string
}

func (g *gateway) browser(t testing.TB) *browser {
	return &browser{t: t, gw: g, values: map[string]string{}}
}

type reply struct {
	status     int
	header     http.Header
	body       string
	setCookies []string
}

// cookieNames returns the names of the Set-Cookie headers, in order.
func (r reply) cookieNames() []string {
	var out []string
	for _, c := range r.setCookies {
		name, _, _ := strings.Cut(c, "=")
		out = append(out, name)
	}
	return out
}

// cookie returns the Set-Cookie header for name, or "".
func (r reply) cookie(name string) string {
	for _, c := range r.setCookies {
		if strings.HasPrefix(c, name+"=") {
			return c
		}
	}
	return ""
}

func (b *browser) set(name, rawValue string) {
	if _, ok := b.values[name]; !ok {
		b.names = append(b.names, name)
	}
	b.values[name] = rawValue
}

func (b *browser) get(name string) string { return b.values[name] }

func (b *browser) del(name string) {
	delete(b.values, name)
	for i, n := range b.names {
		if n == name {
			b.names = append(b.names[:i], b.names[i+1:]...)
			return
		}
	}
}

func (b *browser) cookieHeader() string {
	var parts []string
	for _, n := range b.names {
		parts = append(parts, n+"="+b.values[n])
	}
	return strings.Join(parts, "; ")
}

// do sends one request; body is urlencoded unless contentType says otherwise.
func (b *browser) do(method, path, body, contentType string) reply {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.gw.srv.URL+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if h := b.cookieHeader(); h != "" {
		req.Header.Set("Cookie", h)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(data), setCookies: resp.Header.Values("Set-Cookie")}
	for _, c := range r.setCookies {
		nv, attrs, _ := strings.Cut(c, ";")
		name, value, _ := strings.Cut(nv, "=")
		if strings.Contains(attrs, "Max-Age=0") {
			b.del(name)
		} else {
			b.set(name, value)
		}
	}
	return r
}

func (b *browser) getPage(path string) reply { return b.do(http.MethodGet, path, "", "") }

func (b *browser) postForm(path string, form url.Values) reply {
	return b.do(http.MethodPost, path, form.Encode(), "application/x-www-form-urlencoded")
}

// csrf fetches a CSRF token the way the client does.
func (b *browser) csrf() string {
	b.t.Helper()
	r := b.getPage("/api/auth/csrf")
	tok := between(r.body, `{"csrfToken":"`, `"}`)
	if len(tok) != 64 {
		b.t.Fatalf("GET /api/auth/csrf: got body %s", r.body)
	}
	return tok
}

// signIn signs in through the credentials callback with json=true.
func (b *browser) signIn(provider, username, password string) reply {
	form := url.Values{"username": {username}, "password": {password}, "csrfToken": {b.csrf()}, "json": {"true"}}
	return b.postForm("/api/auth/callback/"+provider, form)
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// syncBuffer collects a gateway's log while it runs.
type syncBuffer = testkit.SyncBuffer

func newKeyRingWith(t *testing.T, secret string) *token.KeyRing {
	t.Helper()
	k, err := token.NewKeyRing([]string{secret}, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyRingAt(t *testing.T, at time.Time) *token.KeyRing {
	t.Helper()
	k, err := token.NewKeyRing([]string{testSecret}, "", token.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEncode(t *testing.T, k *token.KeyRing, claims map[string]any) string {
	t.Helper()
	tok, err := k.Encode(claims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
