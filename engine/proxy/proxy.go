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
	"github.com/callgate/callgate/engine/inspect"
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
	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/bearer"
	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/reqbody"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/urlpolicy"
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
	// NginxCookieHeader, numbered from 1 to NginxCookieHeaders, carries on NginxAuthPath's
	// answers the Set-Cookie values of a session renewal, one per header, for nginx to add
	// to its response (auth_request_set $callgate_cookie_1
	// $upstream_http_x_callgate_set_cookie_1; add_header Set-Cookie $callgate_cookie_1).
	NginxCookieHeader  = "X-Callgate-Set-Cookie-"
	NginxCookieHeaders = 4
	// JWKSPath serves the assertion keys.
	JWKSPath = "/.well-known/jwks.json"
)

// GatewayPath is a path the gateway serves itself on every host: no request for it is
// forwarded to an app, whatever the routes say.
type GatewayPath struct {
	// Path is exact, or a prefix when it ends in "/" (which then matches without its slash
	// too).
	Path string
	// Handler returns what serves the path, given the proxy being built (the forward-auth
	// endpoints are the proxy's: NginxAuth, ForwardAuth). nil means Options.Gateway.
	Handler func(*Proxy) http.Handler
}

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
	Sign(claims *assertion.Claims, notAfter time.Time) (token string, expires time.Time, err error)
	TTL() time.Duration
}

