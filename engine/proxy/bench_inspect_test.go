package proxy_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
)

// BenchmarkProxyInspector is BenchmarkProxy's session+authorized and
// session+authorized+assertion requests, and its forward-auth check, without the inspector
// (off: every gateway unless started with --dev or inspector.enabled) and with it (on: a
// flow per request, the session read and authorized callbacks traced and redacted, the
// access decision recorded, the ring full and evicting).
//
//	go test -run '^$' -bench ProxyInspector -benchmem ./engine/proxy/
func BenchmarkProxyInspector(b *testing.B) {
	described := []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "app.test", "X-Forwarded-Uri", "/plain/page?x=1"}
	for _, c := range []struct {
		name, target string
		extra        []string
	}{
		{"session+authorized", "http://gateway.test/plain", nil},
		{"session+authorized+assertion", "http://gateway.test/", nil},
		{"forward-auth+authorized", "http://gateway.test/_callgate/forward-auth", described},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.Run("off", func(b *testing.B) {
				p := newInspectedBenchProxy(b, nil)
				runBench(b, p.handler, c.target, p.cookie, c.extra...)
			})
			b.Run("on", func(b *testing.B) {
				in := inspect.New(inspect.Options{})
				b.Cleanup(in.Close)
				p := newInspectedBenchProxy(b, in)
				runBench(b, p.handler, c.target, p.cookie, c.extra...)
				if len(in.Snapshot()) == 0 {
					b.Fatal("the inspector kept no flow: the benchmark measured nothing of it")
				}
			})
		})
	}
}

// newInspectedBenchProxy is newBenchProxy's front handler for the scripts with an
// authorized callback, without the bearer route, told about every request by in (the
// engine's and the proxy's Inspector, the scripts' Tracer), or by nothing when in is nil.
func newInspectedBenchProxy(b *testing.B, in *inspect.Inspector) *benchProxy {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(up.Close)
	logger := slog.New(slog.DiscardHandler)
	opts := script.Options{Dir: "../../bench/scripts-authorized", Logger: logger, HeapGuard: script.NewHeapGuard(1<<30, 0, logger)}
	if in != nil {
		opts.Tracer = in
	}
	gen, err := script.Load(context.Background(), opts)
	if err != nil {
		b.Fatalf("load %s: %v", opts.Dir, err)
	}
	b.Cleanup(gen.Close)
	keys, err := token.NewKeyRing([]string{"bench-secret-0123456789abcdef0123456789abcdef"}, "")
	if err != nil {
		b.Fatal(err)
	}
	origin, _ := url.Parse("http://gateway.test")
	eng, err := engine.New(engine.Options{URL: origin, Keys: keys, Generation: gen, Logger: logger, Inspector: in})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	jwe, err := keys.Encode(map[string]any{"sub": "65a1f0c2e4b0a1b2c3d4e5f6", "name": "Jatin", "email": "jatin@example.com",
		"id": "65a1f0c2e4b0a1b2c3d4e5f6", "role": "admin", "iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()), "jti": "bench"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	var cfg config.Config
	cfg.Routes = []config.Route{
		{Name: "app", Path: "/", Upstream: up.URL},
		{Name: "plain", Path: "/plain", Upstream: up.URL, Assertion: new(false)},
	}
	cfg.Proxy.TrustedProxies = []string{"127.0.0.1"}
	cfg.ApplyDefaults()
	a := cfg.Identity.Assertion
	signer, err := assertion.Open(assertion.Options{Dir: b.TempDir(), Issuer: origin.String(), TTL: time.Duration(a.TTL),
		RotateEvery: time.Duration(a.RotateEvery), PublishAhead: time.Duration(a.PublishAhead), Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	p, err := proxy.New(proxy.Options{
		Origin: origin.String(), SignInURL: origin.String() + "/api/auth/signin", Inspector: in,
		Sessions: func(r *http.Request) (proxy.Session, []string, error) {
			s, setCookie, err := eng.ProxySession(r)
			if s == nil || err != nil {
				return nil, setCookie, err
			}
			return s, setCookie, nil
		},
		Generation: eng.Generation, Routes: cfg.Routes, Proxy: cfg.Proxy, Identity: cfg.Identity,
		Assertion: signer, Gateway: eng.Handler(),
		GatewayPaths: []proxy.GatewayPath{
			{Path: "/api/auth/"},
			{Path: proxy.ForwardAuthPath, Handler: (*proxy.Proxy).ForwardAuth},
			{Path: proxy.JWKSPath, Handler: func(*proxy.Proxy) http.Handler { return signer }},
		},
		GatewayCookiePrefixes: []string{"next-auth."}, Logger: logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchProxy{handler: p, cookie: "next-auth.session-token=" + jwe, upstream: up.URL}
}
