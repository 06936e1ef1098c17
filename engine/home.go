package engine

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
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
	gen, release := e.gen.pin()
	defer release()
	cfg := gen.Config()
	secure := secureCookies(&cfg, e.origin)
	a := &authRequest{
		r: r, action: "home", query: r.URL.Query(), body: map[string]any{},
		jar: cookie.Parse(r.Header), gen: gen, cfg: cfg, secure: secure, cookies: e.cookieSets.forScheme(secure), log: e.log,
	}
	if err := e.csrf.init(a); err != nil {
		a.write(w, e.pages.serverError(a, err))
		return
	}
	a.callbackURL = e.origin
	d := e.pages.basePage(a, "callgate")
	s := e.resolveSession(a, session.Update{})
	var res response
	if s.failed != nil {
		a.logScriptError("SESSION_ERROR", s.failed)
		a.write(w, htmlResponse(http.StatusInternalServerError, e.pages.renderError(a, "configuration")))
		return
	}
	if sess, _ := script.JSON(s.body).Map(); len(sess) > 0 {
		user, _ := sess["user"].(map[string]any)
		if user == nil {
			user = map[string]any{}
		}
		d.SignedIn = true
		d.User = user
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, s.body, "", "  ") // the body's own key order
		d.SessionJSON = pretty.String()
	}
	res = htmlResponse(200, e.pages.render("home.html", d))
	res.cookies = s.cookies
	w.Header().Set("Cache-Control", "private, no-store")
	a.write(w, res)
}
