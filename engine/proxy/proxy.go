// Package proxy puts apps behind the gateway: it routes requests to upstreams by host and
// path, decides each protected request with the session and the `authorized` callback,
// answers the forward-auth contracts of nginx (auth_request), Traefik (ForwardAuth) and
// Caddy (forward_auth), and tells the app who the user is with identity headers and a
// signed assertion JWT.
//
// It must never forward an identity header or a forwarding header that a client sent and
// the gateway did not vouch for, never forward the gateway's own cookies unless a route asks
// for them, and never redirect to an origin that is not the gateway's or a route's. It
// reads sessions only through Options.Sessions and never touches the /api/auth/* flows.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/script"
)

// The gateway's own endpoints that this package serves.
const (
	// NginxAuthPath answers nginx auth_request: 2xx with identity headers, 401 or 403.
	NginxAuthPath = "/_callgate/auth"
	// ForwardAuthPath answers Traefik ForwardAuth and Caddy forward_auth: 2xx with identity
	// headers, 302 to sign in for browsers, 401 for API clients, 403 when denied.
	ForwardAuthPath = "/_callgate/forward-auth"
	// NginxLocationHeader carries, on NginxAuthPath's 401, where nginx should send the
	// browser (auth_request_set $callgate_location $upstream_http_x_callgate_location).
	NginxLocationHeader = "X-Callgate-Location"
	// JWKSPath serves the assertion keys.
	JWKSPath = "/.well-known/jwks.json"
)

// ErrSessionsUnavailable marks a Sessions error that means the session store cannot be
// reached right now (server-side sessions with the store down). Such requests are answered
// 503 with Retry-After: the session may well be valid, so it is neither "signed out"
// nor "allowed".
var ErrSessionsUnavailable = errors.New("sessions are unavailable")

// Session is a signed-in request's session, as the engine reads it.
type Session interface {
	// Token is the decoded session token. Read-only.
	Token() map[string]any
	// Expires is when the session token expires.
	Expires() time.Time
	// Auth is the session as the session callback shapes it. Read-only.
	Auth(ctx context.Context, gen *script.Generation) (map[string]any, error)
	// Remember memoises a value derived from the session until the expiry derive returns.
	// The value is shared by the session's concurrent requests: read-only.
	Remember(key string, now time.Time, derive func() (any, time.Time, error)) (any, error)
}

// Signer signs assertion JWTs.
type Signer interface {
	Sign(claims map[string]any, notAfter time.Time) (token string, expires time.Time, err error)
	TTL() time.Duration
}

