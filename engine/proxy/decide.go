package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/script"
)

// view is the request as the authorized callback sees it: for a proxied request the request
// itself, for forward-auth the original request the proxy in front describes.
//
// The original URL and the client's address are worked out only when something reads them
// (the script, or a refusal that sends the browser to sign in): most requests are allowed
// by a callback that looks at the path and the token alone.
type view struct {
	method, path, rawQuery string
	header                 http.Header
	route                  string

	url, ip string // when set, or else
	r       *http.Request
	rt      *route // with r: the proxied request's URL on this route
	p       *Proxy // with r: the client address and the URL
}

// requestURL is the absolute URL the user asked for.
func (v *view) requestURL() string {
	if v.url == "" && v.r != nil {
		v.url = v.p.requestURL(v.r, v.rt)
	}
	return v.url
}

// clientIP is the client's address, behind trusted proxies the one they name.
func (v *view) clientIP() string {
	if v.ip == "" && v.r != nil {
		v.ip = v.p.addrs.ClientIP(v.r)
	}
	return v.ip
}

// Get makes v the callback's read-only `request` object (a script.Object): each property is
// built when the script reads it, so a callback that looks at the path alone never pays
// for the headers or the query.
func (v *view) Get(key string) (any, bool) {
	switch key {
	case "method":
		return v.method, true
	case "url":
		return v.requestURL(), true
	case "path":
		return v.path, true
	case "ip":
		return v.clientIP(), true
	case "route":
		return v.route, true
	case "headers":
		return headerObject(v.header), true
	case "query":
		// Values as strings, the first when a name repeats.
		query := map[string]any{}
		if v.rawQuery != "" {
			if q, err := url.ParseQuery(v.rawQuery); err == nil {
				for k, vals := range q {
					query[k] = vals[0]
				}
			}
		}
		return query, true
	}
	return nil, false
}

// Keys implements script.Object.
func (v *view) Keys() []string {
	return []string{"headers", "ip", "method", "path", "query", "route", "url"}
}

// headerObject is request.headers: names lower-cased as Node gives them, repeated fields
// joined with ", ". A read looks up one header; nothing is copied until the script lists them.
type headerObject http.Header

func (h headerObject) Get(name string) (any, bool) {
	if name != strings.ToLower(name) {
		// Node's headers object has lower-case names only: headers["Accept"] is undefined.
		return nil, false
	}
	vals, ok := h[textproto.CanonicalMIMEHeaderKey(name)]
	if !ok {
		return nil, false
	}
	if len(vals) == 1 {
		return vals[0], true
	}
	return strings.Join(vals, ", "), true
}

func (h headerObject) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, strings.ToLower(k))
	}
	return keys
}

// authorizedArg is the authorized callback's argument, { token, auth, request }.
type authorizedArg struct {
	token, auth script.Object // nil when not signed in
	// request is a copy: a pointer to the caller's view would move every request's view
	// to the heap, called or not.
	request view
}

func (a *authorizedArg) Get(key string) (any, bool) {
	switch key {
	case "token":
		return objectOrNull(a.token), true
	case "auth":
		return objectOrNull(a.auth), true
	case "request":
		return &a.request, true
	}
	return nil, false
}

func (a *authorizedArg) Keys() []string { return []string{"auth", "request", "token"} }

// objectOrNull keeps a missing object null in the script, not an Object holding nil.
func objectOrNull(o script.Object) any {
	if o == nil {
		return nil
	}
	return o
}

// decision is the outcome for one request.
type decision struct {
	allow bool
	// signedIn tells a refusal apart: not signed in → sign in; signed in → 403.
	signedIn bool
	// location is a redirect the authorized callback chose.
	location string
	// failed is a gateway-side failure (a callback error): 500.
	failed bool
	// unavailable is a failure to reach the session store: 503.
	unavailable bool
	// headers are the identity headers to add upstream (or to return to forward-auth).
	headers http.Header
}

