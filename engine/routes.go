package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/callgate/callgate/engine/inspect"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/reqbody"
	"github.com/callgate/callgate/engine/script"
)

// serveAuth is the entry of every /api/auth/* request. It mirrors NextAuth v4's core:
// route the action, assert the configuration, run init (CSRF and callback URL), then the
// route.
func (e *Engine) serveAuth(w http.ResponseWriter, r *http.Request) {
	w, r, flow := e.inspector.StartRequest(w, r, inspect.KindAuth, r.URL.Path)
	if flow != nil {
		defer inspect.EndRequest(w, flow)
	}
	defer func() {
		if v := recover(); v != nil {
			e.log.ErrorContext(r.Context(), "panic while serving an auth route", "code", "INTERNAL_ERROR", "path", r.URL.Path, "panic", fmt.Sprint(v))
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		}
	}()
	// First, before anything can return early: a body nobody reads is still drained by
	// net/http after the handler, and that must not wait on a stalled sender either.
	reqbody.LimitTime(w, r, e.bodyTimeout) // wall clock: tests pin the engine's Now
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, BasePath), "/")
	segments := strings.Split(rest, "/")
	action := segments[0]
	providerID := ""
	if len(segments) > 1 {
		providerID = segments[1]
	}
	if (r.Method != http.MethodGet && r.Method != http.MethodPost) || !validActions[action] {
		unsupported(w, r.Method)
		return
	}
	body, err := parseBody(r, e.maxBodyBytes)
	if err != nil {
		switch err = bodyError(err); {
		case errors.Is(err, errBodyTooLarge):
			http.Error(w, "Request body too large", http.StatusRequestEntityTooLarge)
		case errors.Is(err, errBodyTimeout):
			// net/http closes the connection after this answer: its read side has timed out.
			http.Error(w, "Request Timeout: the request body was not received in time", http.StatusRequestTimeout)
		default:
			http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	gen, release := e.gen.pin()
	defer release()
	cfg := gen.Config()
	secure := secureCookies(&cfg, e.origin)
	a := &authRequest{
		r:          r,
		action:     action,
		providerID: providerID,
		query:      r.URL.Query(),
		body:       body,
		jar:        cookie.Parse(r.Header),
		gen:        gen,
		cfg:        cfg,
		secure:     secure,
		cookies:    e.cookieSets.forScheme(secure),
		log:        e.log,
	}
	if res, failed := e.assertConfig(a); failed {
		a.write(w, res)
		return
	}
	if err := e.csrf.init(a); err != nil {
		a.write(w, e.pages.serverError(a, err))
		return
	}
	if err := e.urls.initCallbackURL(a); err != nil {
		a.write(w, e.pages.serverError(a, err))
		return
	}
	if r.Method == http.MethodPost && !a.csrfVerified {
		// NextAuth's init queues its cookies (a freshly minted CSRF token, and a callback URL
		// taken from the body) before any route checks CSRF, so a cross-site form posting to
		// /signout without a token could still store a callback-url cookie of its choosing
		// in the victim's browser. A POST that proved nothing stores nothing: the routes that
		// need CSRF refuse it anyway, and those that do not (an OAuth form_post callback,
		// checked by its state cookie) set their own cookies, which are not init cookies.
		a.setCookies = nil
	}
	a.write(w, e.route(a))
}

func unsupported(w http.ResponseWriter, method string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "Error: This action with HTTP %s is not supported by NextAuth.js", method)
}

func (e *Engine) route(a *authRequest) response {
	get := a.r.Method == http.MethodGet
	switch a.action {
	case "providers":
		if get {
			return e.providers(a)
		}
	case "csrf":
		if get {
			res := jsonResponse(200, map[string]string{"csrfToken": a.csrfToken})
			res.noCache = true
			return res
		}
	case "session":
		if get {
			res := e.session(a, false)
			res.noCache = true
			return res
		}
		if !a.csrfVerified {
			return jsonResponse(http.StatusBadRequest, map[string]any{})
		}
		return e.session(a, true)
	case "signin":
		if get {
			return e.signinPage(a)
		}
		return e.signinPost(a)
	case "signout":
		if get {
			return e.signoutPage(a)
		}
		return e.signoutPost(a)
	case "callback":
		return e.callback(a)
	case "error":
		if get {
			return e.errorRoute(a)
		}
	case "verify-request":
		if get {
			if a.cfg.Pages.VerifyRequest != "" {
				return redirectTo(302, a.cfg.Pages.VerifyRequest)
			}
			return htmlResponse(200, e.pages.renderVerifyRequest(a))
		}
	case "challenge", "webauthn", "totp", "factors", "assets":
		return e.factorRoute(a)
	case "_log":
		if !get {
			res := jsonResponse(200, map[string]any{})
			res.withoutInitCookies = true
			return res
		}
	}
	return textResponse(http.StatusBadRequest, fmt.Sprintf("Error: This action with HTTP %s is not supported by NextAuth.js", a.r.Method))
}

