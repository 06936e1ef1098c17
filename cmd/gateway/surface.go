package main

import (
	"net/http"

	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/metrics"
	"github.com/callgate/callgate/engine/proxy"
	"github.com/callgate/callgate/engine/telemetry"
)

// The gateway's own HTTP surface, declared once: every path it serves itself, where, and
// under which metric label. What the proxy reserves (proxy.Options.GatewayPaths), what the
// public listener answers before the proxy, what the admin listener serves and how each
// request is labelled in the metrics all come from this table, so a path is reserved
// exactly when it is served.

// scope says on which hosts of the public listener an endpoint is the gateway's.
type scope int

const (
	// everyHost: reserved on every host, so no app behind the gateway can have the path;
	// the proxy serves it before it matches routes, on the canonical path.
	everyHost scope = iota
	// gatewayHost: the gateway's on its own host and on hosts no route names; on a route
	// host the path is the app's (ops.go explains why). Matched on the exact path.
	gatewayHost
)

// endpoint is one path of the gateway's own surface.
type endpoint struct {
	// path is exact, or a prefix when it ends in "/" (everyHost only).
	path  string
	scope scope
	// label is the metric route label of its requests; "" leaves it to metrics.Route,
	// which labels the auth routes by action ("/api/auth/session").
	label string
	// public serves it on the public listener, given the proxy (the forward-auth
	// endpoints are the proxy's); nil when it is not served there.
	public func(*proxy.Proxy) http.Handler
	// admin serves it on the admin listener; nil when it is not served there.
	admin http.Handler
}

// surfaceParts are the handlers behind the surface.
type surfaceParts struct {
	auth http.Handler // the engine: /api/auth/*
	jwks http.Handler // the assertion keys
	// sessionJWKS serves the signed session token's public keys; nil when there are none
	// (jwe, HS256), and then the path is the apps'.
	sessionJWKS http.Handler
	ops         *opsEndpoints
	// inspector serves /-/inspector (inspector.go); off, its paths say how to turn it on.
	inspector inspectorSetup
}

// gatewaySurface is the table. /metrics has no redacted form, so once an admin listener
// exists it is served there only.
func gatewaySurface(p surfaceParts) []endpoint {
	metricsPublic := fixed(p.ops.metrics)
	if p.ops.admin {
		metricsPublic = nil
	}
	surface := []endpoint{
		{path: engine.BasePath + "/", scope: everyHost, public: fixed(p.auth)},
		{path: proxy.NginxAuthPath, scope: everyHost, label: proxy.NginxAuthPath, public: (*proxy.Proxy).NginxAuth},
		{path: proxy.ForwardAuthPath, scope: everyHost, label: proxy.ForwardAuthPath, public: (*proxy.Proxy).ForwardAuth},
		{path: proxy.JWKSPath, scope: everyHost, label: proxy.JWKSPath, public: fixed(p.jwks)},
		{path: healthzPath, scope: gatewayHost, label: healthzPath,
			public: fixed(http.HandlerFunc(p.ops.healthPublic)), admin: http.HandlerFunc(p.ops.healthFull)},
		{path: statusPath, scope: gatewayHost, label: statusPath, public: fixed(p.ops.statusRedacted), admin: p.ops.status},
		{path: metricsPath, scope: gatewayHost, label: metricsPath, public: metricsPublic, admin: p.ops.metrics},
	}
	surface = append(surface, p.inspector.endpoints()...)
	if p.sessionJWKS != nil {
		surface = append(surface, endpoint{path: sessionJWKSPath, scope: everyHost, label: sessionJWKSPath, public: fixed(p.sessionJWKS)})
	}
	return surface
}

func fixed(h http.Handler) func(*proxy.Proxy) http.Handler {
	return func(*proxy.Proxy) http.Handler { return h }
}

// labelled sets the request's metric label before h serves it.
func labelled(label string, h http.Handler) http.Handler {
	if label == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metrics.SetRoute(w, label)
		h.ServeHTTP(w, r)
	})
}

// reservedPaths are the everyHost endpoints, for proxy.Options.GatewayPaths.
func reservedPaths(surface []endpoint) []proxy.GatewayPath {
	var out []proxy.GatewayPath
	for _, e := range surface {
		if e.scope != everyHost || e.public == nil {
			continue
		}
		out = append(out, proxy.GatewayPath{Path: e.path, Handler: func(p *proxy.Proxy) http.Handler {
			return labelled(e.label, e.public(p))
		}})
	}
	return out
}

// routeLabel is the metric label of a request a route matched: its route, whatever the
// path, so an app's own /metrics is not counted as the gateway's.
func routeLabel(w http.ResponseWriter, route string) { metrics.SetRoute(w, "route:"+route) }

// publicHandler is the public listener: the gatewayHost endpoints for the gateway's host,
// then front (the proxy, which serves the everyHost ones), every request counted and, with
// tracing on, traced. Paths are
// not cleaned here: the proxy turns every request into its canonical form
// (engine/urlpolicy) or refuses it before anything matches routes, and an exact match on
// the raw path only ever answers less.
func publicHandler(m *metrics.Metrics, tel *telemetry.Telemetry, surface []endpoint, ops *opsEndpoints, front http.Handler) http.Handler {
	own := map[string]http.Handler{}
	for _, e := range surface {
		if e.scope == gatewayHost && e.public != nil {
			own[e.path] = labelled(e.label, e.public(nil))
		}
	}
	return m.Middleware(tel.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := own[r.URL.Path]; ok && ops.forGateway(r.Host) {
			h.ServeHTTP(w, r)
			return
		}
		front.ServeHTTP(w, r)
	})))
}

// adminHandler is the admin listener: the endpoints with an admin form, in full, 404 for
// the rest, every request counted.
func adminHandler(m *metrics.Metrics, surface []endpoint) http.Handler {
	mux := http.NewServeMux()
	for _, e := range surface {
		if e.admin != nil {
			mux.Handle(e.path, labelled(e.label, e.admin))
		}
	}
	return m.Middleware(mux)
}