// Options configure a Proxy.
type Options struct {
	// Origin is the gateway's public origin, e.g. https://auth.example.com.
	Origin string
	// Inspector, when set, is told about every proxied request and forward-auth check
	// (engine/inspect).
	Inspector *inspect.Inspector
	// SignInURL is the sign-in page; callbackUrl is appended.
	SignInURL string
	// ChallengeURL is the factor challenge page a step-up sends browsers to; callbackUrl
	// and factors are appended.
	ChallengeURL string
	// Sessions returns the request's session, or nil when it has none, and the Set-Cookie
	// values that renew (or delete) the session cookie, which the answer to the browser
	// carries: a proxied response on top of the upstream's own cookies, a forward-auth
	// answer for the proxy in front to pass on. An error wrapping ErrSessionsUnavailable
	// (the session store cannot be reached) is answered with 503, any other error with
	// 500: never as "not signed in".
	Sessions func(*http.Request) (Session, []string, error)
	// BearerSession reads the gateway's own session token sent as `Authorization: Bearer`,
	// for routes whose bearer list has "session": nil (and no error) when it is not one,
	// errors as Sessions. Required when a route lists "session". A bearer session is not
	// renewed: an API client has no cookie to receive one.
	BearerSession func(ctx context.Context, token string) (Session, error)
	// BearerProviders verify identity providers' access tokens for the routes that list
	// their ids.
	BearerProviders []*bearer.Provider
	// Generation returns the script generation serving new requests.
	Generation func() *script.Generation
	// Routes, Proxy and Identity come from the operator's configuration, defaults applied.
	Routes   []config.Route
	Proxy    config.ProxyConfig
	Identity config.IdentityConfig
	// Assertion signs the assertion JWT; nil sends none.
	Assertion Signer
	// Gateway serves what no route matches (the home page, 404) and the GatewayPaths
	// without a handler of their own.
	Gateway http.Handler
	// GatewayPaths are the gateway's own on every host, never forwarded, even where a
	// route would match. The gateway declares them in one table (cmd/gateway); the proxy
	// has no list of its own, so a path is reserved exactly when it is served.
	GatewayPaths []GatewayPath
	// OnRoute, when not nil, is told which route a request matched, before it is decided
	// and forwarded: the metrics label a proxied request by its route, not by its path.
	OnRoute func(w http.ResponseWriter, route string)
	// GatewayCookiePrefixes name the gateway's cookies, which are not forwarded upstream
	// unless a route asks for them.
	GatewayCookiePrefixes []string
	// WrapTransport, when not nil, wraps the transport every upstream request goes
	// through: the tracing's client span and trace context.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	Logger        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Proxy is the gateway's front handler. Safe for concurrent use.
type Proxy struct {
	o           Options
	routes      []*route             // most specific first
	addrs       *clientaddr.Resolver // trusted proxies: X-Forwarded-* and the client's address
	redirects   *urlpolicy.Redirects // where the authorized callback may redirect
	strip       stripper
	transport   http.RoundTripper
	bodyTimeout time.Duration
	log         *slog.Logger
	now         func() time.Time
	// defaultRoute decides forward-auth requests that match no configured route.
	defaultRoute *route
	// reserved are Options.GatewayPaths with their handlers.
	reserved []reservedPath
	// buffers are the body-copy buffers of every route's ReverseProxy.
	buffers *bufferPool
}

type route struct {
	config.Route
	host      urlpolicy.Host // canonical; Name "" matches every host
	upstream  *url.URL
	headers   []identityHeader
	assertion bool
	bearer    []bearerAccept // the bearer tokens the route accepts, in order
	rp        *httputil.ReverseProxy
	// assertionKey and identityKey name the route's signed assertion and identity headers
	// in Session.Remember.
	assertionKey, identityKey string
}

type identityHeader struct{ name, claim string }

type reservedPath struct {
	path    string
	handler http.Handler
}

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
	p := &Proxy{o: o, log: o.Logger, now: o.Now, bodyTimeout: time.Duration(o.Proxy.RequestBodyTimeout)}
	if p.addrs, err = clientaddr.New(o.Proxy.TrustedProxies); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	originURL, err := url.Parse(o.Origin)
	if err != nil || originURL.Host == "" {
		return nil, fmt.Errorf("proxy: origin %q is not a URL", o.Origin)
	}
	p.strip = newStripper(o.Identity, o.Routes)
	p.transport = newTransport(o.Proxy, len(o.Routes))
	if o.WrapTransport != nil {
		p.transport = o.WrapTransport(p.transport)
	}
	p.buffers = newBufferPool()
	globalHeaders := headerList(o.Identity.Headers)
	assertionOn := o.Identity.Assertion.Enabled == nil || *o.Identity.Assertion.Enabled
	for _, rc := range o.Routes {
		u, err := url.Parse(rc.Upstream)
		if err != nil {
			return nil, fmt.Errorf("proxy: route %s: upstream: %w", rc.Name, err)
		}
		rt := &route{Route: rc, upstream: u, headers: globalHeaders, assertion: assertionOn,
			assertionKey: "assertion\x00" + rc.Name, identityKey: "identity\x00" + rc.Name}
		if rc.Host != "" {
			if rt.host, err = urlpolicy.CanonicalHost(rc.Host); err != nil {
				return nil, fmt.Errorf("proxy: route %s: host: %w", rc.Name, err)
			}
		}
		if rt.Path, err = urlpolicy.CanonicalPath(rc.Path); err != nil {
			return nil, fmt.Errorf("proxy: route %s: path: %w", rc.Name, err)
		}
		if rc.Headers != nil {
			rt.headers = headerList(rc.Headers)
		}
		if rc.Assertion != nil {
			rt.assertion = *rc.Assertion
		}
		if rt.bearer, err = bearerList(rc, o); err != nil {
			return nil, err
		}
		rt.rp = p.reverseProxy(rt)
		p.routes = append(p.routes, rt)
	}
	p.redirects = redirectOrigins(o.Origin, p.routes)
	sort.SliceStable(p.routes, func(i, j int) bool {
		a, b := p.routes[i], p.routes[j]
		if (a.host.Name != "") != (b.host.Name != "") {
			return a.host.Name != ""
		}
		return len(a.Path) > len(b.Path)
	})
	p.defaultRoute = &route{headers: globalHeaders, assertion: assertionOn, assertionKey: "assertion\x00", identityKey: "identity\x00"}
	for _, gp := range o.GatewayPaths {
		if !strings.HasPrefix(gp.Path, "/") {
			return nil, fmt.Errorf("proxy: gateway path %q does not start with /", gp.Path)
		}
		h := o.Gateway
		if gp.Handler != nil {
			if h = gp.Handler(p); h == nil {
				return nil, fmt.Errorf("proxy: gateway path %s has no handler", gp.Path)
			}
		}
		p.reserved = append(p.reserved, reservedPath{gp.Path, h})
	}
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

// NginxAuth answers nginx auth_request, at NginxAuthPath when the gateway reserves it.
func (p *Proxy) NginxAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.forwardAuth(w, r, true) })
}

