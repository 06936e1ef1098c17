package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// The "database" session strategy (spec §5.3): the cookie holds an opaque random token,
// the store holds the session under the token's SHA-256 hash with the user id and expiry.
// Unlike NextAuth, it works with credentials sign-in: the credentials flow creates a
// store session instead of a JWT.

// errNoStore is a configuration error: the scripts ask for database sessions but the
// gateway was started without a store for them.
var errNoStore = errors.New(`session.strategy is "database" but the gateway has no session store`)

// newSessionToken is NextAuth's generateSessionToken fallback: 32 random bytes as hex. It
// is never chunked (64 characters) and never stored: the store keys on its hash.
func newSessionToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate session token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// adapterUser is the user record as the session callback sees it (NextAuth's AdapterUser
// plus callgate's fields), never with the password hash.
func adapterUser(u store.User) map[string]any {
	m := map[string]any{}
	for k, v := range u.Extra {
		m[k] = v
	}
	m["id"] = u.ID
	m["username"] = u.Username
	m["name"] = u.Name
	m["email"] = u.Email
	if u.Email == "" {
		m["email"] = nil
	}
	if u.Role != "" {
		m["role"] = u.Role
	}
	return m
}

// defaultDatabaseSessionUser is NextAuth's {name, email, image} from the adapter user.
func defaultDatabaseSessionUser(u map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"name", "email", "image"} {
		if v, ok := u[k]; ok {
			out[k] = v
		}
	}
	return out
}

// resolveDatabaseSession is §5.3: read the session and its user (one store read), delete
// it when expired, extend it once updateAge has passed, session({session, user,
// newSession, trigger?}), re-send the cookie with a fresh expiry, events.session.
//
// A store that cannot be reached is ErrStoreUnavailable (503): never "no session", which
// would sign the user out, and never a 200 for a session nobody could check.
func (e *Engine) resolveDatabaseSession(a *authRequest, update bool, newSession any) sessionResult {
	ctx := a.r.Context()
	raw := e.readSessionToken(a)
	if raw == "" {
		return sessionResult{body: emptyObject}
	}
	if e.stored.st == nil {
		return sessionResult{failed: errNoStore}
	}
	id := store.SessionID(raw)
	sess, u, err := e.stored.st.GetSessionAndUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
	}
	if err != nil {
		return sessionResult{failed: unavailable(err)}
	}
	now := e.now()
	if !sess.Expires.After(now) {
		if _, err := e.stored.st.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.WarnContext(ctx, "could not delete an expired session", "code", "SESSION_ERROR", "error", err.Error())
		}
		return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
	}
	maxAge, updateAge := a.cfg.Session.MaxAge, a.cfg.Session.UpdateAge
	if !sess.Expires.Add(-maxAge).Add(updateAge).After(now) {
		err := e.stored.st.ExtendSession(ctx, id, now.Add(maxAge))
		if errors.Is(err, store.ErrNotFound) {
			return sessionResult{body: emptyObject, cookies: e.cleanSessionCookies(a)}
		}
		if err != nil {
			return sessionResult{failed: unavailable(err)}
		}
	}
	user := adapterUser(u)
	session := map[string]any{
		"user": defaultDatabaseSessionUser(user),
		// The stored expiry, not the extended one, as NextAuth answers.
		"expires": sess.Expires.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if a.gen.Has("callbacks.session") {
		arg := map[string]any{"session": session, "user": user, "newSession": newSession}
		if update {
			arg["trigger"] = "update"
		}
		res, err := a.gen.Call(ctx, "callbacks.session", arg)
		if err != nil {
			return sessionResult{failed: err}
		}
		session, _ = res.(map[string]any)
	}
	body, err := marshalJSON(session)
	if err != nil {
		return sessionResult{failed: fmt.Errorf("encode session: %w", err)}
	}
	result := sessionResult{body: body, session: session, cookies: e.writeSessionCookies(a, raw, now.Add(maxAge))}
	e.event(a, "events.session", map[string]any{"session": session})
	return result
}

