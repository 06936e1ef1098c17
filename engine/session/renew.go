package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// Renewal on the proxy path. GET /api/auth/session slides the session and refreshes OAuth
// access tokens; an app that is only ever proxied never calls it, so the proxy renews too,
// with the same rules, at most once per session.updateAge rather than on every request:
//
//   - jwt: once updateAge has passed since the token was issued (its iat), or its OAuth
//     access token is due for refresh, the token goes through the refresh check and
//     jwt({token, session: undefined}) exactly as on a session read (jwt({token, account,
//     trigger: "refresh"}) after a refresh), and is re-encoded with a fresh expiry. The jwt
//     callback runs because the renewed token is a new token the gateway issues, and the
//     script has the say over every one: a jwt callback that ends a session by returning
//     null ends it for proxied apps too, instead of the proxy extending it forever.
//   - database: once updateAge has passed since the session was last extended, its stored
//     expiry is extended (extensionDue, the rule GET /session applies).
//
// When a session is due is computed once per decoded session and generation, so a request
// with nothing due pays an atomic load and a clock comparison. The renewal itself runs once
// per cached session: concurrent requests carrying the same cookie wait for it and share
// its cookie, and so do later ones until the browser sends the new cookie.

// dueAt is when a session is next due for renewal under one generation's options.
type dueAt struct {
	gen *script.Generation
	at  time.Time
	// never is set when nothing will ever be due (a token without iat, no refresh).
	never bool
}

// renewalMemo is the renewal made of a session under one generation, or its failure.
type renewalMemo struct {
	gen    *script.Generation
	result Renewal
	// err is a failed renewal, returned to every request until retryAt.
	err     error
	retryAt time.Time
}

// renewRetry is how long a failed renewal is answered from memory before a request tries
// again. Without it, the requests that waited for a renewal that failed (a callback past its
// deadline, say) would each try it in turn, one after the other; with it they are judged by
// the session as read at once.
const renewRetry = 5 * time.Second

// renewTimeout bounds one renewal: the jwt callback, and a refresh with its lock waits and
// the provider's answer.
const renewTimeout = 30 * time.Second

// usable reports whether m answers for gen at now.
func (m *renewalMemo) usable(gen *script.Generation, now time.Time) bool {
	return m != nil && m.gen == gen && (m.err == nil || now.Before(m.retryAt))
}

// renewOnce returns the session's renewal for gen, making it with renew when there is none
// yet. Concurrent callers wait for the one renewal and share its outcome; a failure is
// shared for renewRetry, then tried again.
func (s *Session) renewOnce(gen *script.Generation, now func() time.Time, renew func() (Renewal, error)) (Renewal, error) {
	if m := s.renewal.Load(); m.usable(gen, now()) {
		return m.result, m.err
	}
	s.renewMu.Lock()
	defer s.renewMu.Unlock()
	if m := s.renewal.Load(); m.usable(gen, now()) {
		return m.result, m.err
	}
	r, err := renew()
	if err != nil {
		s.renewal.Store(&renewalMemo{gen: gen, err: err, retryAt: now().Add(renewRetry)})
		return Renewal{}, err
	}
	s.renewal.Store(&renewalMemo{gen: gen, result: r})
	return r, nil
}

// Renew renews a jwt session when it is due: see the comment at the top of this file.
func (s *jwtStrategy) Renew(ctx context.Context, gen *script.Generation, sess *Session) (Renewal, error) {
	d := sess.due.Load()
	if d == nil || d.gen != gen {
		d = s.dueAt(gen, sess.token)
		sess.due.Store(d)
	}
	if d.never || s.o.Now().Before(d.at) {
		return Renewal{Session: sess}, nil
	}
	return sess.renewOnce(gen, s.o.Now, func() (Renewal, error) {
		// Every request waiting for this renewal shares it: it must not fail because the
		// one that started it went away. Callbacks and the provider call have deadlines of
		// their own; this bounds the whole.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		return s.renew(rctx, gen, sess)
	})
}

// dueAt is when a decoded token is due for renewal: updateAge after it was issued, or when
// its OAuth access token is due for refresh, whichever comes first.
func (s *jwtStrategy) dueAt(gen *script.Generation, token map[string]any) *dueAt {
	d := &dueAt{gen: gen, never: true}
	earlier := func(at time.Time) {
		if d.never || at.Before(d.at) {
			d.at, d.never = at, false
		}
	}
	opts := gen.Config().Session
	if iat, ok := token["iat"].(float64); ok {
		earlier(time.Unix(int64(iat), 0).Add(opts.UpdateAge))
	}
	if s.o.RefreshDueAt != nil {
		if at, ok := s.o.RefreshDueAt(gen, token); ok {
			earlier(at)
		}
	}
	if signedIn := authTime(opts, token); !signedIn.IsZero() {
		// The absolute end: the renewal then ends the session (a token issued before
		// absoluteMaxAge was set may expire later than that).
		earlier(signedIn.Add(opts.AbsoluteMaxAge))
	}
	return d
}

