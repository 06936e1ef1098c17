package engine

import "github.com/callgate/callgate/engine/cookie"

// cookieSets holds NextAuth's cookie set, plain and secure, with the configured cookie
// domain applied to the cookies a route host must see: the session token (so every
// subdomain is signed in) and the callback URL. The CSRF cookie stays host-only: with https
// it is a __Host- cookie, which may carry no Domain, and only the gateway's own forms need it.
//
// Both variants are built once (New): every proxied request asks for one. The options in
// them are shared: never write through them.
type cookieSets [2]cookie.Set

// forScheme is the set for secure (https) or plain cookies.
func (c *cookieSets) forScheme(secure bool) cookie.Set {
	if secure {
		return c[1]
	}
	return c[0]
}

func buildCookieSets(domain string) cookieSets {
	var sets cookieSets
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
