package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine"
	"github.com/callgate/callgate/engine/urlpolicy"
)

// The operational endpoints. They are for operators, and what they show in full can hold
// secrets (the offending source line of a refused reload; a store's error text names hosts
// and users), so where each is served, and how much it shows, depends on who can ask:
//
//	                      /healthz                 /-/status               /metrics
//	admin listener        in full                  in full                 yes
//	gateway's own host    store error text hidden  source line redacted    only without an admin listener
//	a route host          the app's path           the app's path          the app's path
//
// "The gateway's own host" is the host of the configured URL, and also any host no route
// names (a load balancer or kubelet probing by IP), so probes keep working; a route host
// belongs to its app, which may well have a /healthz or /metrics of its own. /metrics has
// no redacted form, so once an admin listener exists it is served there only.
const (
	healthzPath = "/healthz"
	statusPath  = "/-/status"
	metricsPath = "/metrics"
)

// opsEndpoints are the operational endpoints' handlers and the rule for which host is the
// gateway's; the surface table (surface.go) says where each is served.
type opsEndpoints struct {
	gatewayHost urlpolicy.Host   // canonical, the scheme's default port dropped
	defaultPort string           // "80" or "443": the same as no port
	routeHosts  []urlpolicy.Host // canonical, as the proxy matches them
	admin       bool             // an admin listener serves them in full

	eng            *engine.Engine
	metrics        http.Handler
	status         http.Handler // in full
	statusRedacted http.Handler
}

func newOpsEndpoints(cfg config.Config, publicURL *url.URL, eng *engine.Engine, h *scriptHost) (*opsEndpoints, error) {
	o := &opsEndpoints{
		defaultPort: "80",
		admin:       cfg.Server.AdminListen != "",
		eng:         eng,
		metrics:     getOnly(h.metrics.Handler()),
		status:      h.reloader.StatusHandler(),
		// The redacted status shows the store's state without its error (scriptHost.start).
		statusRedacted: h.reloader.RedactedStatusHandler(),
	}
	if publicURL.Scheme == "https" {
		o.defaultPort = "443"
	}
	gh, err := urlpolicy.CanonicalHost(publicURL.Host)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	o.gatewayHost = o.withoutDefaultPort(gh)
	for _, rc := range cfg.Routes {
		if rc.Host == "" {
			continue
		}
		rh, err := urlpolicy.CanonicalHost(rc.Host)
		if err != nil {
			return nil, fmt.Errorf("route %s: host: %w", rc.Name, err)
		}
		o.routeHosts = append(o.routeHosts, rh)
	}
	return o, nil
}

func (o *opsEndpoints) withoutDefaultPort(h urlpolicy.Host) urlpolicy.Host {
	if h.Port == o.defaultPort {
		h.Port = ""
	}
	return h
}

// forGateway reports whether a request for host (a Host header) is for the gateway itself:
// its configured host, or a host that no route names. A Host header the URL policy refuses
// is not (the proxy answers it 400).
func (o *opsEndpoints) forGateway(host string) bool {
	if host == "" {
		return true // HTTP/1.0 without Host: a probe, no route can match it by host
	}
	h, err := urlpolicy.CanonicalHost(host)
	if err != nil {
		return false
	}
	if o.withoutDefaultPort(h) == o.gatewayHost {
		return true
	}
	for _, rh := range o.routeHosts {
		// The proxy's own rule: a route host without a port matches every port.
		if rh.Name == h.Name && (rh.Port == "" || rh.Port == h.Port) {
			return false
		}
	}
	return true
}

func (o *opsEndpoints) healthPublic(w http.ResponseWriter, r *http.Request) { o.health(w, r, false) }
func (o *opsEndpoints) healthFull(w http.ResponseWriter, r *http.Request)   { o.health(w, r, true) }

// health is /healthz: {"status":"ok"|"degraded","scripts":"<hash>","store":{…}}, always 200.
// A store outage is "degraded", not down: jwt sessions still work, and every replica shares
// the store, so taking them all out of the load balancer would help nobody.
func (o *opsEndpoints) health(w http.ResponseWriter, r *http.Request, detailed bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	st := o.storeStatus(r.Context(), detailed)
	status := "ok"
	if !st.OK() {
		status = "degraded"
	}
	storeJSON, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, `{"status":%q,"scripts":%q,"store":%s}`, status, o.eng.Generation().Hash(), storeJSON)
}

// storeStatus is the store's state; without detail, the error text is left out: it names
// addresses, users and internals an anonymous client has no business reading, and the
// state already says whether the store answers.
func (o *opsEndpoints) storeStatus(ctx context.Context, detailed bool) engine.StoreStatus {
	return publicStoreStatus(o.eng.StoreStatus(ctx), detailed)
}

func publicStoreStatus(st engine.StoreStatus, detailed bool) engine.StoreStatus {
	if !detailed {
		st.Error = ""
	}
	return st
}

// getOnly answers 405 to anything but GET and HEAD.
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}