// Options configure a Proxy.
type Options struct {
	// Origin is the gateway's public origin, e.g. https://auth.example.com.
	Origin string
	// SignInURL is the sign-in page; callbackUrl is appended.
	SignInURL string
	// Sessions returns the request's session, or nil when it has none. An error wrapping
	// ErrSessionsUnavailable (the session store cannot be reached) is answered with 503,
	// any other error with 500: never as "not signed in".
	Sessions func(*http.Request) (Session, error)
	// Generation returns the script generation serving new requests.
	Generation func() *script.Generation
	// Routes, Proxy and Identity come from the operator's configuration, defaults applied.
	Routes   []config.Route
	Proxy    config.ProxyConfig
	Identity config.IdentityConfig
	// Assertion signs the assertion JWT; nil sends none.
	Assertion Signer
	// JWKS serves JWKSPath; nil serves 404 there.
	JWKS http.Handler
	// Gateway serves everything that is not proxied: /api/auth/*, health, the home page.
	Gateway http.Handler
	// GatewayPaths are always served by Gateway even when a route would match: exact paths,
	// or prefixes when they end in "/".
	GatewayPaths []string
	// GatewayCookiePrefixes name the gateway's cookies, which are not forwarded upstream
	// unless a route asks for them.
	GatewayCookiePrefixes []string
	Logger                *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Proxy is the gateway's front handler. Safe for concurrent use.
type Proxy struct {
	o          Options
	routes     []*route             // most specific first
	addrs      *clientaddr.Resolver // trusted proxies: X-Forwarded-* and the client's address
	origins    map[string]bool      // allowed redirect origins
	strip      stripper
	transport  *http.Transport
	bodyTimout time.Duration
	log        *slog.Logger
	now        func() time.Time
	// defaultRoute decides forward-auth requests that match no configured route.
	defaultRoute *route
	// buffers are the body-copy buffers of every route's ReverseProxy.
	buffers *bufferPool
}

type route struct {
	config.Route
	host      string // lower case
	hasPort   bool
	upstream  *url.URL
	headers   []identityHeader
	assertion bool
	rp        *httputil.ReverseProxy
	// assertionKey and identityKey name the route's signed assertion and identity headers
	// in Session.Remember.
	assertionKey, identityKey string
}

type identityHeader struct{ name, claim string }

// New checks the options and builds the routes' reverse proxies.
func New(o Options) (*Proxy, error) {
	if o.Sessions == nil || o.Generation == nil || o.Gateway == nil {
		return nil, errors.New("proxy: Sessions, Generation and Gateway are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var err error
	p := &Proxy{o: o, log: o.Logger, now: o.Now, bodyTimout: time.Duration(o.Proxy.RequestBodyTimeout), origins: map[string]bool{}}
	if p.addrs, err = clientaddr.New(o.Proxy.TrustedProxies); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	originURL, err := url.Parse(o.Origin)
	if err != nil || originURL.Host == "" {
		return nil, fmt.Errorf("proxy: origin %q is not a URL", o.Origin)
	}
	p.origins[strings.ToLower(o.Origin)] = true
	p.strip = newStripper(o.Identity, o.Routes)
	p.transport = newTransport(o.Proxy, len(o.Routes))
	p.buffers = newBufferPool()
	globalHeaders := headerList(o.Identity.Headers)
	assertionOn := o.Identity.Assertion.Enabled == nil || *o.Identity.Assertion.Enabled
	for _, rc := range o.Routes {
		u, err := url.Parse(rc.Upstream)
		if err != nil {
			return nil, fmt.Errorf("proxy: route %s: upstream: %w", rc.Name, err)
		}
		rt := &route{Route: rc, host: strings.ToLower(rc.Host), hasPort: strings.Contains(rc.Host, ":"), upstream: u, headers: globalHeaders, assertion: assertionOn,
			assertionKey: "assertion\x00" + rc.Name, identityKey: "identity\x00" + rc.Name}
		if rc.Headers != nil {
			rt.headers = headerList(rc.Headers)
		}
		if rc.Assertion != nil {
			rt.assertion = *rc.Assertion
		}
		rt.rp = p.reverseProxy(rt)
		p.routes = append(p.routes, rt)
		if rc.Host != "" {
			p.origins[strings.ToLower(originURL.Scheme+"://"+rc.Host)] = true
		}
	}
	sort.SliceStable(p.routes, func(i, j int) bool {
		a, b := p.routes[i], p.routes[j]
		if (a.host != "") != (b.host != "") {
			return a.host != ""
		}
		return len(a.Path) > len(b.Path)
	})
	p.defaultRoute = &route{headers: globalHeaders, assertion: assertionOn, assertionKey: "assertion\x00", identityKey: "identity\x00"}
	return p, nil
}

func headerList(m map[string]string) []identityHeader {
	list := make([]identityHeader, 0, len(m))
	for name, claim := range m {
		list = append(list, identityHeader{http.CanonicalHeaderKey(name), claim})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return list
}

// RedirectOrigins are the origins of the route hosts, for the engine's callbackUrl check.
func RedirectOrigins(scheme string, routes []config.Route) []string {
	var out []string
	for _, r := range routes {
		if r.Host != "" {
			out = append(out, scheme+"://"+r.Host)
		}
	}
	return out
}

// newTransport is one keep-alive transport for every upstream. Go's default keeps 2 idle
// connections per host, which makes a busy proxy dial on almost every request.
func newTransport(pc config.ProxyConfig, upstreams int) *http.Transport {
	dialer := &net.Dialer{Timeout: time.Duration(pc.DialTimeout), KeepAlive: 30 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = dialer.DialContext
	t.MaxIdleConnsPerHost = pc.MaxIdleConnsPerHost
	t.MaxIdleConns = pc.MaxIdleConnsPerHost * max(upstreams, 1)
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = time.Duration(pc.UpstreamTimeout)
	return t
}

// ServeHTTP routes a request: the gateway's own endpoints, then a matching route, else the
// gateway's handler (home page, 404).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case JWKSPath:
		if p.o.JWKS == nil {
			http.NotFound(w, r)
			return
		}
		p.o.JWKS.ServeHTTP(w, r)
		return
	case NginxAuthPath:
		p.forwardAuth(w, r, true)
		return
	case ForwardAuthPath:
		p.forwardAuth(w, r, false)
		return
	}
	if p.isGatewayPath(r.URL.Path) {
		p.o.Gateway.ServeHTTP(w, r)
		return
	}
	rt := p.match(r.Host, r.URL.Path)
	if rt == nil {
		p.o.Gateway.ServeHTTP(w, r)
		return
	}
	p.serveRoute(w, r, rt)
}

func (p *Proxy) isGatewayPath(path string) bool {
	for _, g := range p.o.GatewayPaths {
		if path == g || (strings.HasSuffix(g, "/") && strings.HasPrefix(path, g)) || path == strings.TrimSuffix(g, "/") {
			return true
		}
	}
	return false
}

// match returns the most specific route for host and path, or nil.
func (p *Proxy) match(host, path string) *route {
	host = strings.ToLower(host)
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	for _, rt := range p.routes {
		if rt.host != "" {
			if rt.hasPort && rt.host != host {
				continue
			}
			if !rt.hasPort && rt.host != bare {
				continue
			}
		}
		if pathHasPrefix(path, rt.Path) {
			return rt
		}
	}
	return nil
}

// pathHasPrefix is a segment-wise prefix match: "/app" matches /app and /app/x, not /apple.
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" || path == prefix {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// requestURL is the absolute URL the user asked for, for callbackUrl: on the route's host
// when it has one, else on the gateway's origin (one app behind the gateway).
func (p *Proxy) requestURL(r *http.Request, rt *route) string {
	if rt.host != "" {
		return strings.SplitN(p.o.Origin, "://", 2)[0] + "://" + r.Host + r.URL.RequestURI()
	}
	return p.o.Origin + r.URL.RequestURI()
}

type decisionKey struct{}

// serveRoute decides a proxied request and forwards it when allowed.
func (p *Proxy) serveRoute(w http.ResponseWriter, r *http.Request, rt *route) {
	v := view{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header, route: rt.Name, r: r, rt: rt, p: p}
	d := p.decide(r, rt, &v)
	if !d.allow {
		p.refuse(w, r, &v, d, false)
		return
	}
	if p.bodyTimout > 0 && r.Body != nil && r.Body != http.NoBody {
		// The server-wide ReadTimeout would also cut WebSockets and long uploads' replies;
		// a deadline on the body alone, lifted at its end, bounds slow senders only.
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(p.now().Add(p.bodyTimout)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), decisionKey{}, &d))
	rt.rp.ServeHTTP(w, r)
}

// reverseProxy builds a route's httputil.ReverseProxy. Everything identity-related happens
// in Rewrite, after ReverseProxy has removed hop-by-hop headers: a client that lists our
// headers in Connection cannot make the proxy drop what the gateway adds.
func (p *Proxy) reverseProxy(rt *route) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport:  p.transport,
		BufferPool: p.buffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(rt.upstream)
			p.strip.clean(pr.Out.Header)
			p.setForwarded(pr)
			if !rt.PassGatewayCookies {
				stripCookies(pr.Out.Header, p.o.GatewayCookiePrefixes)
			}
			if d, ok := pr.In.Context().Value(decisionKey{}).(*decision); ok {
				for name, values := range d.headers {
					pr.Out.Header[name] = values
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.upstreamError(w, r, rt, err)
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// setForwarded writes X-Forwarded-For/-Host/-Proto. From a trusted proxy the inbound values
// are kept (and the proxy's address appended); from anyone else they are replaced.
func (p *Proxy) setForwarded(pr *httputil.ProxyRequest) {
	if !p.addrs.IsTrusted(pr.In.RemoteAddr) {
		pr.SetXForwarded()
		return
	}
	in := pr.In.Header
	if prior := in.Values("X-Forwarded-For"); len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = []string{strings.Join(prior, ", ")}
	}
	pr.SetXForwarded()
	if h := in.Get("X-Forwarded-Host"); h != "" {
		pr.Out.Header.Set("X-Forwarded-Host", h)
	}
	if proto := in.Get("X-Forwarded-Proto"); proto != "" {
		pr.Out.Header.Set("X-Forwarded-Proto", proto)
	}
	if f := in.Values("Forwarded"); len(f) > 0 {
		pr.Out.Header["Forwarded"] = f
	}
}

// deadlineBody lifts the body read deadline once the body has been read to its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// upstreamError answers when the upstream cannot be reached or is too slow: 502 or 504,
// never a hang.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer.
		p.log.DebugContext(r.Context(), "client gone before the upstream answered", "route", rt.Name, "error", err.Error())
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	p.log.WarnContext(r.Context(), "upstream failed", "code", "UPSTREAM_ERROR", "route", rt.Name, "upstream", rt.Upstream, "status", status, "error", err.Error())
	title := "The app behind the gateway is not answering"
	if status == http.StatusGatewayTimeout {
		title = "The app behind the gateway took too long to answer"
	}
	writePage(w, r, status, title, "Try again in a moment. If it keeps happening, tell the site's operator.")
}

// copyBufferSize is what ReverseProxy allocates for every response body it copies.
const copyBufferSize = 32 << 10

// bufferPool reuses ReverseProxy's body-copy buffers. Without it every proxied request
// allocates 32 KiB that dies with it: at thousands of requests a second that garbage
// alone sets the collector's pace and most of the gateway's resident memory.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.pool.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	// Only our own buffers come back; anything else is left to the collector.
	if len(buf) != copyBufferSize {
		return
	}
	b.pool.Put((*[copyBufferSize]byte)(buf))
}
