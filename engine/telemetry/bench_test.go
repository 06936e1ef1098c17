package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/metrics"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/telemetry"
	"github.com/callgate/callgate/engine/token"
)

// benchGateway is the public handler the way gateway serve stacks it (metrics around the
// tracing middleware around the proxy, which serves /api/auth/ through the engine), with
// tel's wrappers in place; wired false leaves the tracing out of the stack altogether,
// the gateway as it was before tracing existed.
func benchGateway(b *testing.B, tel *telemetry.Telemetry, wired bool) (http.Handler, string) {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"user":%q}`, r.Header.Get("X-Callgate-User"))
	}))
	b.Cleanup(up.Close)
	logger := slog.New(slog.DiscardHandler)
	o := script.Options{Dir: "../../scripts", Logger: logger}
	if wired {
		o.Tracer = script.JoinTracers(tel.Tracer())
	}
	gen, err := script.Load(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gen.Close)
	keys, err := token.NewKeyRing([]string{"bench-secret-0123456789abcdef0123456789abcdef"}, "")
	if err != nil {
		b.Fatal(err)
	}
	origin, _ := url.Parse("http://gateway.test")
	eng, err := engine.New(engine.Options{URL: origin, Keys: keys, Generation: gen, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	jwe, err := keys.Encode(map[string]any{"sub": "65a1f0c2e4b0a1b2c3d4e5f6", "name": "Jatin", "email": "jatin@example.com",
		"iat": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()), "jti": "bench"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	var cfg config.Config
	cfg.Routes = []config.Route{{Name: "app", Path: "/", Upstream: up.URL, Assertion: new(false)}}
	cfg.ApplyDefaults()
	m := metrics.New(eng.Generation)
	po := proxy.Options{
		Origin: origin.String(), SignInURL: origin.String() + "/api/auth/signin",
		Sessions: func(r *http.Request) (proxy.Session, []string, error) {
			s, setCookie, err := eng.ProxySession(r)
			if s == nil || err != nil {
				return nil, setCookie, err
			}
			return s, setCookie, nil
		},
		Generation: eng.Generation, Routes: cfg.Routes, Proxy: cfg.Proxy, Identity: cfg.Identity,
		Gateway: eng.Handler(), GatewayPaths: []proxy.GatewayPath{{Path: "/api/auth/"}},
		OnRoute:               func(w http.ResponseWriter, route string) { metrics.SetRoute(w, "route:"+route) },
		GatewayCookiePrefixes: []string{"next-auth."}, Logger: logger,
	}
	if wired {
		po.WrapTransport = tel.Transport
	}
	p, err := proxy.New(po)
	if err != nil {
		b.Fatal(err)
	}
	if !wired {
		return m.Middleware(p), "next-auth.session-token=" + jwe
	}
	return m.Middleware(tel.Middleware(p)), "next-auth.session-token=" + jwe
}

func runBench(b *testing.B, h http.Handler, target, cookie string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Cookie", cookie)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("GET %s: got %d %s, want 200", target, rec.Code, rec.Body)
			}
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	})
}

// BenchmarkTracing is the session read and a proxied request with tracing out of the stack
// (baseline: the gateway before tracing), with it wired but the OTEL_* environment unset
// (off: what every gateway without a collector runs), and on, exporting every span over
// OTLP/HTTP to a loopback endpoint that accepts them.
//
//	go test -run '^$' -bench Tracing -benchmem -count 6 ./engine/telemetry/
func BenchmarkTracing(b *testing.B) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(collector.Close)
	on, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}[k]
	}})
	if err != nil || on == nil {
		b.Fatalf("Setup: %v, %v", on, err)
	}
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	off, err := telemetry.Setup(context.Background(), telemetry.Options{Getenv: func(string) string { return "" }})
	if err != nil || off != nil {
		b.Fatalf("Setup with no environment: %v, %v", off, err)
	}
	for _, v := range []struct {
		name  string
		tel   *telemetry.Telemetry
		wired bool
	}{{"baseline", nil, false}, {"off", off, true}, {"on", on, true}} {
		h, cookie := benchGateway(b, v.tel, v.wired)
		b.Run("session-read/"+v.name, func(b *testing.B) { runBench(b, h, "http://gateway.test/api/auth/session", cookie) })
		b.Run("proxied/"+v.name, func(b *testing.B) { runBench(b, h, "http://gateway.test/page", cookie) })
	}
}
