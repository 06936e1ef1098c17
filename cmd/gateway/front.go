package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
)

// gatewayPaths are served by the engine even when a route covers "/": the auth routes and
// the operational endpoints.
var gatewayPaths = []string{engine.BasePath + "/", "/healthz", "/readyz", "/livez", "/metrics", "/status", "/-/"}

// gatewayCookiePrefixes are the gateway's own cookies (NextAuth's names, with and without the
// __Secure-/__Host- prefixes), kept from upstreams unless a route asks for them.
var gatewayCookiePrefixes = []string{"next-auth.", "__Secure-next-auth.", "__Host-next-auth."}

// upstreamRoute is the route --upstream adds: the whole origin, protected.
func upstreamRoute(upstream string) config.Route {
	return config.Route{Name: "default", Path: "/", Upstream: upstream}
}

// frontHandler puts the proxy (routes, forward-auth, JWKS) in front of the engine's
// handler, and starts the assertion key rotation until ctx ends.
func frontHandler(ctx context.Context, cfg config.Config, eng *engine.Engine, logger *slog.Logger) (http.Handler, error) {
	a := cfg.Identity.Assertion
	keys, err := assertion.Open(assertion.Options{
		Dir: cfg.DataDir, Issuer: eng.Origin(), TTL: time.Duration(a.TTL),
		RotateEvery: time.Duration(a.RotateEvery), PublishAhead: time.Duration(a.PublishAhead), Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("assertion keys: %w", err)
	}
	go keys.Run(ctx)
	p, err := proxy.New(proxy.Options{
		Origin:    eng.Origin(),
		SignInURL: eng.Origin() + engine.BasePath + "/signin",
		Sessions: func(r *http.Request) (proxy.Session, error) {
			s, err := eng.SessionFromRequest(r)
			if errors.Is(err, engine.ErrStoreUnavailable) {
				return nil, fmt.Errorf("%w: %w", proxy.ErrSessionsUnavailable, err)
			}
			if s == nil || err != nil {
				// A nil *engine.Session must not become a non-nil interface.
				return nil, err
			}
			return s, nil
		},
		Generation:            func() *script.Generation { return eng.Generation() },
		Routes:                cfg.Routes,
		Proxy:                 cfg.Proxy,
		Identity:              cfg.Identity,
		Assertion:             keys,
		JWKS:                  keys,
		Gateway:               eng.Handler(),
		GatewayPaths:          gatewayPaths,
		GatewayCookiePrefixes: gatewayCookiePrefixes,
		Logger:                logger,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
