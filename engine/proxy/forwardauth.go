package proxy

import (
	"net/http"
	"strings"

	"github.com/callgate/callgate/engine/clientaddr"
)

// forwardAuth answers a proxy in front of the app (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth) for the original request it describes in X-Forwarded-Method, -Proto,
// -Host and -Uri (or X-Original-Method / X-Original-URI, nginx's usual names, or RFC 7239
// Forwarded). Those headers are honoured only from a trusted proxy: from anyone else they
// would let a client pick which route it is judged for, so the request is judged as itself.
//
// Allowed: 200 with the identity headers for the proxy to copy upstream. Otherwise as a
// proxied request would be refused, except that nginx mode answers 401 instead of
// redirecting (auth_request only understands 2xx, 401 and 403).
func (p *Proxy) forwardAuth(w http.ResponseWriter, r *http.Request, nginx bool) {
	v := view{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header, r: r, p: p}
	scheme := strings.SplitN(p.o.Origin, "://", 2)[0]
	host := r.Host
	uri := r.URL.RequestURI()
	if p.addrs.IsTrusted(r.RemoteAddr) {
		h := r.Header
		var fwd map[string]string
		if els := clientaddr.ForwardedElements(h); len(els) > 0 {
			fwd = els[0]
		}
		if m := firstNonEmpty(h.Get("X-Forwarded-Method"), h.Get("X-Original-Method")); m != "" {
			v.method = m
		}
		if s := firstNonEmpty(h.Get("X-Forwarded-Proto"), fwd["proto"]); s == "http" || s == "https" {
			scheme = s
		}
		if hh := firstNonEmpty(h.Get("X-Forwarded-Host"), fwd["host"]); hh != "" {
			host = hh
		}
		if u := firstNonEmpty(h.Get("X-Forwarded-Uri"), h.Get("X-Original-URI")); strings.HasPrefix(u, "/") {
			uri = u
		}
		v.path, v.rawQuery, _ = strings.Cut(uri, "?")
	}
	v.url = scheme + "://" + host + uri
	if !p.addrs.IsTrusted(r.RemoteAddr) {
		// The original URL is unknown: after sign-in, land on the gateway's home.
		v.url = p.o.Origin + "/"
	}
	rt := p.match(host, v.path)
	if rt == nil {
		rt = p.defaultRoute
	}
	v.route = rt.Name
	d := p.decide(r, rt, &v)
	if !d.allow {
		p.refuse(w, r, &v, d, nginx)
		return
	}
	out := w.Header()
	for name, values := range d.headers {
		out[name] = values
	}
	out.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