// databaseSignIn ends a credentials sign-in under the database strategy: a new store
// session for the authorized user instead of a JWT. The user must be one of the store's
// (authorize returns users.findOne's _id as id), since every session read loads it.
func (e *Engine) databaseSignIn(a *authRequest, user, account map[string]any, userID string, hasID bool) response {
	ctx := a.r.Context()
	if e.stored.st == nil {
		e.log.ErrorContext(ctx, errNoStore.Error(), "code", "SESSION_ERROR")
		return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
	}
	if !hasID {
		e.log.ErrorContext(ctx, "authorize returned a user without an id: database sessions need the store user's id", "code", "SESSION_ERROR")
		return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
	}
	tok, err := newSessionToken()
	if err != nil {
		e.log.ErrorContext(ctx, "create session", "code", "SESSION_ERROR", "error", err.Error())
		return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
	}
	now := e.now()
	expires := now.Add(a.cfg.Session.MaxAge)
	if err := e.stored.st.CreateSession(ctx, store.Session{ID: store.SessionID(tok), UserID: userID, Expires: expires, CreatedAt: now}); err != nil {
		e.log.ErrorContext(ctx, "create session", "code", "SESSION_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	}
	cookies := e.writeSessionCookies(a, tok, expires)
	e.event(a, "events.signIn", map[string]any{"user": user, "account": account})
	res := redirectTo(200, a.callbackURL)
	res.cookies = cookies
	return res
}

// databaseSignOut deletes the store session, then runs events.signOut({session}) and
// clears the cookie. When the store cannot be reached the cookie is kept and the answer is
// 503, so the user can try again rather than believe a live session has ended.
func (e *Engine) databaseSignOut(a *authRequest, raw string) response {
	ctx := a.r.Context()
	if e.stored.st == nil {
		e.log.ErrorContext(ctx, errNoStore.Error(), "code", "SIGNOUT_ERROR")
		return redirectTo(http.StatusInternalServerError, e.errorURL("error=Configuration"))
	}
	id := store.SessionID(raw)
	sess, err := e.stored.st.DeleteSession(ctx, id)
	e.stored.dbSessions.remove(id)
	switch {
	case err == nil:
		e.event(a, "events.signOut", map[string]any{"session": map[string]any{
			"sessionToken": raw, "userId": sess.UserID, "expires": sess.Expires.UTC().Format("2006-01-02T15:04:05.000Z"),
		}})
	case errors.Is(err, store.ErrNotFound):
		e.log.InfoContext(ctx, "sign-out with an unknown session", "code", "SIGNOUT_ERROR")
	default:
		e.log.ErrorContext(ctx, "delete session", "code", "SIGNOUT_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	}
	res := redirectTo(200, a.callbackURL)
	res.cookies = e.cleanSessionCookies(a)
	return res
}

// storeUnavailableRedirect is a 503 to the error page; with json=true the client reads
// {url} and signIn({redirect:false}) returns {error:"SessionStoreUnavailable", status:503}.
func storeUnavailableRedirect(e *Engine) response {
	res := redirectTo(http.StatusServiceUnavailable, e.errorURL("error=SessionStoreUnavailable"))
	res.header = map[string]string{"Retry-After": "5"}
	return res
}

// storeUnavailableBody is the JSON of a 503 from /session.
var storeUnavailableBody = map[string]string{"message": "The session store is unavailable. Try again shortly."}

// databaseSessionFromRequest is SessionFromRequest for the database strategy: one store
// read, reused for dbSessionTTL. The Session's token holds the claims the proxy reads
// (sub, name, email, picture, exp) built from the user record.
func (e *Engine) databaseSessionFromRequest(ctx context.Context, raw string) (*Session, error) {
	if e.stored.st == nil {
		return nil, errNoStore
	}
	id := store.SessionID(raw)
	now := e.now()
	entry, ok := e.stored.dbSessions.get(id, now)
	if !ok {
		sess, u, err := e.stored.st.GetSessionAndUser(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, unavailable(err)
		}
		entry = dbSessionEntry{session: sess, user: u, until: now.Add(dbSessionTTL)}
		e.stored.dbSessions.put(id, entry, now)
	}
	if !entry.session.Expires.After(now) {
		return nil, nil
	}
	user := adapterUser(entry.user)
	claims := map[string]any{"sub": entry.user.ID, "name": entry.user.Name, "email": user["email"],
		"exp": float64(entry.session.Expires.Unix())}
	if v, ok := user["image"]; ok {
		claims["picture"] = v
	}
	if entry.user.Role != "" {
		claims["role"] = entry.user.Role
	}
	return &Session{token: claims, expires: entry.session.Expires, engine: e, user: user}, nil
}

// databaseAuth is Session.Auth for a database session: session({session, user,
// newSession}) with the stored expiry.
func databaseAuth(ctx context.Context, gen *script.Generation, s *Session) (map[string]any, error) {
	session := map[string]any{
		"user":    defaultDatabaseSessionUser(s.user),
		"expires": s.expires.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if gen.Has("callbacks.session") {
		res, err := gen.Call(ctx, "callbacks.session", map[string]any{"session": session, "user": s.user, "newSession": script.Undefined})
		if err != nil {
			return nil, fmt.Errorf("session callback: %w", err)
		}
		session, _ = res.(map[string]any)
	}
	return session, nil
}

// checkRevoked applies the revocation list to decoded jwt claims.
func (e *Engine) checkRevoked(ctx context.Context, claims map[string]any) (bool, error) {
	if e.stored.revs == nil {
		return false, nil
	}
	sub, _ := claims["sub"].(string)
	jti, _ := claims["jti"].(string)
	var iat time.Time
	if v, ok := claims["iat"].(float64); ok {
		iat = time.Unix(int64(v), 0)
	}
	return e.stored.revs.check(ctx, sub, jti, iat)
}

// unlessRevoked returns s, or nil when its token has been revoked. The check is in memory
// (revocation.go), so it runs on every request, cached session or not.
func (e *Engine) unlessRevoked(ctx context.Context, s *Session) (*Session, error) {
	revoked, err := e.checkRevoked(ctx, s.token)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, nil
	}
	return s, nil
}
