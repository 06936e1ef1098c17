package engine

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/oauth"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
)

// The engine's half of sessions: the strategies themselves (jwt and database: read, issue,
// end, the proxy's read and its caches) are package engine/session; here are the routes
// that use them, the session cookies they return values for, and the hooks they call back
// into (revocations, OAuth refresh).

// sessionResult is the outcome of reading the session cookie through the callbacks.
type sessionResult struct {
	// body is the /session JSON body: the session callback's result as JSON.stringify wrote
	// it, or {} when there is no valid session.
	body []byte
	// cookies renew (sliding expiry) or delete the session cookie.
	cookies []string
	// failed is set when a callback failed: the answer is a 500 and the cookie is kept.
	failed error
}

var emptyObject = []byte(`{}`)

// resolveSession reads the session cookie through the configured strategy
// (engine/session: Strategy.Read) and turns its result into the /session body and cookies:
// the renewed cookie, or the deleted one when the session ended, and events.session.
func (e *Engine) resolveSession(a *authRequest, u session.Update) sessionResult {
	rd, err := e.sessions.For(a.cfg).Read(a.r.Context(), a.gen, a.sessionToken(), u)
	if err != nil {
		return sessionResult{failed: sessionError(err)}
	}
	if !rd.Active {
		res := sessionResult{body: emptyObject}
		if rd.Clear {
			res.cookies = a.cleanSessionCookies()
		}
		return res
	}
	res := sessionResult{body: rd.Body, cookies: a.writeSessionCookies(rd.Set.Value, rd.Set.Expires)}
	if rd.Event != nil {
		a.emit(script.EventSession, rd.Event)
	}
	return res
}

// sessionError makes a store failure of engine/session this package's ErrStoreUnavailable,
// which routes answer with 503 and SessionFromRequest's callers test for.
func sessionError(err error) error {
	if errors.Is(err, session.ErrStoreUnavailable) {
		return unavailable(err)
	}
	return err
}

// refreshToken is the session strategies' Refresh hook: the OAuth client's refresh of a
// decoded token when its access token is due (engine/oauth).
func (e *Engine) refreshToken(ctx context.Context, gen *script.Generation, tok map[string]any) (session.Refreshed, error) {
	cfg := gen.Config()
	r, err := e.oauth.RefreshIfDue(ctx, tok, func(id string) (script.Provider, bool) { return providerByID(&cfg, id) })
	if err != nil {
		return session.Refreshed{}, err
	}
	out := session.Refreshed{Token: r.Token, JWTArg: r.JWTArg, End: r.End, Reason: r.Reason}
	if claim := r.Claim; claim != nil {
		out.Claims = map[string]any{oauth.Claim: claim}
	}
	return out, nil
}

// refreshDueAt is the session strategies' RefreshDueAt hook: when the OAuth client's
// refresh check will act on a decoded token.
func refreshDueAt(gen *script.Generation, tok map[string]any) (time.Time, bool) {
	if _, ok := tok[oauth.Claim]; !ok {
		return time.Time{}, false
	}
	cfg := gen.Config()
	return oauth.RefreshDueAt(tok, func(id string) (script.Provider, bool) { return providerByID(&cfg, id) })
}

// session is GET /session and, with update, POST /session (useSession().update()).
func (e *Engine) session(a *authRequest, update bool) response {
	var data any = script.Undefined
	if update {
		if v, ok := a.body["data"]; ok {
			data = v
		}
	}
	s := e.resolveSession(a, session.Update{Update: update, Data: data})
	if errors.Is(s.failed, ErrStoreUnavailable) {
		e.log.ErrorContext(a.r.Context(), "session not checked: store unavailable", "code", "SESSION_ERROR", "error", s.failed.Error())
		res := jsonResponse(http.StatusServiceUnavailable, storeUnavailableBody)
		res.header = map[string]string{"Retry-After": "5"}
		return res
	}
	if s.failed != nil {
		a.logScriptError("SESSION_ERROR", s.failed)
		return jsonResponse(http.StatusInternalServerError, configErrorBody)
	}
	res := rawJSONResponse(200, s.body)
	res.cookies = s.cookies
	return res
}

// emit runs an events.* callback. Events never change the response: a failure is logged
// as NextAuth's <EVENT>_EVENT_ERROR.
func (a *authRequest) emit(ev script.Event, arg map[string]any) {
	if !a.gen.Defines(ev) {
		return
	}
	if err := a.gen.Emit(a.r.Context(), ev, arg); err != nil {
		a.logScriptError(strings.ToUpper(ev.Key())+"_EVENT_ERROR", err)
	}
}

