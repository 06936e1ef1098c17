package proxy

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/assertion"
	"github.com/callgate/callgate/engine/script"
)

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
	// auth is how the request authenticated; nil when it did not.
	auth *authInfo
	// bearerRefused is why a bearer token was refused: 401 with a challenge.
	bearerRefused string
	// setCookie renews or deletes the session cookie: Set-Cookie values for the answer.
	setCookie []string
	// stepUp, when set, is the factor kinds the authorized callback asked the user to prove
	// again ({stepUp: {factors}}); empty for any. The request does not pass.
	stepUp []string
	// stepUpAsked tells an empty stepUp (any factor) from none.
	stepUpAsked bool
}

// decide runs the session read and the authorized callback for a request to rt.
func (p *Proxy) decide(r *http.Request, rt *route, v *view) decision {
	ctx := r.Context()
	sess, auth, setCookie, refusal := p.credentials(r, rt)
	if refusal != nil {
		return *refusal
	}
	v.auth = auth
	d := decision{signedIn: sess != nil, auth: auth, setCookie: setCookie}
	var extra map[string]any // the callback's upstream headers and claims
	gen := p.o.Generation()
	switch {
	case rt.Public:
		d.allow = true
	case gen.Defines(script.CallbackAuthorized):
		// script.Shared: the token and auth are the cached session's, shared by concurrent
		// requests; the callback converts only what it reads and never writes them.
		arg := &authorizedArg{request: *v}
		if sess != nil {
			session, err := sess.Auth(ctx, gen)
			if err != nil {
				p.logCallbackError(r, rt, err)
				return decision{failed: true}
			}
			arg.token = script.Shared(sess.Token())
			if session != nil {
				arg.auth = script.Shared(session)
			}
		}
		res, err := gen.Authorized(ctx, arg)
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
			if up, asked, err := stepUpKinds(x); asked {
				if err != nil {
					p.logCallbackError(r, rt, err)
					return decision{failed: true}
				}
				d.stepUp, d.stepUpAsked = up, true
				break
			}
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

// checkedLocation accepts a redirect the authorized callback chose when urlpolicy allows
// it: a "/"-relative path or an absolute URL on the gateway's or a route host's origin,
// with no control character, whitespace or backslash a browser would read otherwise.
func (p *Proxy) checkedLocation(s string) (string, bool) {
	return s, p.redirects.Allowed(s)
}

// identity builds the headers the app receives: the configured token claims, the
// assertion JWT, and what the authorized callback returned. Without claims from the
// callback, the first two are the same for every request of a session to a route: they
// are built once per session and route and shared, read-only, until the assertion is due
// for renewal.
func (p *Proxy) identity(sess Session, rt *route, extra map[string]any) (http.Header, error) {
	claims, err := callbackClaims(extra)
	if err != nil {
		return nil, err
	}
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
func (p *Proxy) baseIdentity(sess Session, rt *route, claims script.JSON) (http.Header, time.Time, error) {
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
// it is memoised per distinct set of claims. Its claims come in a fixed order: the
// configured token claims, the callback's in the order it wrote them, then aud, sub and
// email, which the callback cannot change.
func (p *Proxy) assertion(sess Session, rt *route, claims script.JSON) (string, time.Time, error) {
	sign := func() (string, time.Time, error) {
		tok := sess.Token()
		c := assertion.NewClaims(len(p.o.Identity.Assertion.Claims) + 8)
		for _, name := range p.o.Identity.Assertion.Claims {
			if v, ok := tok[name]; ok {
				if err := c.Set(name, v); err != nil {
					return "", time.Time{}, err
				}
			}
		}
		if len(claims) > 0 {
			if err := c.SetObject(claims); err != nil {
				return "", time.Time{}, fmt.Errorf("authorized claims: %w", err)
			}
		}
		if err := c.Set("aud", rt.audience()); err != nil {
			return "", time.Time{}, err
		}
		for _, name := range [...]string{"sub", "email"} {
			if v, ok := tok[name]; ok {
				if err := c.Set(name, v); err != nil {
					return "", time.Time{}, err
				}
			}
		}
		if ts, ok := sess.(tokenSession); ok {
			// A provider's access token: its sub is the provider's, not a gateway user's,
			// and the app must be able to tell the two apart.
			if err := c.Set("idp", ts.v.Provider); err != nil {
				return "", time.Time{}, err
			}
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
	type signed struct {
		jwt   string
		renew time.Time
	}
	v, err := sess.Remember(rt.assertionKey+"\x00"+string(claims), p.now(), func() (any, time.Time, error) {
		jwt, renew, err := sign()
		return signed{jwt, renew}, renew, err
	})
	if err != nil {
		return "", time.Time{}, err
	}
	a := v.(signed)
	return a.jwt, a.renew, nil
}

// callbackClaims is the claims object an authorized callback returned, as JSON: in the
// script's order when the script host kept it, else (an object with a toJSON, say) as
// encoding/json writes the map.
func callbackClaims(extra map[string]any) (script.JSON, error) {
	switch c := extra["claims"].(type) {
	case script.JSON:
		if len(c) <= len("{}") {
			return nil, nil
		}
		return c, nil
	case map[string]any:
		if len(c) == 0 {
			return nil, nil
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode authorized claims: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

// audience is the assertion's aud: the route name, or "callgate" for forward-auth requests
// that match no route.
func (rt *route) audience() string {
	if rt.Name == "" {
		return "callgate"
	}
	return rt.Name
}

// refuse answers a request that may not pass. nginx mode never redirects: auth_request
// accepts only 2xx, 401 and 403, and nginx's error_page turns 401 into a redirect to the
// URL in NginxLocationHeader, which the 401 always carries: the callback's redirect or the
// sign-in page with callbackUrl already encoded (nginx has no URL-encoding of its own).
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, v *view, d decision, nginx bool) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case d.bearerRefused != "":
		// An API client: a challenge, never a sign-in page. (nginx passes the 401's
		// WWW-Authenticate on; its error_page for browsers belongs on other locations.)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", bearerChallenge(d.bearerRefused))
		w.WriteHeader(http.StatusUnauthorized)
		b, _ := json.Marshal(map[string]string{"error": "invalid_token", "message": d.bearerRefused})
		_, _ = w.Write(b)
	case d.unavailable:
		// nginx's auth_request turns a 503 into a 500 of its own; Traefik and Caddy pass
		// it on. Either way the request is neither let through nor sent to sign in.
		w.Header().Set("Retry-After", "5")
		writePage(w, r, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable",
			"The gateway cannot reach its session store. Try again in a moment.")
	case d.failed:
		writePage(w, r, http.StatusInternalServerError, "Something went wrong", "The gateway could not decide this request. Try again in a moment.")
	case d.stepUpAsked:
		p.refuseStepUp(w, r, v, d, nginx)
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
		sendTo(w, r, nginx, signIn, `Bearer realm="callgate"`, map[string]string{"error": "unauthorized", "signInUrl": signIn})
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

// stepUpKinds reads authorized's {stepUp: {factors?: [kinds]}}: the kinds the user must
// prove again (none listed: any), and whether it asked at all. A malformed answer is an
// error: the request must not pass on a policy nobody can read.
func stepUpKinds(res map[string]any) (kinds []string, asked bool, err error) {
	v, ok := res["stepUp"]
	if !ok || v == nil || v == false {
		return nil, false, nil
	}
	if v == true {
		return nil, true, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, true, fmt.Errorf("authorized: stepUp must be true or {factors}, got %T", v)
	}
	list, ok := m["factors"]
	if !ok || list == nil {
		return nil, true, nil
	}
	items, ok := list.([]any)
	if !ok {
		return nil, true, fmt.Errorf("authorized: stepUp.factors must be an array, got %T", list)
	}
	for _, it := range items {
		s, _ := it.(string)
		if s != "passkey" && s != "totp" {
			return nil, true, fmt.Errorf(`authorized: stepUp.factors lists %v; the kinds are "passkey" and "totp"`, it)
		}
		kinds = append(kinds, s)
	}
	return kinds, true, nil
}

// refuseStepUp answers a request whose session must prove a factor again: a browser goes
// to the challenge page and comes back to the URL it asked for; an API client gets RFC
// 9470's 401 insufficient_user_authentication. A request with no session signs in first.
func (p *Proxy) refuseStepUp(w http.ResponseWriter, r *http.Request, v *view, d decision, nginx bool) {
	if !d.signedIn {
		d.stepUpAsked = false
		p.refuse(w, r, v, d, nginx)
		return
	}
	q := url.Values{"callbackUrl": {v.requestURL()}}
	if len(d.stepUp) > 0 {
		q.Set("factors", strings.Join(d.stepUp, ","))
	}
	challenge := p.o.ChallengeURL + "?" + q.Encode()
	sendTo(w, r, nginx, challenge,
		`Bearer realm="callgate", error="insufficient_user_authentication", error_description="a more recent or a stronger authentication is required"`,
		map[string]string{"error": "insufficient_user_authentication", "challengeUrl": challenge})
}

// sendTo sends a refused request to target, a gateway page: a browser by a redirect; nginx
// by the 401 its error_page turns into one (target in NginxLocationHeader); an API client
// by a 401 with the challenge and body.
func sendTo(w http.ResponseWriter, r *http.Request, nginx bool, target, challenge string, body map[string]string) {
	if nginx {
		w.Header().Set(NginxLocationHeader, target)
	}
	if !nginx && wantsHTML(r) {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", challenge)
	w.WriteHeader(http.StatusUnauthorized)
	b, _ := json.Marshal(body)
	_, _ = w.Write(b)
}
