package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/urlpolicy"
)

// Route puts one app behind the gateway. A request goes to the route whose host matches
// and whose path prefix is the longest match; a route without a host matches any host.
type Route struct {
	// Name identifies the route: the assertion JWT's aud and request.route in the
	// authorized callback. Default: the host and path prefix, e.g. "app.example.com/".
	Name string `yaml:"name"`
	// Host is the Host header to match (host or host:port), case-insensitive. Empty matches
	// every host. Its origin (with the gateway URL's scheme) becomes a valid callbackUrl.
	Host string `yaml:"host"`
	// Path is the path prefix to match, "/" by default. "/app" matches /app and /app/x, not /apple.
	Path string `yaml:"path"`
	// Upstream is the app's base URL, e.g. http://127.0.0.1:8080.
	Upstream string `yaml:"upstream"`
	// Public routes need no session. A signed-in request still gets identity headers.
	Public bool `yaml:"public"`
	// Headers, when set, replaces identity.headers for this route (header name → token claim).
	Headers map[string]string `yaml:"headers"`
	// Assertion, when set, overrides identity.assertion.enabled for this route.
	Assertion *bool `yaml:"assertion"`
	// PassGatewayCookies forwards the gateway's own cookies (next-auth.*) to the app. Off by
	// default: the session cookie is a bearer credential the app does not need.
	PassGatewayCookies bool `yaml:"pass_gateway_cookies"`
	// CaseSensitive makes a protected route match its path prefix in exact case only. By
	// default a protected /admin also covers /ADMIN, because many app frameworks route
	// case-insensitively. Public routes always match in exact case: a public prefix must
	// never widen to a path the app reads as another one.
	CaseSensitive bool `yaml:"case_sensitive"`
	// Bearer lists the bearer tokens the route accepts in `Authorization: Bearer …`:
	// "session" (the gateway's own session token) and the ids of bearer.providers entries,
	// tried in this order. Empty: cookies only. A request with a bearer token the route
	// accepts never gets a sign-in redirect: a bad one is answered 401 with a
	// WWW-Authenticate challenge.
	Bearer []string `yaml:"bearer"`
}

// ProxyConfig holds the reverse proxy and forward-auth settings shared by every route.
type ProxyConfig struct {
	// TrustedProxies lists the CIDRs (or single addresses) whose X-Forwarded-* and Forwarded
	// headers are believed. From any other address those headers are ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// UpstreamTimeout bounds how long an upstream may take to send its response headers.
	// Streaming bodies (SSE, WebSockets) are not cut by it. Default 30s.
	UpstreamTimeout Duration `yaml:"upstream_timeout"`
	// DialTimeout bounds connecting to an upstream. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// RequestBodyTimeout bounds how long a client may take to send a request body. Default 60s.
	RequestBodyTimeout Duration `yaml:"request_body_timeout"`
	// MaxIdleConnsPerHost is how many idle keep-alive connections to each upstream are kept.
	// Default 256 (Go's default of 2 makes a busy proxy dial on almost every request).
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
}

// IdentityConfig says how the app learns who the user is.
type IdentityConfig struct {
	// Headers maps upstream header names to session token claims. Default X-Callgate-User: sub,
	// X-Callgate-Email: email, X-Callgate-Name: name. Preset adds more.
	Headers map[string]string `yaml:"headers"`
	// Preset "oauth2-proxy" adds X-Auth-Request-User (sub), X-Auth-Request-Email (email) and
	// X-Auth-Request-Preferred-Username (name).
	Preset string `yaml:"preset"`
	// StripPrefixes: every client header starting with one of these is removed before the
	// request goes upstream. Default X-Callgate-, X-Auth-Request-, X-Forwarded-User,
	// X-Forwarded-Email, X-Forwarded-Preferred-Username, Remote-User.
	StripPrefixes []string `yaml:"strip_prefixes"`
	// Assertion configures the signed assertion JWT.
	Assertion AssertionConfig `yaml:"assertion"`
}