// decide runs the session read and the authorized callback for a request to rt.
func (p *Proxy) decide(r *http.Request, rt *route, v *view) decision {
	ctx := r.Context()
	sess, err := p.o.Sessions(r)
	if errors.Is(err, ErrSessionsUnavailable) {
		p.log.WarnContext(ctx, "session store unavailable; refusing the request with 503", "code", "STORE_UNAVAILABLE", "route", rt.Name, "error", err.Error())
		return decision{failed: true, unavailable: true}
	}
	if err != nil {
		p.log.ErrorContext(ctx, "read session", "code", "SESSION_ERROR", "route", rt.Name, "error", err.Error())
		return decision{failed: true}
	}
	d := decision{signedIn: sess != nil}
	var extra map[string]any // the callback's upstream headers and claims
	gen := p.o.Generation()
	switch {
	case rt.Public:
		d.allow = true
	case gen.Has("callbacks.authorized"):
		// script.Shared: the token and auth are the cached session's, shared by concurrent
		// requests; the callback converts only what it reads and never writes them.
		arg := &authorizedArg{request: *v}
		if sess != nil {
			auth, err := sess.Auth(ctx, gen)
			if err != nil {
				p.logCallbackError(r, rt, err)
				return decision{failed: true}
			}
			arg.token = script.Shared(sess.Token())
			if auth != nil {
				arg.auth = script.Shared(auth)
			}
		}
		res, err := gen.CallObject(ctx, "callbacks.authorized", arg)
		if err != nil {
			p.logCallbackError(r, rt, err)
			return decision{failed: true}
		}
		switch x := res.(type) {
		case bool:
			d.allow = x
		case string:
			if target, ok := p.checkedLocation(x); ok {
				d.location = target
			} else {
				p.log.WarnContext(ctx, "authorized returned a redirect to another origin; refusing the request", "code", "UNSAFE_REDIRECT", "route", rt.Name, "url", x)
			}
		case map[string]any:
			d.allow, extra = true, x
		}
	default:
		d.allow = sess != nil
	}
	if d.allow && sess != nil {
		h, err := p.identity(sess, rt, extra)
		if err != nil {
			p.log.ErrorContext(ctx, "build identity headers", "code", "ASSERTION_ERROR", "route", rt.Name, "error", err.Error())
			return decision{failed: true}
		}
		d.headers = h
	} else if d.allow && extra != nil {
		d.headers = callbackHeaders(p, r, extra)
	}
	return d
}

func (p *Proxy) logCallbackError(r *http.Request, rt *route, err error) {
	p.log.ErrorContext(r.Context(), "authorized callback failed; refusing the request", "code", "AUTHORIZED_CALLBACK_ERROR", "route", rt.Name, "error", err.Error())
}

// checkedLocation accepts a "/"-relative path or an absolute URL on an allowed origin.
func (p *Proxy) checkedLocation(s string) (string, bool) {
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") && !strings.HasPrefix(s, "/\\") {
		return s, true
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", false
	}
	return s, p.origins[strings.ToLower(u.Scheme+"://"+u.Host)]
}

// identity builds the headers the app receives: the configured token claims, the
// assertion JWT, and what the authorized callback returned. Without claims from the
// callback, the first two are the same for every request of a session to a route: they
// are built once per session and route and shared, read-only, until the assertion is due
// for renewal.
func (p *Proxy) identity(sess Session, rt *route, extra map[string]any) (http.Header, error) {
	claims, _ := extra["claims"].(map[string]any)
	var base http.Header
	if len(claims) == 0 {
		v, err := sess.Remember(rt.identityKey, p.now(), func() (any, time.Time, error) {
			return p.baseIdentity(sess, rt, nil)
		})
		if err != nil {
			return nil, err
		}
		base = v.(http.Header)
	} else {
		h, _, err := p.baseIdentity(sess, rt, claims)
		if err != nil {
			return nil, err
		}
		base = h
	}
	added := callbackHeaders(p, nil, extra)
	if len(added) == 0 {
		return base, nil
	}
	h := make(http.Header, len(base)+len(added))
	for name, values := range base {
		h[name] = values
	}
	for name, values := range added {
		h[name] = values
	}
	return h, nil
}

