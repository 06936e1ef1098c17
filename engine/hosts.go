package engine

import (
	"net/url"

	"github.com/callgate/callgate/engine/cookie"
)

// cookieSet is NextAuth's cookie set with the configured cookie domain applied to the
// cookies a route host must see: the session token (so every subdomain is signed in) and
// the callback URL. The CSRF cookie stays host-only: with https it is a __Host- cookie,
// which may carry no Domain, and only the gateway's own forms need it.
//
// Both variants are built once (New): every proxied request asks for one.
func (e *Engine) cookieSet(secure bool) cookie.Set {
	if secure {
		return e.cookieSets[1]
	}
	return e.cookieSets[0]
}

func buildCookieSets(domain string) [2]cookie.Set {
	var sets [2]cookie.Set
	for i, secure := range []bool{false, true} {
		set := cookie.Defaults(secure)
		if domain != "" {
			set.SessionToken.Options.Domain = domain
			set.CallbackURL.Options.Domain = domain
		}
		sets[i] = set
	}
	return sets
}

// allowedRedirect reports whether u (absolute) may be a redirect target: the gateway's own
// origin, or the origin of a configured route host. Everything else is an open redirect.
func (e *Engine) allowedRedirect(u *url.URL) bool {
	return e.sameOrigin(u) || e.redirectOrigins[originOf(u)]
}