// ForwardAuth answers Traefik ForwardAuth and Caddy forward_auth, at ForwardAuthPath when
// the gateway reserves it.
func (p *Proxy) ForwardAuth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.forwardAuth(w, r, false) })
}

// ServeHTTP routes a request: the gateway's own paths, then a matching route, else the
// gateway's handler (home page, 404).
//
// Before anything matches, the request target becomes canonical (package urlpolicy): a
// path or host the policy refuses is answered 400, and from here on r.URL holds the
// canonical path, which is what routes match, what the authorized callback sees and what
// goes upstream. So the gateway and the app can never read two different paths.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, ok := p.canonicalize(w, r)
	if !ok {
		return
	}
	if h := p.reservedHandler(r.URL.Path); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	// Routes match the escaped canonical path, as they are written in the configuration
	// and as Node's URL parser gives an app its pathname.
	rt := p.match(host, r.URL.EscapedPath())
	if rt == nil {
		p.o.Gateway.ServeHTTP(w, r)
		return
	}
	p.serveRoute(w, r, rt)
}

// canonicalize rewrites r's path and Host to their canonical forms, or answers 400.
func (p *Proxy) canonicalize(w http.ResponseWriter, r *http.Request) (urlpolicy.Host, bool) {
	var host urlpolicy.Host
	if r.Host != "" {
		h, err := urlpolicy.CanonicalHost(r.Host)
		if err != nil {
			p.badRequest(w, r, "The Host header is not a host name", err)
			return host, false
		}
		host = h
		if s := h.String(); s != r.Host {
			r.Host = s
		}
	}
	raw := targetPath(r)
	canon, err := urlpolicy.CanonicalPath(raw)
	if err != nil {
		p.badRequest(w, r, "The request path is not allowed", err)
		return host, false
	}
	if canon != raw || r.URL.RawPath != "" {
		if err := setPath(r.URL, canon); err != nil {
			p.badRequest(w, r, "The request path is not allowed", err)
			return host, false
		}
	}
	return host, true
}

// targetPath is the path of the request target exactly as the client sent it: Go's
// r.URL.Path is already decoded, and "/a%2Fb" and "/a/b" must not look alike here.
func targetPath(r *http.Request) string {
	if raw := r.RequestURI; raw != "" && raw[0] == '/' {
		p, _, _ := strings.Cut(raw, "?")
		return p
	}
	return r.URL.EscapedPath() // absolute-form targets, and requests built in-process
}

// setPath makes u's path the canonical escaped path canon.
func setPath(u *url.URL, canon string) error {
	dec, err := url.PathUnescape(canon)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = dec, ""
	if u.EscapedPath() != canon {
		u.RawPath = canon
	}
	return nil
}

// badRequest refuses a request the URL policy does not accept.
func (p *Proxy) badRequest(w http.ResponseWriter, r *http.Request, title string, err error) {
	p.log.InfoContext(r.Context(), "request refused by the URL policy", "code", "INVALID_REQUEST_TARGET", "reason", err.Error())
	w.Header().Set("Cache-Control", "no-store")
	writePage(w, r, http.StatusBadRequest, title, err.Error())
}