// AssertionConfig configures the ES256 JWT that tells the app who the user is.
type AssertionConfig struct {
	// Enabled adds the assertion header to every route unless the route says otherwise.
	// Default true.
	Enabled *bool `yaml:"enabled"`
	// Header carries the JWT. Default X-Callgate-Assertion.
	Header string `yaml:"header"`
	// TTL is the JWT's lifetime. Default 5m.
	TTL Duration `yaml:"ttl"`
	// Claims lists session token claims copied into the JWT besides sub and email.
	Claims []string `yaml:"claims"`
	// RotateEvery is how long one signing key signs. Default 720h (30 days).
	RotateEvery Duration `yaml:"rotate_every"`
	// PublishAhead is how long the next key is in the JWKS before it signs, so apps that
	// cache the JWKS know it in time. Default 24h.
	PublishAhead Duration `yaml:"publish_ahead"`
}

// Default identity header settings.
const (
	DefaultAssertionHeader = "X-Callgate-Assertion"
)

// DefaultIdentityHeaders are the identity headers when the config names none.
func DefaultIdentityHeaders() map[string]string {
	return map[string]string{"X-Callgate-User": "sub", "X-Callgate-Email": "email", "X-Callgate-Name": "name"}
}

// oauth2ProxyHeaders are oauth2-proxy's names, for apps written against it.
func oauth2ProxyHeaders() map[string]string {
	return map[string]string{"X-Auth-Request-User": "sub", "X-Auth-Request-Email": "email", "X-Auth-Request-Preferred-Username": "name"}
}

// DefaultStripPrefixes are the client header prefixes removed when the config names none.
func DefaultStripPrefixes() []string {
	return []string{"X-Callgate-", "X-Auth-Request-", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "Remote-User"}
}

