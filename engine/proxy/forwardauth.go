package proxy

import (
	"errors"
	"fmt"
	"github.com/callgate/callgate/engine/inspect"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/callgate/callgate/engine/urlpolicy"
)

// forwardAuth answers a proxy in front of the app (nginx auth_request, Traefik ForwardAuth,
// Caddy forward_auth) for the original request it describes.
//
// The description is believed only from a trusted proxy (proxy.trusted_proxies), and only
// from the headers such proxies set, in this precedence (docs/proxy.md, "Forward-auth"):
//
//   - URI: X-Forwarded-Uri (Traefik, Caddy, the documented nginx block) or X-Original-URI
//     (nginx's usual name). nginx copies the client's own headers into the auth
//     subrequest, so a proxy that sets one of the two cannot stop a client from sending
//     the other: when both are present and differ the request is refused (400), and when
//     neither is, too, since judging the subrequest's own path would judge nothing.
//   - Method: X-Forwarded-Method or X-Original-Method, the same way; else the request's.
//   - Host: X-Forwarded-Host; else the subrequest's Host. Proto: X-Forwarded-Proto.
//   - RFC 7239 Forwarded is not read: none of these proxies sets it for forward-auth, so
//     it could only come from the client.
//
// A header given twice is refused. The URI goes through the same URL policy as proxied
// requests; when it is not canonical, the app behind the proxy would read another path
// than the one judged, so a GET or HEAD is sent to the canonical URL instead (nginx mode:
// the 401 whose X-Callgate-Location names it) and anything else is refused with 400.
//
// From an address that is not trusted, the request describes nothing the gateway may
// believe: it is judged as itself against the protected default (no route applies, so no
// public prefix can let it through) and after sign-in the user lands on the gateway's home.
//
// Allowed: 200 with the identity headers for the proxy to copy upstream. Otherwise as a
// proxied request would be refused, except that nginx mode answers 401 instead of
// redirecting (auth_request only understands 2xx, 401 and 403).
func (p *Proxy) forwardAuth(w http.ResponseWriter, r *http.Request, nginx bool) {
	v := view{method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, header: r.Header, r: r, p: p}
	rt := p.defaultRoute
	if !p.addrs.IsTrusted(r.RemoteAddr) {
		v.url = p.o.Origin + "/"
	} else {
		orig, err := p.originalRequest(r)
		if err != nil {
			p.badRequest(w, r, "The forward-auth request does not describe one original request", err)
			return
		}
		v.method, v.path, v.rawQuery, v.url = orig.method, orig.path, orig.rawQuery, orig.url()
		if orig.path != orig.rawPath {
			p.toCanonical(w, r, orig, nginx)
			return
		}
		if m := p.match(orig.host, orig.path); m != nil {
			rt = m
		}
	}
	v.route = rt.Name
	w, r, flow := p.startFlow(w, r, inspect.KindForwardAuth, rt.Name)
	if flow != nil {
		defer inspect.EndRequest(w, flow)
	}
	d := p.decide(r, rt, &v)
	if flow != nil {
		inspectDecision(r, &d, "")
	}
	p.forwardCookies(w, r, d.setCookie, nginx)
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

// forwardCookies puts the session renewal on a forward-auth answer, for the proxy in front
// to pass on to the browser: as Set-Cookie for Traefik (addAuthCookiesToResponse) and
// Caddy, and for nginx as NginxCookieHeaders numbered headers (X-Callgate-Set-Cookie-1,
// ...), because auth_request_set reads only the first of several Set-Cookie lines (nginx
// 1.23 and later join them with commas, which no browser splits), while a renewal is
// several cookies whenever the session cookie is chunked or stale chunks must go. A
// renewal needing more lines than that is not sent (the session stays valid on its
// current cookie): with nginx's default 8 KiB header line, no browser can send a session
// that big through it anyway.
func (p *Proxy) forwardCookies(w http.ResponseWriter, r *http.Request, setCookie []string, nginx bool) {
	if len(setCookie) == 0 {
		return
	}
	h := w.Header()
	if !nginx {
		addCookies(h, setCookie)
		return
	}
	if len(setCookie) > NginxCookieHeaders {
		p.log.WarnContext(r.Context(), "session renewal not sent: nginx passes on at most "+strconv.Itoa(NginxCookieHeaders)+" cookies",
			"code", "SESSION_RENEWAL_ERROR", "cookies", len(setCookie))
		return
	}
	for i, c := range setCookie {
		h[NginxCookieHeader+strconv.Itoa(i+1)] = []string{c}
	}
}

// originalRequest is the request a trusted proxy describes.
type originalRequest struct {
	method, scheme string
	host           urlpolicy.Host
	rawPath        string // as forwarded
	path, rawQuery string // path canonical
}

func (o originalRequest) url() string {
	u := o.scheme + "://" + o.host.String() + o.path
	if o.rawQuery != "" {
		u += "?" + o.rawQuery
	}
	return u
}

// originalRequest reads the original request from a trusted proxy's headers, in the
// precedence forwardAuth documents.
func (p *Proxy) originalRequest(r *http.Request) (originalRequest, error) {
	h := r.Header
	o := originalRequest{method: r.Method, scheme: strings.SplitN(p.o.Origin, "://", 2)[0]}
	uri, err := oneOf(h, "X-Forwarded-Uri", "X-Original-Uri")
	if err != nil {
		return o, err
	}
	if uri == "" {
		return o, errors.New("neither X-Forwarded-Uri nor X-Original-URI is set")
	}
	if m, err := oneOf(h, "X-Forwarded-Method", "X-Original-Method"); err != nil {
		return o, err
	} else if m != "" {
		if !validHeaderName(m) {
			// A method is an HTTP token, the same alphabet as a header name.
			return o, fmt.Errorf("forwarded method %q is not an HTTP method", m)
		}
		o.method = m
	}
	proto, err := single(h, "X-Forwarded-Proto")
	if err != nil {
		return o, err
	}
	switch proto {
	case "":
	case "http", "https":
		o.scheme = proto
	default:
		return o, fmt.Errorf("X-Forwarded-Proto %q is neither http nor https", proto)
	}
	host, err := single(h, "X-Forwarded-Host")
	if err != nil {
		return o, err
	}
	if host == "" {
		host = r.Host
	}
	if o.host, err = urlpolicy.CanonicalHost(host); err != nil {
		return o, fmt.Errorf("forwarded host: %w", err)
	}
	o.rawPath, _, _ = strings.Cut(uri, "?")
	if o.path, o.rawQuery, err = urlpolicy.SplitTarget(uri); err != nil {
		return o, fmt.Errorf("forwarded URI: %w", err)
	}
	return o, nil
}

// toCanonical answers a forwarded request whose path is acceptable but not canonical.
func (p *Proxy) toCanonical(w http.ResponseWriter, r *http.Request, o originalRequest, nginx bool) {
	if o.method != http.MethodGet && o.method != http.MethodHead {
		p.badRequest(w, r, "The request path is not canonical", fmt.Errorf("%s %q is not in canonical form %q", o.method, o.rawPath, o.path))
		return
	}
	target := o.url()
	w.Header().Set("Cache-Control", "no-store")
	if nginx {
		w.Header().Set(NginxLocationHeader, target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// single is a header's only value: "" when absent, an error when sent more than once.
func single(h http.Header, name string) (string, error) {
	vals := h[textproto.CanonicalMIMEHeaderKey(name)]
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	}
	return "", fmt.Errorf("%s is sent %d times", name, len(vals))
}

// oneOf is the value of whichever of two headers naming the same thing is set. Both set
// to different values means one came from the client: refused.
func oneOf(h http.Header, a, b string) (string, error) {
	va, err := single(h, a)
	if err != nil {
		return "", err
	}
	vb, err := single(h, b)
	if err != nil {
		return "", err
	}
	if va != "" && vb != "" && va != vb {
		return "", fmt.Errorf("%s %q and %s %q disagree", a, va, b, vb)
	}
	if va != "" {
		return va, nil
	}
	return vb, nil
}

// redirectOrigins are the origins the proxy may redirect to: the gateway's and the route
// hosts' (with the gateway's scheme).
func redirectOrigins(origin string, routes []*route) *urlpolicy.Redirects {
	origins := []string{origin}
	if u, err := url.Parse(origin); err == nil {
		for _, rt := range routes {
			if rt.host.Name != "" {
				origins = append(origins, u.Scheme+"://"+rt.host.String())
			}
		}
	}
	return urlpolicy.NewRedirects(origins...)
}