// signoutPost is POST /signout (docs/wire.md §3.9): the strategy ends the session (Strategy.End), then
// events.signOut and the cookie is cleared. When the store cannot be reached the cookie is
// kept and the answer is 503, so the user can try again rather than believe a live session
// has ended.
func (e *Engine) signoutPost(a *authRequest) response {
	if !a.csrfVerified {
		return redirectTo(200, e.base+"/signout?csrf=true")
	}
	raw := a.sessionToken()
	if raw == "" {
		return redirectTo(200, a.callbackURL)
	}
	ctx := a.r.Context()
	ended, err := e.sessions.For(a.cfg).End(ctx, raw)
	switch {
	case errors.Is(err, session.ErrNoStore):
		e.log.ErrorContext(ctx, err.Error(), "code", "SIGNOUT_ERROR")
		return redirectTo(http.StatusInternalServerError, e.urls.errorURL("error=Configuration"))
	case err != nil:
		e.log.ErrorContext(ctx, "delete session", "code", "SIGNOUT_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	case ended != nil:
		a.emit(script.EventSignOut, ended)
	}
	res := redirectTo(200, e.afterSignout(a, ended))
	res.cookies = a.cleanSessionCookies()
	return res
}

// afterSignout is where a sign-out sends the browser: the callback URL, or, for a session
// started with a provider that has logout.endSession on, the provider's end_session_endpoint
// (OpenID Connect RP-Initiated Logout) with the session's ID token as id_token_hint and the
// callback URL (already through the redirect callback and the core's same-origin check) as
// post_logout_redirect_uri. next-auth/react's signOut() reads it from {url} and goes there.
// When the provider cannot be reached for its metadata, the sign-out ends at the gateway:
// the gateway session is over either way.
func (e *Engine) afterSignout(a *authRequest, ended map[string]any) string {
	tok, _ := ended["token"].(map[string]any)
	ps, ok := oauth.ProviderSessionOf(tok)
	if !ok {
		return a.callbackURL
	}
	p, known := providerByID(&a.cfg, ps.Provider)
	if !known || p.OAuth == nil || !p.OAuth.EndSession {
		return a.callbackURL
	}
	target, ok, err := e.oauth.EndSession(a.r.Context(), p, ps, a.callbackURL)
	switch {
	case err != nil:
		e.log.WarnContext(a.r.Context(), "sign-out not passed on to the provider: its metadata could not be read", "code", "SIGNOUT_ERROR", "provider", p.ID, "error", err.Error())
		return a.callbackURL
	case !ok:
		e.log.WarnContext(a.r.Context(), "sign-out not passed on to the provider: its discovery document has no end_session_endpoint", "code", "SIGNOUT_ERROR", "provider", p.ID)
		return a.callbackURL
	}
	return target
}

// storeUnavailableRedirect is a 503 to the error page; with json=true the client reads
// {url} and signIn({redirect:false}) returns {error:"SessionStoreUnavailable", status:503}.
func storeUnavailableRedirect(e *Engine) response {
	res := redirectTo(http.StatusServiceUnavailable, e.urls.errorURL("error=SessionStoreUnavailable"))
	res.header = map[string]string{"Retry-After": "5"}
	return res
}

// storeUnavailableBody is the JSON of a 503 from /session.
var storeUnavailableBody = map[string]string{"message": "The session store is unavailable. Try again shortly."}

// publicMessage returns the message a script threw on purpose for the end user.
func publicMessage(err error) (string, bool) {
	var se *script.Error
	if errors.As(err, &se) && se.Public {
		return se.Message, true
	}
	return "", false
}

// truthy is JS truthiness for exported JSON-shaped values.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0 && x == x
	case int64:
		return x != 0
	case int:
		return x != 0
	}
	return true
}

// sessionToken reassembles the session cookie from its chunks.
func (a *authRequest) sessionToken() string {
	return cookie.NewSessionStore(a.cookies.SessionToken, a.jar).Value()
}

// writeSessionCookies deletes every chunk the browser sent and writes the new token,
// chunked when it is large, with the given expiry. A token longer than cookie.MaxChunks
// chunks is not written (no request carrying it would be read back); that is the jwt
// callback putting too much in the token, so it is logged as an error.
func (a *authRequest) writeSessionCookies(tok string, expires time.Time) []string {
	if !cookie.Fits(tok) {
		a.log.ErrorContext(a.r.Context(), "session token too large for the session cookie; not stored: keep less in the token (jwt callback)",
			"code", "SESSION_TOKEN_TOO_LARGE", "bytes", len(tok), "max_bytes", cookie.MaxSessionBytes)
	}
	return cookieStrings(cookie.NewSessionStore(a.cookies.SessionToken, a.jar).Chunk(tok, expires))
}

// cleanSessionCookies deletes every session chunk the browser sent.
func (a *authRequest) cleanSessionCookies() []string {
	return cookieStrings(cookie.NewSessionStore(a.cookies.SessionToken, a.jar).Clean())
}

func cookieStrings(cs []cookie.Cookie) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}
