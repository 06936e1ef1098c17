package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/bearer"
	"github.com/callgate/callgate/engine/inspect"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
)

// benchProxy is the gateway's front handler as `gateway serve` builds it, with the engine's
// real session reader and assertion keys, in front of a real upstream on loopback.
type benchProxy struct {
	handler  http.Handler
	cookie   string
	upstream string
	// bearer is an identity provider's JWT access token that route "api" accepts.
	bearer string
}

// benchIssuer is an OpenID Connect provider on loopback: its discovery document and the
// JWKS of the ES256 key it signs access tokens with.
func benchIssuer(b *testing.B) (issuer string, sign func(claims jwt.MapClaims) string) {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"authorization_endpoint":%q,"token_endpoint":%q,"id_token_signing_alg_values_supported":["ES256"]}`,
			srv.URL, srv.URL+"/jwks", srv.URL+"/authorize", srv.URL+"/token")
	})
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		b.Fatal(err)
	}
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	return srv.URL, func(claims jwt.MapClaims) string {
		t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		t.Header["kid"] = "k1"
		s, err := t.SignedString(key)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
}

func newBenchProxy(b *testing.B, scriptsDir string) *benchProxy {
	b.Helper()
	return newBenchProxyWith(b, scriptsDir, nil)
}

// newBenchProxyWith is newBenchProxy told about every request by in (the engine's and the
// proxy's Inspector, the scripts' Tracer), or by nothing when in is nil.
func newBenchProxyWith(b *testing.B, scriptsDir string, in *inspect.Inspector) *benchProxy {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"user":%q,"path":%q}`, r.Header.Get("X-Callgate-User"), r.URL.Path)
	}))
	b.Cleanup(up.Close)
	logger := slog.New(slog.DiscardHandler)
	// With a heap guard, as gateway serve has by default.
	guard := script.NewHeapGuard(1<<30, 0, logger)
	opts := script.Options{Dir: scriptsDir, Logger: logger, HeapGuard: guard}
	if in != nil {
		opts.Tracer = in
	}
	gen, err := script.Load(context.Background(), opts)
	if err != nil {
		b.Fatalf("load %s: %v", scriptsDir, err)
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
	issuer, sign := benchIssuer(b)
	idp, err := bearer.New(bearer.Options{ID: "idp", Issuer: issuer, Audience: []string{"api"}})
	if err != nil {
		b.Fatal(err)
	}
	accessToken := sign(jwt.MapClaims{"iss": issuer, "aud": "api", "sub": "service-a", "scope": "read",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	var cfg config.Config
	cfg.Routes = []config.Route{
		{Name: "app", Path: "/", Upstream: up.URL},
		{Name: "plain", Path: "/plain", Upstream: up.URL, Assertion: new(false)},
		{Name: "api", Path: "/api", Upstream: up.URL, Bearer: []string{"idp"}},
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
		BearerProviders: []*bearer.Provider{idp},
		Generation:      eng.Generation, Routes: cfg.Routes, Proxy: cfg.Proxy, Identity: cfg.Identity,
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
	return &benchProxy{handler: p, cookie: "next-auth.session-token=" + jwe, upstream: up.URL, bearer: accessToken}
}

// run drives h with parallel requests shaped like a browser's, each answered in full.
func runBench(b *testing.B, h http.Handler, target, cookie string, extra ...string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("Accept", "application/json")
			req.Header.Set("User-Agent", "bench")
			if cookie != "" {
				req.Header.Set("Cookie", cookie+"; theme=dark")
			}
			for i := 0; i+1 < len(extra); i += 2 {
				req.Header.Set(extra[i], extra[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("GET %s: got %d %s, want 200", target, rec.Code, rec.Body)
			}
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	})
}

// BenchmarkProxy measures one proxied request through the handler (no client socket; the
// upstream is real): a bare httputil.ReverseProxy, then callgate with a valid session
// without and with the authorized callback and the assertion JWT.
//
//	go test -run '^$' -bench Proxy -benchmem -cpuprofile cpu.out ./engine/proxy/
func BenchmarkProxy(b *testing.B) {
	plain := newBenchProxy(b, "../../scripts")
	authz := newBenchProxy(b, "../../bench/scripts-authorized")
	u, _ := url.Parse(plain.upstream)
	bare := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() }}
	b.Run("bare", func(b *testing.B) { runBench(b, bare, "http://gateway.test/plain", "") })
	b.Run("session", func(b *testing.B) { runBench(b, plain.handler, "http://gateway.test/plain", plain.cookie) })
	b.Run("session+assertion", func(b *testing.B) { runBench(b, plain.handler, "http://gateway.test/", plain.cookie) })
	b.Run("session+authorized", func(b *testing.B) { runBench(b, authz.handler, "http://gateway.test/plain", authz.cookie) })
	b.Run("session+authorized+assertion", func(b *testing.B) { runBench(b, authz.handler, "http://gateway.test/", authz.cookie) })
	// A provider's JWT access token on a route that accepts it, next to the session cookie
	// on the same route: both with the assertion.
	b.Run("api-session-cookie+assertion", func(b *testing.B) { runBench(b, plain.handler, "http://gateway.test/api/x", plain.cookie) })
	b.Run("api-bearer-jwt+assertion", func(b *testing.B) {
		runBench(b, plain.handler, "http://gateway.test/api/x", "", "Authorization", "Bearer "+plain.bearer)
	})
	// Forward-auth has no upstream leg: what is left is the gateway's own decision, for the
	// original request a trusted proxy (Traefik) describes.
	described := []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "app.test", "X-Forwarded-Uri", "/plain/page?x=1"}
	b.Run("forward-auth", func(b *testing.B) {
		runBench(b, plain.handler, "http://gateway.test/_callgate/forward-auth", plain.cookie, described...)
	})
	b.Run("forward-auth+authorized", func(b *testing.B) {
		runBench(b, authz.handler, "http://gateway.test/_callgate/forward-auth", authz.cookie, described...)
	})
}