func (c *Config) applyProxyDefaults() {
	p := &c.Proxy
	if p.UpstreamTimeout == 0 {
		p.UpstreamTimeout = Duration(30 * time.Second)
	}
	if p.DialTimeout == 0 {
		p.DialTimeout = Duration(5 * time.Second)
	}
	if p.RequestBodyTimeout == 0 {
		p.RequestBodyTimeout = Duration(60 * time.Second)
	}
	if p.MaxIdleConnsPerHost == 0 {
		p.MaxIdleConnsPerHost = 256
	}
	id := &c.Identity
	if id.Headers == nil {
		id.Headers = DefaultIdentityHeaders()
	}
	if id.Preset == "oauth2-proxy" {
		for k, v := range oauth2ProxyHeaders() {
			if _, set := id.Headers[k]; !set {
				id.Headers[k] = v
			}
		}
	}
	if id.StripPrefixes == nil {
		id.StripPrefixes = DefaultStripPrefixes()
	}
	a := &id.Assertion
	if a.Enabled == nil {
		t := true
		a.Enabled = &t
	}
	if a.Header == "" {
		a.Header = DefaultAssertionHeader
	}
	if a.TTL == 0 {
		a.TTL = Duration(5 * time.Minute)
	}
	if a.RotateEvery == 0 {
		a.RotateEvery = Duration(720 * time.Hour)
	}
	if a.PublishAhead == 0 {
		a.PublishAhead = Duration(24 * time.Hour)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Path == "" {
			r.Path = "/"
		}
		if r.Name == "" {
			r.Name = strings.ToLower(r.Host) + r.Path
		}
	}
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// cookieDomain is a registrable-looking host name with an optional leading dot.
var cookieDomain = regexp.MustCompile(`^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

func (c *Config) validateProxy() error {
	if c.CookieDomain != "" && !cookieDomain.MatchString(c.CookieDomain) {
		return &Error{"cookie_domain", fmt.Sprintf("want a domain such as .example.com, got %q", c.CookieDomain)}
	}
	for i, cidr := range c.Proxy.TrustedProxies {
		if _, err := ParseCIDR(cidr); err != nil {
			return &Error{fmt.Sprintf("proxy.trusted_proxies[%d]", i), err.Error()}
		}
	}
	for field, d := range map[string]Duration{
		"proxy.upstream_timeout": c.Proxy.UpstreamTimeout, "proxy.dial_timeout": c.Proxy.DialTimeout,
		"proxy.request_body_timeout": c.Proxy.RequestBodyTimeout, "identity.assertion.ttl": c.Identity.Assertion.TTL,
		"identity.assertion.rotate_every": c.Identity.Assertion.RotateEvery, "identity.assertion.publish_ahead": c.Identity.Assertion.PublishAhead,
	} {
		if d < 0 {
			return &Error{field, "must be positive"}
		}
	}
	if a := c.Identity.Assertion; a.PublishAhead >= a.RotateEvery {
		return &Error{"identity.assertion.publish_ahead", "must be shorter than identity.assertion.rotate_every"}
	}
	if c.Proxy.MaxIdleConnsPerHost < 0 {
		return &Error{"proxy.max_idle_conns_per_host", "must not be negative"}
	}
	switch c.Identity.Preset {
	case "", "oauth2-proxy":
	default:
		return &Error{"identity.preset", fmt.Sprintf("want oauth2-proxy or nothing, got %q", c.Identity.Preset)}
	}
	if err := validHeaderMap("identity.headers", c.Identity.Headers); err != nil {
		return err
	}
	for i, p := range c.Identity.StripPrefixes {
		if !headerName.MatchString(p) {
			return &Error{fmt.Sprintf("identity.strip_prefixes[%d]", i), fmt.Sprintf("not a header name prefix: %q", p)}
		}
	}
	if !headerName.MatchString(c.Identity.Assertion.Header) {
		return &Error{"identity.assertion.header", fmt.Sprintf("not a header name: %q", c.Identity.Assertion.Header)}
	}
	names := map[string]bool{}
	for i, r := range c.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		if names[r.Name] {
			return &Error{field + ".name", fmt.Sprintf("duplicate route name %q", r.Name)}
		}
		names[r.Name] = true
		if r.Upstream == "" {
			return &Error{field + ".upstream", "must not be empty"}
		}
		u, err := url.Parse(r.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{field + ".upstream", fmt.Sprintf("want an http(s) URL such as http://127.0.0.1:8080, got %q", r.Upstream)}
		}
		if !strings.HasPrefix(r.Path, "/") {
			return &Error{field + ".path", fmt.Sprintf("want a path starting with /, got %q", r.Path)}
		}
		if canon, err := urlpolicy.CanonicalPath(r.Path); err != nil {
			return &Error{field + ".path", err.Error()}
		} else if canon != r.Path {
			// Requests are matched on their canonical path, so a prefix that is not
			// canonical could never match what it seems to name.
			return &Error{field + ".path", fmt.Sprintf("%q is not canonical; write it as %q", r.Path, canon)}
		}
		if r.Host != "" {
			if _, err := urlpolicy.CanonicalHost(r.Host); err != nil {
				return &Error{field + ".host", fmt.Sprintf("want host or host:port, got %q: %v", r.Host, err)}
			}
		}
		if err := validHeaderMap(field+".headers", r.Headers); err != nil {
			return err
		}
	}
	return nil
}

func validHeaderMap(field string, m map[string]string) error {
	for name, claim := range m {
		if !headerName.MatchString(name) {
			return &Error{field, fmt.Sprintf("not a header name: %q", name)}
		}
		if claim == "" {
			return &Error{field + "." + name, "want a token claim name"}
		}
		if http.CanonicalHeaderKey(name) == "Cookie" || http.CanonicalHeaderKey(name) == "Host" {
			return &Error{field, fmt.Sprintf("%s cannot carry identity", name)}
		}
	}
	return nil
}

// ParseCIDR parses a CIDR or a single IP address (as a /32 or /128).
func ParseCIDR(s string) (*net.IPNet, error) {
	if !strings.Contains(s, "/") {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q", s)
		}
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q", s)
	}
	return n, nil
}
