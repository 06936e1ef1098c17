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
	"github.com/callgate/callgate/engine/bearer"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/telemetry"
)

// gatewayCookiePrefixes are the gateway's own cookies (NextAuth's names, with and without the
// __Secure-/__Host- prefixes), kept from upstreams unless a route asks for them.
var gatewayCookiePrefixes = []string{"next-auth.", "__Secure-next-auth.", "__Host-next-auth."}

// upstreamRoute is the route --upstream adds: the whole origin, protected.
func upstreamRoute(upstream string) config.Route {
	return config.Route{Name: "default", Path: "/", Upstream: upstream}
}

// openAssertionKeys opens the assertion key ring; its rotation is a component of serve.
func openAssertionKeys(cfg config.Config, eng *engine.Engine, logger *slog.Logger, now func() time.Time) (*assertion.Keys, error) {
	a := cfg.Identity.Assertion
	keys, err := assertion.Open(assertion.Options{
		Dir: cfg.DataDir, Issuer: eng.Origin(), TTL: time.Duration(a.TTL),
		RotateEvery: time.Duration(a.RotateEvery), PublishAhead: time.Duration(a.PublishAhead), Logger: logger, Now: now,
	})
	if err != nil {
		return nil, fmt.Errorf("assertion keys: %w", err)
	}
	return keys, nil
}

// frontHandler is the proxy (routes, forward-auth) in front of the engine's handler, with
// the gateway's reserved paths from the surface table.
func frontHandler(cfg config.Config, eng *engine.Engine, keys *assertion.Keys, surface []endpoint, tel *telemetry.Telemetry, logger *slog.Logger, getenv func(string) string, now func() time.Time) (http.Handler, error) {
	providers, err := bearerProviders(cfg.Bearer, getenv, now)
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(proxy.Options{
		Origin:       eng.Origin(),
		Inspector:    eng.Inspector(),
		SignInURL:    eng.Origin() + engine.BasePath + "/signin",
		ChallengeURL: eng.Origin() + engine.BasePath + "/challenge",
		Sessions: func(r *http.Request) (proxy.Session, []string, error) {
			s, setCookie, err := eng.ProxySession(r)
			ps, err := proxySession(s, err)
			return ps, setCookie, err
		},
		BearerSession: func(ctx context.Context, token string) (proxy.Session, error) {
			return proxySession(eng.SessionFromToken(ctx, token))
		},
		BearerProviders:       providers,
		Generation:            func() *script.Generation { return eng.Generation() },
		Routes:                cfg.Routes,
		Proxy:                 cfg.Proxy,
		Identity:              cfg.Identity,
		Assertion:             keys,
		Gateway:               eng.Handler(),
		GatewayPaths:          reservedPaths(surface),
		OnRoute:               routeLabel,
		GatewayCookiePrefixes: gatewayCookiePrefixes,
		WrapTransport:         tel.Transport,
		Logger:                logger,
		Now:                   now,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// proxySession is the engine's answer as the proxy reads it.
func proxySession(s *engine.Session, err error) (proxy.Session, error) {
	if errors.Is(err, engine.ErrStoreUnavailable) {
		return nil, fmt.Errorf("%w: %w", proxy.ErrSessionsUnavailable, err)
	}
	if s == nil || err != nil {
		// A nil *engine.Session must not become a non-nil interface.
		return nil, err
	}
	return s, nil
}

// bearerProviders builds the identity providers whose access tokens routes accept, with
// their introspection secrets read from the environment.
func bearerProviders(bc config.BearerConfig, getenv func(string) string, now func() time.Time) ([]*bearer.Provider, error) {
	var out []*bearer.Provider
	for _, bp := range bc.Providers {
		o := bearer.Options{ID: bp.ID, Issuer: bp.Issuer, Audience: bp.Audience, Algorithms: bp.Algorithms,
			CacheTTL: time.Duration(bp.CacheTTL), Now: now}
		if in := bp.Introspection; in != nil {
			secret := getenv(in.ClientSecretEnv)
			if secret == "" {
				return nil, fmt.Errorf("bearer provider %s: the environment variable %s (introspection.client_secret_env) is empty", bp.ID, in.ClientSecretEnv)
			}
			o.Introspect, o.IntrospectionURL, o.ClientID, o.ClientSecret = true, in.URL, in.ClientID, secret
		}
		p, err := bearer.New(o)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