// renew is the token half of a jwt session read (Read) for the proxy: the refresh when due,
// the jwt callback, re-encoding with a fresh expiry. The session callback does not run (the
// proxy shapes `auth` on demand, Session.Auth), nor does events.session, which is
// NextAuth's event for the client's session check. The renewed session goes into the cache
// under its new cookie, so the browser's next request does not decrypt it again.
func (s *jwtStrategy) renew(ctx context.Context, gen *script.Generation, sess *Session) (Renewal, error) {
	opts := gen.Config().Session
	signedIn := authTime(opts, sess.token)
	life, ok := lifetime(opts, signedIn, s.o.Now())
	if !ok {
		s.o.Log.InfoContext(ctx, "session ended", "code", "JWT_SESSION_ERROR", "reason", "session.absoluteMaxAge has passed since sign-in")
		return Renewal{Clear: true}, nil
	}
	var refresh Refreshed
	if s.o.Refresh != nil {
		var err error
		if refresh, err = s.o.Refresh(ctx, gen, sess.token); err != nil {
			return Renewal{}, fmt.Errorf("refresh the access token: %w", err)
		}
	}
	if refresh.End {
		s.o.Log.InfoContext(ctx, "session ended by token refresh", "code", "JWT_SESSION_ERROR", "reason", refresh.Reason)
		return Renewal{Clear: true}, nil
	}
	tokenOut := script.JSON(sess.payload)
	if refresh.JWTArg != nil {
		b, err := json.Marshal(refresh.Token)
		if err != nil {
			return Renewal{}, fmt.Errorf("encode refreshed token: %w", err)
		}
		tokenOut = b
	}
	if gen.Defines(script.CallbackJWT) {
		arg := script.JWTArgs{Token: tokenOut, Session: script.Undefined}
		if refresh.JWTArg != nil {
			arg = *refresh.JWTArg
		}
		res, err := gen.JWT(ctx, arg)
		if err != nil {
			return Renewal{}, &CallbackError{Callback: "callbacks.jwt", Err: err}
		}
		if res == nil {
			// jwt returned null: the script ended the session.
			return Renewal{Clear: true}, nil
		}
		tokenOut = res
	}
	tokenOut, err := withClaims(tokenOut, s.owned(s.keptClaims(sess.token, lifetimeClaims(signedIn, refresh.Claims))))
	if err != nil {
		return Renewal{}, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	// A revocation may have come in while the refresh and the callbacks ran (a sign-out
	// everywhere, a provider's logout by subject: both cut off by issue time), and the new
	// token has a new iat: the token it replaces is checked again before it is issued.
	if revoked, err := s.o.Revoked(ctx, sess.token); err != nil {
		return Renewal{}, fmt.Errorf("check revocations: %w", err)
	} else if revoked {
		return Renewal{Clear: true}, nil
	}
	tok, err := s.o.Keys.EncodeJSON(tokenOut, life)
	if err != nil {
		return Renewal{}, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	inspectEncoded(ctx, "renewal", tokenOut, tok)
	// Decoded back rather than patched: the session the request is judged by is exactly
	// what the next request's cookie will decode to.
	claims, payload, err := s.o.Keys.DecodePayload(tok)
	if err != nil {
		return Renewal{}, fmt.Errorf("decode the renewed token: %w", err)
	}
	now := s.o.Now()
	next := s.newSession(claims, payload)
	s.cache.put(tok, next, now)
	return Renewal{Session: next, Set: &Cookie{Value: tok, Expires: now.Add(life)}}, nil
}

// Renew extends a database session when updateAge has passed since it was last extended,
// as GET /session does. A store that cannot be reached is ErrStoreUnavailable: the caller
// judges the request by the session it read.
func (s *databaseStrategy) Renew(ctx context.Context, gen *script.Generation, sess *Session) (Renewal, error) {
	opts := gen.Config().Session
	now := s.o.Now()
	if _, ok := lifetime(opts, sess.signedIn, now); !ok {
		// Past its absolute end (a session stored before absoluteMaxAge was set): it ends
		// here, whether or not the store can be told.
		id := store.SessionID(sess.raw)
		s.cache.remove(id)
		if s.o.Store != nil {
			if _, err := s.o.Store.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.o.Log.WarnContext(ctx, "could not delete a session past its absolute lifetime", "code", "SESSION_ERROR", "error", err.Error())
			}
		}
		return Renewal{Clear: true}, nil
	}
	expires, due := extension(opts, sess.signedIn, sess.expires, now)
	if !due {
		return Renewal{Session: sess}, nil
	}
	if s.o.Store == nil {
		return Renewal{}, ErrNoStore
	}
	id := store.SessionID(sess.raw)
	err := s.o.Store.ExtendSession(ctx, id, expires)
	if errors.Is(err, store.ErrNotFound) {
		s.cache.remove(id)
		return Renewal{Clear: true}, nil
	}
	if err != nil {
		return Renewal{}, unavailable(fmt.Errorf("extend session: %w", err))
	}
	// The next requests of this burst see the extended session instead of extending it
	// again.
	s.cache.extend(id, expires)
	token := make(map[string]any, len(sess.token))
	for k, v := range sess.token {
		token[k] = v
	}
	token["exp"] = float64(expires.Unix())
	next := &Session{token: token, expires: expires, now: sess.now, user: sess.user, raw: sess.raw, signedIn: sess.signedIn}
	return Renewal{Session: next, Set: &Cookie{Value: sess.raw, Expires: expires}}, nil
}
