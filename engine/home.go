package engine

import (
	"encoding/json"
	"net/http"

	"github.com/callgate/callgate/engine/cookie"
)

// serveHome is the gateway's own page at "/": signed out, a link to sign in; signed in, who
// you are, the session JSON exactly as /api/auth/session returns it, and a sign-out button.
// It runs the same session read as /api/auth/session, so it renews the cookie the same way.
func (e *Engine) serveHome(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	gen, release := e.pinGeneration()
	defer release()
	cfg := gen.Config()
	secure := secureCookies(&cfg, e.origin)
	a := &authRequest{
		r: r, action: "home", query: r.URL.Query(), body: map[string]any{},
		jar: cookie.Parse(r.Header), gen: gen, cfg: cfg, secure: secure, cookies: e.cookieSet(secure),
	}
	if err := e.initCSRF(a); err != nil {
		e.write(w, a, e.serverError(a, err))
		return
	}
	a.callbackURL = e.origin
	d := e.basePage(a, "callgate")
	s := e.resolveSession(a, false, nil)
	var res response
	if s.failed != nil {
		e.logScriptError(a, "SESSION_ERROR", s.failed)
		e.write(w, a, htmlResponse(http.StatusInternalServerError, e.renderError(a, "configuration")))
		return
	}
	if len(s.session) > 0 {
		user, _ := s.session["user"].(map[string]any)
		if user == nil {
			user = map[string]any{}
		}
		d.SignedIn = true
		d.User = user
		pretty, _ := json.MarshalIndent(s.session, "", "  ")
		d.SessionJSON = string(pretty)
	}
	res = htmlResponse(200, e.render("home.html", d))
	res.cookies = s.cookies
	w.Header().Set("Cache-Control", "private, no-store")
	e.write(w, a, res)
}