// assertConfig is NextAuth's per-request configuration assertion: a callbackUrl in the
// query must be an http(s) URL or a "/"-relative path.
//
// NextAuth checks the callback-url cookie here too, and answers 500 to every request of a
// browser holding a bad one, until the user deletes it by hand. A cookie is not this
// request's input: anyone who could set it once (a sibling subdomain, an old bug) could
// break that browser for good. So a bad cookie is treated as absent (initCallbackURL),
// and the next response replaces it.
func (e *Engine) assertConfig(a *authRequest) (response, bool) {
	bad := ""
	if q := a.query.Get("callbackUrl"); q != "" && !e.urls.isValidCallbackURL(q) {
		bad = q
	}
	if bad == "" {
		return response{}, false
	}
	e.log.ErrorContext(a.r.Context(), "invalid callback URL", "code", "INVALID_CALLBACK_URL_ERROR", "url", bad)
	isPage := a.r.Method == http.MethodGet && (a.action == "signin" || a.action == "signout" || a.action == "error" || a.action == "verify-request")
	if isPage {
		if a.cfg.Pages.Error != "" {
			return redirectTo(302, withQuery(a.cfg.Pages.Error, "error=Configuration")), true
		}
		return htmlResponse(500, e.pages.renderError(a, "configuration")), true
	}
	return jsonResponse(500, configErrorBody), true
}

// logScriptError logs a failed callback in full: callback, kind, file:line:col in the
// user's source, the offending line and the JS stack. The end user sees only a code.
func (a *authRequest) logScriptError(code string, err error) {
	logScriptFailure(a.r.Context(), a.log, code, err)
}

// logScriptFailure is logScriptError for a request that is not an authRequest (the
// back-channel logout's events.signOut).
func logScriptFailure(ctx context.Context, log *slog.Logger, code string, err error) {
	var se *script.Error
	if errors.As(err, &se) {
		log.ErrorContext(ctx, "callback failed",
			"code", code, "callback", se.Callback, "kind", se.Kind.String(), "error", se.Name+": "+se.Message,
			"at", fmt.Sprintf("%s:%d:%d", se.File, se.Line, se.Column), "source", se.SourceLine, "stack", se.Stack)
		return
	}
	log.ErrorContext(ctx, "request failed", "code", code, "error", err.Error())
}

func withQuery(page, query string) string {
	if strings.Contains(page, "?") {
		return page + "&" + query
	}
	return page + "?" + query
}

// providers lists the configured providers keyed by id, in configuration order and with
// NextAuth's key order (docs/wire.md §3.1). It sends no cookies at all.
func (e *Engine) providers(a *authRequest) response {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range a.cfg.Providers {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s:{"id":%s,"name":%s,"type":%s,"signinUrl":%s,"callbackUrl":%s}`,
			jsonString(p.ID), jsonString(p.ID), jsonString(p.Name), jsonString(p.Type),
			jsonString(e.base+"/signin/"+p.ID), jsonString(e.base+"/callback/"+p.ID))
	}
	b.WriteByte('}')
	res := rawJSONResponse(200, []byte(b.String()))
	res.withoutInitCookies = true
	return res
}

// providerByID is the configured provider with that id.
func providerByID(cfg *script.Config, id string) (script.Provider, bool) {
	for _, p := range cfg.Providers {
		if p.ID == id {
			return p, true
		}
	}
	return script.Provider{}, false
}

// signinPost is POST /signin/:provider. Credentials sign in through /callback, so a valid
// request for them goes back to the sign-in page, exactly as NextAuth does.
func (e *Engine) signinPost(a *authRequest) response {
	p, known := providerByID(&a.cfg, a.providerID)
	if !a.csrfVerified || !known {
		return redirectTo(200, e.base+"/signin?csrf=true")
	}
	switch p.Type {
	case "credentials":
		return redirectTo(200, e.base+"/signin")
	case "oauth", "oidc":
		return e.oauthSignin(a, p)
	case "email":
		return e.emailSignin(a, p)
	}
	return redirectTo(200, e.urls.errorURL("error=Configuration"))
}

// signinPage is GET /signin[/:id]: the app's own page when pages.signIn is set, else ours.
func (e *Engine) signinPage(a *authRequest) response {
	errCode := a.query.Get("error")
	if errCode == "" {
		errCode = a.providerID
	}
	if a.cfg.Pages.SignIn != "" {
		q := "callbackUrl=" + cookie.EncodeValue(a.callbackURL)
		if errCode != "" {
			q += "&error=" + cookie.EncodeValue(errCode)
		}
		return redirectTo(302, withQuery(a.cfg.Pages.SignIn, q))
	}
	res := htmlResponse(200, e.pages.renderSignin(a, a.query.Get("error")))
	// A Passkey provider's button runs the factor script (navigator.credentials.get).
	_, res.scripted = providerByType(&a.cfg, "passkey")
	return res
}

// signoutPage is GET /signout.
func (e *Engine) signoutPage(a *authRequest) response {
	if a.cfg.Pages.SignOut != "" {
		return redirectTo(302, a.cfg.Pages.SignOut)
	}
	return htmlResponse(200, e.pages.renderSignout(a))
}

// signinErrorCodes are the errors NextAuth shows on the sign-in page rather than the error page.
var signinErrorCodes = map[string]bool{
	"Signin": true, "OAuthSignin": true, "OAuthCallback": true, "OAuthCreateAccount": true,
	"EmailCreateAccount": true, "Callback": true, "OAuthAccountNotLinked": true, "EmailSignin": true,
	"CredentialsSignin": true, "SessionRequired": true,
}

// errorRoute is GET /error (docs/wire.md §3.10).
func (e *Engine) errorRoute(a *authRequest) response {
	code := a.query.Get("error")
	if code == "" {
		code = a.providerID
	}
	if signinErrorCodes[code] {
		return redirectTo(302, e.base+"/signin?error="+code)
	}
	if a.cfg.Pages.Error != "" {
		return redirectTo(302, withQuery(a.cfg.Pages.Error, "error="+url.QueryEscape(code)))
	}
	status := 200
	switch strings.ToLower(code) {
	case "configuration":
		status = 500
	case "accessdenied", "verification":
		status = 403
	}
	return htmlResponse(status, e.pages.renderError(a, code))
}
