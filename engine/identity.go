package engine

import (
	"context"
	"net/http"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
)

// Session is a request's session as read from its cookie, for code outside /api/auth/*
// (the reverse proxy and forward-auth): engine/session's Session, which engine/proxy reads
// through its Session interface. Read-only.
type Session = session.Session

// SessionFromRequest returns the session of r, or nil when r carries no valid session (no
// cookie, or one that is expired, tampered, revoked or from another secret). The error is
// for failures of the gateway itself, never for a bad cookie: ErrStoreUnavailable (wrapped)
// when the store cannot be reached.
//
// This is the one place outside /api/auth/* that reads sessions, through the configured
// strategy's Lookup (engine/session), so callers do not change when sessions live in the
// store: with the jwt strategy it reassembles the cookie chunks and decrypts the token, with
// no store round trip; reads are cached briefly either way.
func (e *Engine) SessionFromRequest(r *http.Request) (*Session, error) {
	gen := e.Generation()
	s, _, err := e.lookupSession(r, gen)
	return s, err
}

// lookupSession is SessionFromRequest with the generation and cookie set it read under.
func (e *Engine) lookupSession(r *http.Request, gen *script.Generation) (*Session, cookie.Definition, error) {
	cfg := gen.Config()
	def := e.cookieSets.forScheme(secureCookies(&cfg, e.origin)).SessionToken
	s, err := e.lookupToken(r.Context(), cfg, cookie.SessionValue(r.Header, def))
	return s, def, err
}

// lookupToken is the configured strategy's Lookup of a session token (a cookie's value).
func (e *Engine) lookupToken(ctx context.Context, cfg script.Config, raw string) (*Session, error) {
	if raw == "" {
		return nil, nil
	}
	s, err := e.sessions.For(cfg).Lookup(ctx, raw)
	if err != nil {
		return nil, sessionError(err)
	}
	return s, nil
}

// ProxySession is SessionFromRequest for the reverse proxy and forward-auth, with the
// renewal GET /api/auth/session would make (engine/session: Strategy.Renew): once
// session.updateAge has passed, or the OAuth access token is due for refresh, the session
// is renewed and setCookie holds the Set-Cookie values that carry the renewed cookie back to
// the browser, in chunks as /session writes them and with the request's stale chunks
// deleted. When the renewal ended the session (the jwt callback returned null, the
// provider refused the refresh), the session is nil and setCookie deletes the cookie.
//
// A renewal that fails (a callback, the session store) is logged, and the request is
// judged by the session as read, which is still valid, with no cookie: an outage never
// turns into an allow the session would not have had, nor into a sign-out.
func (e *Engine) ProxySession(r *http.Request) (s *Session, setCookie []string, err error) {
	gen := e.Generation()
	s, def, err := e.lookupSession(r, gen)
	if s == nil || err != nil {
		return nil, nil, err
	}
	ctx := r.Context()
	rn, err := e.sessions.For(gen.Config()).Renew(ctx, gen, s)
	if err != nil {
		e.log.WarnContext(ctx, "session renewal failed; the request is judged by the session as read", "code", "SESSION_RENEWAL_ERROR", "error", err.Error())
		return s, nil, nil
	}
	if rn.Set == nil && !rn.Clear {
		return s, nil, nil
	}
	chunks := cookie.NewSessionStore(def, cookie.Parse(r.Header))
	if rn.Clear {
		return nil, cookieStrings(chunks.Clean()), nil
	}
	if !cookie.Fits(rn.Set.Value) {
		e.log.ErrorContext(ctx, "renewed session token too large for the session cookie; not stored: keep less in the token (jwt callback)",
			"code", "SESSION_TOKEN_TOO_LARGE", "bytes", len(rn.Set.Value), "max_bytes", cookie.MaxSessionBytes)
		return rn.Session, nil, nil
	}
	return rn.Session, cookieStrings(chunks.Chunk(rn.Set.Value, rn.Set.Expires)), nil
}

// SessionFromToken is SessionFromRequest for a session token sent without its cookie (as
// `Authorization: Bearer`, by an API client that signed in and kept the token): the same
// strategy's Lookup, the same answers.
func (e *Engine) SessionFromToken(ctx context.Context, raw string) (*Session, error) {
	return e.lookupToken(ctx, e.Generation().Config(), raw)
}
