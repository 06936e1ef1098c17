package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
)

// sessionResult is the outcome of reading the session cookie through the callbacks.
type sessionResult struct {
	// body is the /session JSON body: the session callback's result, or {} when there is
	// no valid session.
	body []byte
	// session is the same value, decoded, for the home page and events.
	session map[string]any
	// cookies renew (sliding expiry) or delete the session cookie.
	cookies []string
	// failed is set when a callback failed: the answer is a 500 and the cookie is kept.
	failed error
}

var emptyObject = []byte(`{}`)

// resolveSession runs NextAuth's JWT session read (§5.2): reassemble the cookie, decode,
// jwt({token, session}) (trigger "update" with the client's data on POST), build the default
// session from the decoded token, session({session, token}), re-encode with a fresh expiry.
//
// A token that does not decode (expired, tampered, other secret) ends the session: the
// cookie chunks are deleted and the body is {}. A callback that fails is different: it is
// the gateway's fault, not the user's, so the answer is an error and the cookie is kept —
// a broken or slow script never signs everyone out.
func (e *Engine) resolveSession(a *authRequest, update bool, newSession any) sessionResult {
	if a.cfg.Session.Strategy == "database" {
		return e.resolveDatabaseSession(a, update, newSession)
	}
	ctx := a.r.Context()
	raw := e.readSessionToken(a)
	if raw == "" {
		return sessionResult{body: emptyObject}
	}
	decoded, err := e.keys.Decode(raw)
	if err != nil {
		e.log.InfoContext(ctx, "session token rejected", "code", "JWT_SESSION_ERROR", "reason", err.Error())
		return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
	}
	if revoked, err := e.checkRevoked(ctx, decoded); err != nil {
		return sessionResult{failed: err}
	} else if revoked {
		e.log.InfoContext(ctx, "session token revoked", "code", "JWT_SESSION_ERROR", "reason", "revoked")
		return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
	}
	refresh, err := e.refreshIfDue(a, decoded)
	if err != nil {
		return sessionResult{failed: err}
	}
	if refresh.end {
		e.log.InfoContext(ctx, "session ended by token refresh", "code", "JWT_SESSION_ERROR", "reason", refresh.reason)
		return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
	}
	decoded = refresh.token
	tokenOut := decoded
	if a.gen.Has("callbacks.jwt") {
		arg := map[string]any{"token": decoded, "session": newSession}
		if update {
			arg = map[string]any{"token": decoded, "trigger": "update", "session": newSession}
		}
		if refresh.jwtArg != nil {
			arg = refresh.jwtArg
		}
		res, err := a.gen.Call(ctx, "callbacks.jwt", arg)
		if err != nil {
			return sessionResult{failed: err}
		}
		if res == nil {
			// jwt returned null: the script ended the session.
			return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
		}
		tokenOut, _ = res.(map[string]any)
		if refresh.claim != nil {
			tokenOut = withOAuthClaim(tokenOut, refresh.claim)
		}
	}
	now := e.now()
	expires := now.Add(a.cfg.Session.MaxAge)
	session := map[string]any{
		"user":    defaultSessionUser(decoded),
		"expires": expires.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if a.gen.Has("callbacks.session") {
		res, err := a.gen.Call(ctx, "callbacks.session", map[string]any{"session": session, "token": tokenOut})
		if err != nil {
			return sessionResult{failed: err}
		}
		session, _ = res.(map[string]any)
	}
	body, err := marshalJSON(session)
	if err != nil {
		return sessionResult{failed: fmt.Errorf("encode session: %w", err)}
	}
	tok, err := e.keys.Encode(tokenOut, a.cfg.Session.MaxAge)
	if err != nil {
		return sessionResult{failed: fmt.Errorf("encode session token: %w", err)}
	}
	result := sessionResult{body: body, session: session, cookies: e.writeSessionCookies(a, tok, expires)}
	if a.gen.Has("events.session") {
		e.event(a, "events.session", map[string]any{"session": session, "token": tokenOut})
	}
	return result
}

// defaultSessionUser is NextAuth's default session.user, taken from the decoded token
// (before the jwt callback): name, email, and picture as image. Missing claims are left
// out; null claims stay null.
func defaultSessionUser(token map[string]any) map[string]any {
	user := map[string]any{}
	for claim, field := range map[string]string{"name": "name", "email": "email", "picture": "image"} {
		if v, ok := token[claim]; ok {
			user[field] = v
		}
	}
	return user
}

// session is GET /session and, with update, POST /session (useSession().update()).
func (e *Engine) session(a *authRequest, update bool) response {
	var data any = script.Undefined
	if update {
		if v, ok := a.body["data"]; ok {
			data = v
		}
	}
	s := e.resolveSession(a, update, data)
	if errors.Is(s.failed, ErrStoreUnavailable) {
		e.log.ErrorContext(a.r.Context(), "session not checked: store unavailable", "code", "SESSION_ERROR", "error", s.failed.Error())
		res := jsonResponse(http.StatusServiceUnavailable, storeUnavailableBody)
		res.header = map[string]string{"Retry-After": "5"}
		return res
	}
	if s.failed != nil {
		e.logScriptError(a, "SESSION_ERROR", s.failed)
		return jsonResponse(http.StatusInternalServerError, configErrorBody)
	}
	res := rawJSONResponse(200, s.body)
	res.cookies = s.cookies
	return res
}

// event runs an events.* callback. Events never change the response: a failure is logged
// as NextAuth's <EVENT>_EVENT_ERROR.
func (e *Engine) event(a *authRequest, name string, arg map[string]any) {
	if !a.gen.Has(name) {
		return
	}
	if err := a.gen.Event(a.r.Context(), name, arg); err != nil {
		e.logScriptError(a, strings.ToUpper(strings.TrimPrefix(name, "events."))+"_EVENT_ERROR", err)
	}
}

// callback is GET|POST /callback/:provider. Only credentials exist so far; they sign in by POST.
func (e *Engine) callback(a *authRequest) response {
	p, ok := e.provider(a, a.providerID)
	if !ok {
		return textResponse(http.StatusBadRequest, fmt.Sprintf("Error: This action with HTTP %s is not supported by NextAuth.js", a.r.Method))
	}
	if p.Type == "oauth" || p.Type == "oidc" {
		return e.oauthCallback(a, p)
	}
	if p.Type != "credentials" {
		return redirectTo(200, e.errorURL("error=Configuration"))
	}
	if a.r.Method != http.MethodPost {
		return textResponse(http.StatusInternalServerError, "Error: Callback for provider type credentials not supported")
	}
	if !a.csrfVerified {
		return redirectTo(200, e.base+"/signin?csrf=true")
	}
	return e.credentialsSignIn(a, p)
}

// credentialsSignIn is NextAuth's credentials flow (§3.7): authorize → signIn → jwt →
// cookie → events.signIn → redirect to the callback URL.
func (e *Engine) credentialsSignIn(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	if res, refused := e.signInRefused(a); refused {
		return res
	}
	user, err := a.gen.Authorize(ctx, p.ID, a.body, e.authorizeRequest(a))
	if err != nil {
		if msg, ok := publicMessage(err); ok {
			e.signInFailed(a)
			e.logScriptError(a, "CREDENTIALS_AUTHORIZE_ERROR", err)
			return redirectTo(http.StatusUnauthorized, e.errorURL("error="+cookie.EncodeValue(msg)))
		}
		e.logScriptError(a, "CREDENTIALS_AUTHORIZE_ERROR", err)
		return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
	}
	if user == nil {
		e.signInFailed(a)
		return redirectTo(http.StatusUnauthorized, e.errorURL("error=CredentialsSignin&provider="+cookie.EncodeValue(p.ID)))
	}
	e.signInSucceeded(a)
	userID, hasID := idString(user["id"])
	if !hasID {
		e.log.WarnContext(ctx, "authorize returned a user without an id; the token has no sub", "code", "CREDENTIALS_NO_ID", "provider", p.ID)
	}
	account := map[string]any{"providerAccountId": userID, "type": "credentials", "provider": p.ID}
	if !hasID {
		account["providerAccountId"] = script.Undefined
	}

	if a.gen.Has("callbacks.signIn") {
		allowed, err := a.gen.Call(ctx, "callbacks.signIn", map[string]any{"user": user, "account": account, "credentials": a.body})
		if err != nil {
			if msg, ok := publicMessage(err); ok {
				e.logScriptError(a, "SIGNIN_CALLBACK_ERROR", err)
				return redirectTo(200, e.errorURL("error="+cookie.EncodeValue(msg)))
			}
			e.logScriptError(a, "SIGNIN_CALLBACK_ERROR", err)
			return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
		}
		if target, ok := allowed.(string); ok && target != "" {
			return redirectTo(200, e.checkedRedirect(a, "callbacks.signIn", target))
		}
		if !truthy(allowed) {
			return redirectTo(http.StatusForbidden, e.errorURL("error=AccessDenied"))
		}
	}

	if a.cfg.Session.Strategy == "database" {
		return e.databaseSignIn(a, user, account, userID, hasID)
	}
	tokenIn := map[string]any{}
	for claim, field := range map[string]string{"name": "name", "email": "email", "picture": "image"} {
		if v, ok := user[field]; ok {
			tokenIn[claim] = v
		}
	}
	if hasID {
		tokenIn["sub"] = userID
	}
	tokenOut := tokenIn
	if a.gen.Has("callbacks.jwt") {
		res, err := a.gen.Call(ctx, "callbacks.jwt", map[string]any{
			"token": tokenIn, "user": user, "account": account, "isNewUser": false, "trigger": "signIn",
		})
		if err != nil {
			e.logScriptError(a, "JWT_CALLBACK_ERROR", err)
			return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
		}
		if res == nil {
			return redirectTo(http.StatusForbidden, e.errorURL("error=AccessDenied"))
		}
		tokenOut, _ = res.(map[string]any)
	}
	tok, err := e.keys.Encode(tokenOut, a.cfg.JWT.MaxAge)
	if err != nil {
		e.log.ErrorContext(ctx, "encode session token", "code", "JWT_ENCODE_ERROR", "error", err.Error())
		return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
	}
	cookies := e.writeSessionCookies(a, tok, e.now().Add(a.cfg.Session.MaxAge))
	e.event(a, "events.signIn", map[string]any{"user": user, "account": account})
	res := redirectTo(200, a.callbackURL)
	res.cookies = cookies
	return res
}

// authorizeRequest is authorize's second argument: {query, body, headers, method}, with
// header names lower-cased as Node gives them.
func (e *Engine) authorizeRequest(a *authRequest) map[string]any {
	query := map[string]any{}
	for k, v := range a.query {
		if len(v) > 0 {
			query[k] = v[0]
		}
	}
	headers := map[string]any{}
	for k, v := range a.r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if a.r.Host != "" {
		headers["host"] = a.r.Host
	}
	return map[string]any{"query": query, "body": a.body, "headers": headers, "method": a.r.Method}
}

// signoutPost is POST /signout (§3.9).
func (e *Engine) signoutPost(a *authRequest) response {
	if !a.csrfVerified {
		return redirectTo(200, e.base+"/signout?csrf=true")
	}
	raw := e.readSessionToken(a)
	if raw == "" {
		return redirectTo(200, a.callbackURL)
	}
	if a.cfg.Session.Strategy == "database" {
		return e.databaseSignOut(a, raw)
	}
	if decoded, err := e.keys.Decode(raw); err == nil {
		e.event(a, "events.signOut", map[string]any{"token": decoded})
	} else {
		e.log.InfoContext(a.r.Context(), "sign-out with an invalid session token", "code", "SIGNOUT_ERROR", "reason", err.Error())
	}
	res := redirectTo(200, a.callbackURL)
	res.cookies = e.cleanSessionCookies(a)
	return res
}

// publicMessage returns the message a script threw on purpose for the end user.
func publicMessage(err error) (string, bool) {
	var se *script.Error
	if errors.As(err, &se) && se.Public {
		return se.Message, true
	}
	return "", false
}

// idString is JS String(user.id) for the id types a user object can carry.
func idString(v any) (string, bool) {
	switch id := v.(type) {
	case nil:
		return "", false
	case string:
		return id, true
	case float64, int64, int, bool:
		b, _ := json.Marshal(id)
		return string(b), true
	}
	b, _ := json.Marshal(v)
	return string(b), true
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

// readSessionToken reassembles the session cookie from its chunks.
func (e *Engine) readSessionToken(a *authRequest) string {
	return cookie.NewSessionStore(a.cookies.SessionToken, a.jar).Value()
}

// writeSessionCookies deletes every chunk the browser sent and writes the new token,
// chunked when it is large, with the given expiry.
func (e *Engine) writeSessionCookies(a *authRequest, tok string, expires time.Time) []string {
	return cookieStrings(cookie.NewSessionStore(a.cookies.SessionToken, a.jar).Chunk(tok, expires))
}

// cleanSessionCookies deletes every session chunk the browser sent.
func (e *Engine) cleanSessionCookies(a *authRequest) []string {
	return cookieStrings(cookie.NewSessionStore(a.cookies.SessionToken, a.jar).Clean())
}

func cookieStrings(cs []cookie.Cookie) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}