// baseIdentity is the claims headers and the assertion of a session on a route, and until
// when they may be reused.
func (p *Proxy) baseIdentity(sess Session, rt *route, claims map[string]any) (http.Header, time.Time, error) {
	tok := sess.Token()
	h := make(http.Header, len(rt.headers)+1)
	for _, ih := range rt.headers {
		if v, ok := claimString(tok[ih.claim]); ok {
			h[ih.name] = []string{v}
		}
	}
	until := sess.Expires()
	if until.IsZero() {
		until = p.now().Add(time.Minute)
	}
	if rt.assertion && p.o.Assertion != nil {
		jwt, renew, err := p.assertion(sess, rt, claims)
		if err != nil {
			return nil, time.Time{}, err
		}
		h[http.CanonicalHeaderKey(p.o.Identity.Assertion.Header)] = []string{jwt}
		until = renew
	}
	return h, until, nil
}

// assertion returns the route's signed assertion for this session and when to sign a new
// one: once it has used up three quarters of its lifetime. With claims from the callback
// it is memoised per distinct set of claims.
func (p *Proxy) assertion(sess Session, rt *route, claims map[string]any) (string, time.Time, error) {
	sign := func() (string, time.Time, error) {
		tok := sess.Token()
		c := make(map[string]any, len(p.o.Identity.Assertion.Claims)+len(claims)+3)
		for _, name := range p.o.Identity.Assertion.Claims {
			if v, ok := tok[name]; ok {
				c[name] = v
			}
		}
		for k, v := range claims {
			c[k] = v
		}
		c["aud"] = rt.audience()
		if sub, ok := tok["sub"]; ok {
			c["sub"] = sub
		}
		if email, ok := tok["email"]; ok {
			c["email"] = email
		}
		signed, exp, err := p.o.Assertion.Sign(c, sess.Expires())
		if err != nil {
			return "", time.Time{}, err
		}
		return signed, exp.Add(-p.o.Assertion.TTL() / 4), nil
	}
	if len(claims) == 0 {
		// The caller memoises the whole header set.
		return sign()
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode callback claims: %w", err)
	}
	type signed struct {
		jwt   string
		renew time.Time
	}
	v, err := sess.Remember(rt.assertionKey+"\x00"+string(b), p.now(), func() (any, time.Time, error) {
		jwt, renew, err := sign()
		return signed{jwt, renew}, renew, err
	})
	if err != nil {
		return "", time.Time{}, err
	}
	a := v.(signed)
	return a.jwt, a.renew, nil
}

// audience is the assertion's aud: the route name, or "callgate" for forward-auth requests
// that match no route.
func (rt *route) audience() string {
	if rt.Name == "" {
		return "callgate"
	}
	return rt.Name
}

// callbackHeaders reads {headers: {...}} from the authorized callback's object. Names that
// are not tokens, values with control characters, and headers that steer the request
// itself are dropped.
func callbackHeaders(p *Proxy, r *http.Request, extra map[string]any) http.Header {
	m, _ := extra["headers"].(map[string]any)
	if len(m) == 0 {
		return nil
	}
	h := make(http.Header, len(m))
	for name, raw := range m {
		v, ok := claimString(raw)
		canon := http.CanonicalHeaderKey(name)
		if !ok || !validHeaderName(name) || reservedHeader[canon] {
			p.log.Warn("authorized returned a header that cannot be sent; dropped", "code", "INVALID_HEADER", "header", name)
			continue
		}
		h[canon] = []string{v}
	}
	return h
}

var reservedHeader = map[string]bool{
	"Host": true, "Cookie": true, "Connection": true, "Content-Length": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Keep-Alive": true, "Proxy-Connection": true,
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// claimString turns a claim into a header value: strings as they are, numbers and booleans
// in JSON, anything else as JSON. Values with control characters are refused: a header
// must never be split by a claim.
func claimString(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
			return "", false
		}
	}
	return s, true
}