// reservedHandler is what serves a canonical path the gateway reserves, or nil.
func (p *Proxy) reservedHandler(path string) http.Handler {
	for _, g := range p.reserved {
		if path == g.path || (strings.HasSuffix(g.path, "/") && strings.HasPrefix(path, g.path)) || path == strings.TrimSuffix(g.path, "/") {
			return g.handler
		}
	}
	return nil
}

// match returns the most specific route for a canonical host and path, or nil. Protected
// routes match their prefix in any ASCII case unless they are case_sensitive; public
// routes only in exact case, so that case can make a path more protected, never less.
func (p *Proxy) match(host urlpolicy.Host, path string) *route {
	for _, rt := range p.routes {
		if rt.host.Name != "" {
			if rt.host.Name != host.Name || rt.host.Port != "" && rt.host.Port != host.Port {
				continue
			}
		}
		if urlpolicy.HasPrefix(path, rt.Path, !rt.Public && !rt.CaseSensitive) {
			return rt
		}
	}
	return nil
}

// requestURL is the absolute URL the user asked for, for callbackUrl: on the route's host
// when it has one, else on the gateway's origin (one app behind the gateway).
func (p *Proxy) requestURL(r *http.Request, rt *route) string {
	if rt.host.Name != "" {
		return strings.SplitN(p.o.Origin, "://", 2)[0] + "://" + r.Host + r.URL.RequestURI()
	}
	return p.o.Origin + r.URL.RequestURI()
}

type decisionKey struct{}

// serveRoute decides a proxied request and forwards it when allowed.
func (p *Proxy) serveRoute(w http.ResponseWriter, r *http.Request, rt *route) {
	if p.o.OnRoute != nil {
		p.o.OnRoute(w, rt.Name)
	}
	w, r, flow := p.startFlow(w, r, inspect.KindProxy, rt.Name)
	if flow != nil {
		defer inspect.EndRequest(w, flow)
	}
	v := view{method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, header: r.Header, route: rt.Name, r: r, rt: rt, p: p}
	d := p.decide(r, rt, &v)
	if flow != nil {
		inspectDecision(r, &d, rt.upstream.Host)
	}
	if !d.allow {
		addCookies(w.Header(), d.setCookie)
		p.refuse(w, r, &v, d, false)
		return
	}
	reqbody.LimitTime(w, r, p.bodyTimeout)
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
				if d.auth == sessionBearerAuth && !rt.PassGatewayCookies {
					// The gateway's session token is a credential the app does not need,
					// as a bearer as much as in a cookie.
					pr.Out.Header.Del("Authorization")
				}
			}
		},
		ModifyResponse: func(res *http.Response) error {
			if d, ok := res.Request.Context().Value(decisionKey{}).(*decision); ok && len(d.setCookie) > 0 {
				renewCookies(res.Header, d.setCookie)
			}
			return nil
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
	// X-Real-IP is the client address the gateway resolved, whatever the client sent.
	pr.Out.Header["X-Real-Ip"] = []string{p.addrs.ClientIP(pr.In)}
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
	// The prefix and port a trusted proxy in front describes (the stripper removed every
	// client's copy).
	for _, name := range []string{"X-Forwarded-Prefix", "X-Forwarded-Port"} {
		if v := in[name]; len(v) > 0 {
			pr.Out.Header[name] = v
		}
	}
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

// addCookies appends the session renewal's Set-Cookie values to h.
func addCookies(h http.Header, setCookie []string) {
	if len(setCookie) > 0 {
		h["Set-Cookie"] = append(h["Set-Cookie"], setCookie...)
	}
}

// renewCookies adds the session renewal to an upstream's response: its cookies after the
// upstream's own, and Cache-Control: private, no-store in place of whatever the upstream
// allowed, because a shared cache that stored this one response would hand one user's
// session to everyone it serves the response to. It is one response per session and
// session.updateAge, so the cost to the app's caching is nil.
func renewCookies(h http.Header, setCookie []string) {
	addCookies(h, setCookie)
	h.Set("Cache-Control", "private, no-store")
	h.Del("Expires")
}
