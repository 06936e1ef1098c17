package engine

import (
	"log/slog"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/urlpolicy"
)

// callbackURLs owns where a request may send the browser: NextAuth's callback URL (from the
// body, the query or the callback-url cookie, through the redirect callback), the core's
// final same-origin check on every URL a script chose, and the error page's URL. Its data
// is the origin, the auth base and the origins a redirect may reach (urlpolicy.Redirects:
// the gateway's own and the configured routes').
type callbackURLs struct {
	origin  string // e.g. "http://localhost:3000"
	base    string // origin + BasePath
	allowed *urlpolicy.Redirects
	log     *slog.Logger
}

// isValidCallbackURL is NextAuth's assertConfig check (an http(s) URL or a "/"-relative
// path), with text refused that a browser would read as another URL (urlpolicy).
func (u *callbackURLs) isValidCallbackURL(s string) bool {
	return urlpolicy.ValidCallbackURL(s)
}

// defaultRedirect is NextAuth's default redirect callback: "/"-relative URLs are joined to
// the origin, same-origin absolute URLs are kept, anything else becomes the origin.
func (u *callbackURLs) defaultRedirect(target string) string {
	if urlpolicy.Relative(target) {
		return u.origin + target
	}
	if u.allowed.Allowed(target) {
		return target
	}
	return u.origin
}

// checkedRedirect is the core's final word on any URL a script chose: relative paths are
// made absolute (the v4 client needs an absolute URL), and a URL urlpolicy does not allow
// (another origin, or text a browser would read as one) is replaced by the origin and
// logged, so no script mistake becomes an open redirect.
func (u *callbackURLs) checkedRedirect(a *authRequest, source, target string) string {
	if urlpolicy.Relative(target) {
		return u.origin + target
	}
	if u.allowed.Allowed(target) {
		return target
	}
	u.log.WarnContext(a.r.Context(), "redirect to another origin refused; using the origin instead",
		"code", "UNSAFE_REDIRECT", "callback", source, "url", target)
	return u.origin
}

// resolveRedirect runs the redirect callback (or NextAuth's default) for url.
func (u *callbackURLs) resolveRedirect(a *authRequest, target string) (string, error) {
	if !a.gen.Defines(script.CallbackRedirect) {
		return u.defaultRedirect(target), nil
	}
	s, err := a.gen.Redirect(a.r.Context(), script.RedirectArgs{URL: target, BaseURL: u.origin})
	if err != nil {
		return "", err
	}
	chosen := u.checkedRedirect(a, script.CallbackRedirect.String(), s)
	inspectRedirect(a, target, s, chosen, chosen != s && !(urlpolicy.Relative(s) && chosen == u.origin+s))
	return chosen, nil
}

// initCallbackURL is NextAuth's createCallbackUrl: body callbackUrl, else query callbackUrl,
// else the callback-url cookie goes through the redirect callback; the cookie is (re)set
// whenever the result differs from what the browser sent.
//
// Unlike NextAuth, a stored value can never fail the request: a cookie that is not a valid
// callback URL is treated as absent (assertConfig no longer 500s on it), a redirect callback
// that throws on the cookie's value is logged and the origin used, and in both cases the
// cookie is replaced, so the browser heals. Nor is a value stored that the next request
// would refuse.
func (u *callbackURLs) initCallbackURL(a *authRequest) error {
	cookieValue, hasCookie := a.jar.Get(a.cookies.CallbackURL.Name)
	usableCookie := hasCookie && u.isValidCallbackURL(cookieValue)
	candidate, ok := stringField(a.body, "callbackUrl")
	if !ok || candidate == "" {
		candidate = a.query.Get("callbackUrl")
	}
	var err error
	switch {
	case candidate != "":
		a.callbackURL, err = u.resolveRedirect(a, candidate)
	case usableCookie:
		if a.callbackURL, err = u.resolveRedirect(a, cookieValue); err != nil {
			a.logScriptError("CALLBACK_URL_COOKIE_IGNORED", err)
			a.callbackURL, err = u.origin, nil
		}
	default:
		a.callbackURL = u.origin
	}
	if err != nil {
		return err
	}
	if a.callbackURL != cookieValue && u.isValidCallbackURL(a.callbackURL) {
		a.setCookies = append(a.setCookies, cookie.Serialize(a.cookies.CallbackURL.Name, a.callbackURL, a.cookies.CallbackURL.Options))
	}
	return nil
}

// errorURL is BASE/error?<query>.
func (u *callbackURLs) errorURL(query string) string { return u.base + "/error?" + query }