// refuse answers a request that may not pass. nginx mode never redirects: auth_request
// accepts only 2xx, 401 and 403, and nginx's error_page turns 401 into a redirect to the
// URL in NginxLocationHeader, which the 401 always carries: the callback's redirect or the
// sign-in page with callbackUrl already encoded (nginx has no URL-encoding of its own).
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, v *view, d decision, nginx bool) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case d.unavailable:
		// nginx's auth_request turns a 503 into a 500 of its own; Traefik and Caddy pass
		// it on. Either way the request is neither let through nor sent to sign in.
		w.Header().Set("Retry-After", "5")
		writePage(w, r, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable",
			"The gateway cannot reach its session store. Try again in a moment.")
	case d.failed:
		writePage(w, r, http.StatusInternalServerError, "Something went wrong", "The gateway could not decide this request. Try again in a moment.")
	case d.location != "":
		if nginx {
			w.Header().Set(NginxLocationHeader, d.location)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, d.location, http.StatusFound)
	case d.signedIn:
		writePage(w, r, http.StatusForbidden, "Access denied", "You are signed in, but not allowed to see this page.")
	default:
		signIn := p.o.SignInURL + "?callbackUrl=" + url.QueryEscape(v.requestURL())
		if nginx {
			w.Header().Set(NginxLocationHeader, signIn)
		}
		if !nginx && wantsHTML(r) {
			http.Redirect(w, r, signIn, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", `Bearer realm="callgate"`)
		w.WriteHeader(http.StatusUnauthorized)
		b, _ := json.Marshal(map[string]string{"error": "unauthorized", "signInUrl": signIn})
		_, _ = w.Write(b)
	}
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// writePage writes a small HTML page for browsers, JSON for everyone else.
func writePage(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	if wantsHTML(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%d %s</title>`+
			`<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}</style></head>`+
			`<body><h1>%s</h1><p>%s</p><p><small>HTTP %d · callgate</small></p></body></html>`,
			status, html.EscapeString(title), html.EscapeString(title), html.EscapeString(detail), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_")), "message": title})
	_, _ = w.Write(b)
}

// stripper removes identity headers a client sent.
type stripper struct {
	exact    map[string]bool
	prefixes []string // canonical form
}

func newStripper(id config.IdentityConfig, routes []config.Route) stripper {
	s := stripper{exact: map[string]bool{}}
	for name := range id.Headers {
		s.exact[http.CanonicalHeaderKey(name)] = true
	}
	for _, rt := range routes {
		for name := range rt.Headers {
			s.exact[http.CanonicalHeaderKey(name)] = true
		}
	}
	s.exact[http.CanonicalHeaderKey(id.Assertion.Header)] = true
	if id.Assertion.Header == "" {
		s.exact[config.DefaultAssertionHeader] = true
	}
	for _, pre := range id.StripPrefixes {
		s.prefixes = append(s.prefixes, strings.ToLower(pre))
	}
	return s
}

// clean deletes every header that names an identity header, also when spelt with
// underscores (X_Callgate_User), which some app servers read as dashes. It runs on every
// proxied request, so the common case (a canonical name without underscores) allocates
// nothing.
func (s stripper) clean(h http.Header) {
	for name := range h {
		var norm string
		if strings.IndexByte(name, '_') >= 0 {
			norm = http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))
		} else {
			norm = http.CanonicalHeaderKey(name) // no allocation when already canonical
		}
		if s.exact[norm] {
			delete(h, name)
			continue
		}
		for _, pre := range s.prefixes {
			if len(norm) >= len(pre) && strings.EqualFold(norm[:len(pre)], pre) {
				delete(h, name)
				break
			}
		}
	}
}

// stripCookies removes the gateway's cookies from the Cookie header. It runs on every
// proxied request: a header without them is left as it is, and one with them is rebuilt
// in a single allocation.
func stripCookies(h http.Header, prefixes []string) {
	lines := h["Cookie"]
	if len(lines) == 0 || len(prefixes) == 0 || !mentionsAny(lines, prefixes) {
		return
	}
	var b strings.Builder
	for _, line := range lines {
		for rest := line; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ";")
			part = strings.TrimSpace(part)
			if part == "" || hasAnyPrefix(part, prefixes) {
				continue
			}
			if b.Len() == 0 {
				b.Grow(len(line))
			} else {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}

// mentionsAny reports whether any line contains any of the prefixes anywhere: when none
// does, no cookie name can start with one.
func mentionsAny(lines, prefixes []string) bool {
	for _, line := range lines {
		for _, pre := range prefixes {
			if strings.Contains(line, pre) {
				return true
			}
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}
