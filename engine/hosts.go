package engine

import (
	"net/url"

	"github.com/callgate/callgate/engine/cookie"
)

// cookieSet is NextAuth's cookie set with the configured cookie domain applied to the
// cookies a route host must see: the session token (so every subdomain is signed in) and
// the callback URL. The CSRF cookie stays host-only: with https it is a __Host- cookie,
// which may carry no Domain, and only the gateway's own forms need it.
func (e *Engine) cookieSet(secure bool) cookie.Set {
	set := cookie.Defaults(secure)
	if e.cookieDomain != "" {
		set.SessionToken.Options.Domain = e.cookieDomain
		set.CallbackURL.Options.Domain = e.cookieDomain
	}
	return set
}

// allowedRedirect reports whether u (absolute) may be a redirect target: the gateway's own
// origin, or the origin of a configured route host. Everything else is an open redirect.
func (e *Engine) allowedRedirect(u *url.URL) bool {
	return e.sameOrigin(u) || e.redirectOrigins[originOf(u)]
}
