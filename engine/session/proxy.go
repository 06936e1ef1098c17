package session

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/engine/memo"
	"github.com/callgate/callgate/engine/script"
)

// Session is a request's session as read from its cookie, for code outside /api/auth/*
// (the reverse proxy and forward-auth, through engine/proxy's Session interface) that must
// know who a request is on every request.
//
// A Session is shared by every request that carries the same cookie while it sits in a
// cache: the maps it returns must be treated as read-only.
type Session struct {
	token   map[string]any
	expires time.Time
	now     func() time.Time
	// user is the store's user record under the database strategy; nil for jwt.
	user map[string]any
	// payload is the jwt token's JSON as it was encrypted (its key order, for the jwt
	// callback on renewal); raw is the database strategy's cookie value.
	payload []byte
	raw     string
	// signedIn is the database session's sign-in time, for session.absoluteMaxAge.
	signedIn time.Time

	// due and renewal serve Strategy.Renew (renew.go): when this session is next due for
	// renewal, and the renewal made of it, per generation.
	due     atomic.Pointer[dueAt]
	renewal atomic.Pointer[renewalMemo]
	renewMu sync.Mutex // serialises renewals of this session

	// Every request with this cookie reads auth and memo, often from several cores at once:
	// reads are lock-free loads of immutable values, and the rare writes replace them.
	auth atomic.Pointer[authValue] // the session callback's result, for one generation
	memo memo.Memo                 // per-session values callers derive (signed assertions, headers)
}

type authValue struct {
	gen   *script.Generation
	value map[string]any
}

// Token returns the decoded session token (sub, name, email, iat, exp, jti and whatever the
// jwt callback added). Read-only.
func (s *Session) Token() map[string]any { return s.token }

// Expires is when the session token expires.
func (s *Session) Expires() time.Time { return s.expires }

// Auth returns the session as the session callback shapes it (NextAuth's `auth`): the
// default session, passed through callbacks.session when gen defines it. It is computed on
// first use and kept for the life of this Session, per generation, so the proxy's hot path
// pays for the session callback once per cached cookie, not once per request. Read-only.
//
// Unlike GET /api/auth/session, the jwt callback does not run here: the proxy reads the
// token as it was issued, as NextAuth's middleware does, and runs jwt only when it renews
// the session (Strategy.Renew, at most once per session.updateAge).
func (s *Session) Auth(ctx context.Context, gen *script.Generation) (map[string]any, error) {
	if cached := s.auth.Load(); cached != nil && cached.gen == gen {
		return cached.value, nil
	}
	var body script.JSON
	var err error
	if s.user != nil {
		// database: session({session, user, newSession}) with the stored expiry.
		body, err = shape(ctx, gen, sessionUser(s.user, "image"), s.expires,
			script.SessionArgs{User: s.user, NewSession: script.Undefined})
	} else {
		body, err = shape(ctx, gen, sessionUser(s.token, "picture"), s.now().Add(gen.Config().Session.MaxAge),
			script.SessionArgs{Token: present(s.token)})
	}
	if err != nil {
		return nil, fmt.Errorf("session callback: %w", err)
	}
	session, err := body.Map()
	if err != nil {
		return nil, fmt.Errorf("session callback: %w", err)
	}
	s.auth.Store(&authValue{gen: gen, value: session})
	return session, nil
}

// Remember returns the value stored under key while it is still valid at now, else calls
// derive and keeps its result until the expiry it returns (package memo). The proxy keeps
// the signed assertion JWT and the identity headers of each route here, so it signs and
// builds them once per session and route rather than once per request. Read-only.
func (s *Session) Remember(key string, now time.Time, derive func() (any, time.Time, error)) (any, error) {
	return s.memo.Remember(key, now, derive)
}
