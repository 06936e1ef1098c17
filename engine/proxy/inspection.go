package proxy

import (
	"net/http"
	"strings"

	"github.com/callgate/callgate/engine/inspect"
)

// What the proxy tells the inspector (engine/inspect), when one is on: a flow per proxied
// request and per forward-auth check, with the access decision. With the inspector off
// Options.Inspector is nil and each hook is a nil check.

// startFlow begins a flow for r (a request to route) and records the route it matched.
func (p *Proxy) startFlow(w http.ResponseWriter, r *http.Request, kind inspect.Kind, route string) (http.ResponseWriter, *http.Request, *inspect.Flow) {
	if p.o.Inspector == nil {
		return w, r, nil
	}
	w, r, f := p.o.Inspector.StartRequest(w, r, kind, r.URL.EscapedPath())
	f.Core("route", "matched route "+route, map[string]any{"route": route})
	return w, r, f
}

// inspectDecision records the access decision and what it passes on: the identity header
// names (their values are the user's identity, shown by the callbacks already; an
// assertion is a token and never shown).
func inspectDecision(r *http.Request, d *decision, upstream string) {
	f := inspect.FromContext(r.Context())
	if f == nil {
		return
	}
	var summary string
	switch {
	case d.allow && upstream != "":
		summary = "allowed: forwarded to " + upstream
	case d.allow:
		summary = "allowed"
	case d.stepUpAsked:
		summary = "step-up asked: factors " + strings.Join(d.stepUp, ", ")
	case d.failed:
		summary = "refused: a callback failed (500)"
	case d.unavailable:
		summary = "refused: the session store is unavailable (503)"
	case d.location != "":
		summary = "refused: redirect to " + d.location
	case d.signedIn:
		summary = "refused: signed in but not authorized (403)"
	default:
		summary = "refused: not signed in"
	}
	var headers []string
	for name := range d.headers {
		headers = append(headers, name)
	}
	detail := map[string]any{"allow": d.allow, "signedIn": d.signedIn, "identityHeaders": headers}
	if d.auth != nil {
		detail["auth"] = d.auth.method + " " + d.auth.kind
	}
	f.Core("decision", summary, detail)
}
