package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/bearer"
	"github.com/callgate/callgate/engine/script"
)

// authInfo is request.auth in the authorized callback: how the request authenticated.
type authInfo struct {
	method   string // "cookie" or "bearer"
	kind     string // "session", "jwt" or "introspection"
	provider string // the bearer provider's id; "" for the gateway's own session
}

var cookieAuth = &authInfo{method: "cookie", kind: "session"}
var sessionBearerAuth = &authInfo{method: "bearer", kind: "session"}

// object is request.auth as the script sees it.
func (a *authInfo) object() any {
	if a == nil {
		return nil
	}
	o := script.Fields{{Key: "method", Value: a.method}, {Key: "type", Value: a.kind}}
	if a.provider != "" {
		o = append(o, script.Field{Key: "provider", Value: a.provider})
	}
	return o
}

// bearerAccept is one entry of a route's bearer list: the gateway's session (provider nil)
// or an identity provider.
type bearerAccept struct {
	provider *bearer.Provider
}

// bearerList resolves a route's bearer entries against the configured providers.
func bearerList(rc config.Route, o Options) ([]bearerAccept, error) {
	var list []bearerAccept
	for _, name := range rc.Bearer {
		if name == config.BearerSession {
			if o.BearerSession == nil {
				return nil, fmt.Errorf("proxy: route %s accepts the session token as a bearer, but no BearerSession reader is set", rc.Name)
			}
			list = append(list, bearerAccept{})
			continue
		}
		var found *bearer.Provider
		for _, bp := range o.BearerProviders {
			if bp.ID() == name {
				found = bp
			}
		}
		if found == nil {
			return nil, fmt.Errorf("proxy: route %s accepts bearer tokens of %q, which is not a configured provider", rc.Name, name)
		}
		list = append(list, bearerAccept{provider: found})
	}
	return list, nil
}

// tokenSession is a provider's access token as the Session the rest of the proxy reads:
// its claims are the token, and it has no NextAuth session (auth is null).
type tokenSession struct{ v *bearer.Verified }

func (s tokenSession) Token() map[string]any { return s.v.Claims }
func (s tokenSession) Expires() time.Time    { return s.v.Expires }
func (s tokenSession) Auth(context.Context, *script.Generation) (map[string]any, error) {
	return nil, nil
}
func (s tokenSession) Remember(key string, now time.Time, derive func() (any, time.Time, error)) (any, error) {
	return s.v.Remember(key, now, derive)
}

// credentials says who the request is: a bearer token the route accepts when the request
// sends one, else the session cookie, with the Set-Cookie values that renew or delete it. With
// a bearer token the cookie is not read: the client chose its credential. A refusal comes
// back as a decision.
func (p *Proxy) credentials(r *http.Request, rt *route) (Session, *authInfo, []string, *decision) {
	ctx := r.Context()
	if len(rt.bearer) > 0 {
		tok, present, err := bearer.FromHeader(r.Header)
		if err != nil {
			return nil, nil, nil, p.badBearer(r, rt, err)
		}
		if present {
			sess, auth, refusal := p.bearerCredentials(r, rt, tok)
			return sess, auth, nil, refusal
		}
	}
	sess, setCookie, err := p.o.Sessions(r)
	if errors.Is(err, ErrSessionsUnavailable) {
		p.log.WarnContext(ctx, "session store unavailable; refusing the request with 503", "code", "STORE_UNAVAILABLE", "route", rt.Name, "error", err.Error())
		return nil, nil, nil, &decision{failed: true, unavailable: true}
	}
	if err != nil {
		p.log.ErrorContext(ctx, "read session", "code", "SESSION_ERROR", "route", rt.Name, "error", err.Error())
		return nil, nil, nil, &decision{failed: true}
	}
	if sess == nil {
		return nil, nil, setCookie, nil
	}
	return sess, cookieAuth, setCookie, nil
}

// bearerCredentials tries tok against the route's bearer list, in order.
func (p *Proxy) bearerCredentials(r *http.Request, rt *route, tok string) (Session, *authInfo, *decision) {
	ctx := r.Context()
	var refused, unavailable error
	for _, b := range rt.bearer {
		if b.provider == nil {
			sess, err := p.o.BearerSession(ctx, tok)
			switch {
			case errors.Is(err, ErrSessionsUnavailable):
				unavailable = err
			case err != nil:
				p.log.ErrorContext(ctx, "read bearer session", "code", "SESSION_ERROR", "route", rt.Name, "error", err.Error())
				return nil, nil, &decision{failed: true}
			case sess != nil:
				return sess, sessionBearerAuth, nil
			default:
				refused = errors.New("not a session token of this gateway")
			}
			continue
		}
		if looksLikeSessionToken(tok) {
			// The gateway's own (encrypted) session token never goes to a provider's
			// introspection endpoint, on a route that does not take it.
			refused = errors.New("a session token of the gateway, on a route that does not accept it as a bearer")
			continue
		}
		v, err := b.provider.Verify(ctx, tok)
		switch {
		case err == nil:
			return tokenSession{v}, &authInfo{method: "bearer", kind: v.Kind, provider: v.Provider}, nil
		case errors.Is(err, bearer.ErrUnavailable):
			p.log.WarnContext(ctx, "bearer token provider unavailable", "code", "BEARER_PROVIDER_UNAVAILABLE", "route", rt.Name, "provider", b.provider.ID(), "error", err.Error())
			unavailable = err
		default:
			refused = err
		}
	}
	if unavailable != nil {
		// A provider that could not be asked might have accepted the token: neither let
		// the request through nor tell the client its token is bad.
		return nil, nil, &decision{failed: true, unavailable: true}
	}
	return nil, nil, p.badBearer(r, rt, refused)
}

// badBearer is the refusal of a bearer token: 401 with a challenge, never a redirect.
func (p *Proxy) badBearer(r *http.Request, rt *route, err error) *decision {
	reason := "token not accepted"
	if err != nil {
		reason = bearer.Reason(err)
		p.log.InfoContext(r.Context(), "bearer token refused", "code", "BEARER_TOKEN_INVALID", "route", rt.Name, "reason", err.Error())
	}
	return &decision{bearerRefused: reason}
}

// bearerChallenge is the WWW-Authenticate of a refused bearer token (RFC 6750 §3).
func bearerChallenge(reason string) string {
	// The reason is the gateway's own text; quotes and backslashes would end the
	// quoted-string early.
	reason = strings.NewReplacer(`"`, "'", `\`, "/").Replace(reason)
	return `Bearer realm="callgate", error="invalid_token", error_description="` + reason + `"`
}

// looksLikeSessionToken is the shape of the gateway's encrypted session token: a compact
// JWE, five parts. A provider's access token is a JWS (three parts) or opaque.
func looksLikeSessionToken(tok string) bool { return strings.Count(tok, ".") == 4 }
