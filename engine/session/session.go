// Package session owns the session strategies behind one interface: "jwt" (the session
// lives in an encrypted token in the cookie, engine/token) and "database" (the cookie holds
// an opaque id, the session lives in the store). It reads a session (GET and POST
// /api/auth/session, renewing it with a fresh expiry), issues one at sign-in, ends one at
// sign-out, and gives the reverse proxy its cheap read (Session, with the caches that keep
// that read off the crypto and the store on the hot path) and its renewal (renew.go: the
// sliding expiry and the OAuth refresh of a session read, at most once per updateAge), all
// within the session's lifetime (lifetime.go: maxAge idle, absoluteMaxAge from sign-in).
//
// It is a package of its own so that the strategy is decided in one place: the engine asks
// Sessions.For for the configured Strategy and never compares strategy names itself. It
// knows the token codec, the store and the script generation (to run the jwt and session
// callbacks); it knows nothing of HTTP or cookies: a Strategy returns values (a cookie value
// and its expiry, or that the cookie must go) and the engine writes the Set-Cookie headers
// (engine/session.go). Revocations and OAuth token refresh are hooks the engine passes in
// (Options), so this package needs neither the guard nor the OAuth client.
package session

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/store"
)

// Errors a Strategy returns, wrapped, so the engine can answer each its own way.
var (
	// ErrNoStore is a configuration error: the scripts ask for database sessions but the
	// gateway was started without a store for them.
	ErrNoStore = errors.New(`session.strategy is "database" but the gateway has no session store`)
	// ErrNoUserID refuses a database session for a user that is not the store's: every
	// session read loads the user by id.
	ErrNoUserID = errors.New("the signed-in user has no id: database sessions need the store user's id")
	// ErrStoreUnavailable wraps a store failure: a session nobody could check, never "no
	// session".
	ErrStoreUnavailable = errors.New("the session store is unavailable")
	// ErrDenied is the jwt callback returning null at sign-in: NextAuth's AccessDenied.
	ErrDenied = errors.New("the jwt callback returned null")
	// ErrEncode is a session token that could not be encoded.
	ErrEncode = errors.New("encode session token")
	// ErrNoSession is a reauthentication of a cookie that is no valid session.
	ErrNoSession = errors.New("no valid session to reauthenticate")
)

// CallbackError is a jwt or session callback that failed while a session was issued.
type CallbackError struct {
	Callback string
	Err      error
}

func (e *CallbackError) Error() string { return e.Callback + ": " + e.Err.Error() }
func (e *CallbackError) Unwrap() error { return e.Err }

// Strategy is one session strategy. Safe for concurrent use.
type Strategy interface {
	// Read is the session read of GET and POST /api/auth/session for the cookie value raw
	// ("" when the request has none): the callbacks run, and the result says how the
	// cookie is renewed (sliding expiry) or removed. An error is the gateway's failure (a
	// callback, the store), never a bad cookie: the caller answers it and keeps the cookie.
	Read(ctx context.Context, gen *script.Generation, raw string, u Update) (Read, error)
	// Issue starts the session of a user who has just signed in.
	Issue(ctx context.Context, gen *script.Generation, in SignIn) (Cookie, error)
	// End ends the session of raw at sign-out. It returns events.signOut's argument, nil
	// when there is nothing to report (an unknown or invalid session).
	End(ctx context.Context, raw string) (map[string]any, error)
	// Lookup is the reverse proxy's read of raw: no callback runs (Session.Auth runs the
	// session callback on demand), and reads are cached. nil means no valid session.
	Lookup(ctx context.Context, raw string) (*Session, error)
	// Renew is the reverse proxy's renewal of a session Lookup returned, when it is due
	// (session.updateAge has passed, or its OAuth access token is due for refresh): the
	// sliding expiry and the refresh of GET /api/auth/session, for requests that never
	// reach it. Nothing due costs a clock comparison and returns s unchanged. An error is
	// the gateway's failure (a callback, the store): the caller judges the request by s,
	// which is still valid, and sends no cookie.
	Renew(ctx context.Context, gen *script.Generation, s *Session) (Renewal, error)
	// EndProvider ends the sessions started from a provider session that the provider
	// has ended (a back-channel logout), on every replica sharing the store. It returns
	// an events.signOut argument per session it can name.
	EndProvider(ctx context.Context, l ProviderLogout) ([]map[string]any, error)
	// Reauthenticate records a new authentication of the session of raw (a step-up: the
	// user proved a factor again) and returns the cookie of the session it becomes, whose
	// amr is amr and whose auth_time is now. ErrNoSession when raw is no valid session.
	Reauthenticate(ctx context.Context, gen *script.Generation, raw string, amr []string) (Cookie, error)
}

// Renewal is the outcome of Strategy.Renew.
type Renewal struct {
	// Session is the session to judge the request by: the renewed one, or the one given
	// when nothing was due; nil when the renewal ended it (Clear).
	Session *Session
	// Set is the renewed cookie for the response, nil when nothing was due.
	Set *Cookie
	// Clear asks for the session cookie to be deleted: the jwt callback returned null, the
	// provider refused the refresh, or the store no longer has the session.
	Clear bool
}

// ProviderSession is the OpenID Connect provider session a sign-in came from: the
// provider's id, its ID token's sub and sid (SID may be empty).
type ProviderSession struct {
	Provider, Subject, SID string
}

// ProviderLogout is a provider session the provider has ended: by Subject (the provider's
// sub), SID, or both.
type ProviderLogout struct {
	ProviderSession
	// Token is what the jwt strategy reports to events.signOut({token}): the browser holds
	// the session tokens, so it is the part of them the logout names.
	Token map[string]any
	// TTL is how long a revocation must last: the longest a session token lives.
	TTL time.Duration
	// Before is the latest sign-in a logout by Subject alone ends: the logout token's
	// issue time (or now, when that is later). A provider's retry of the same logout
	// must not end a session started between the two attempts.
	Before time.Time
}

// Update is what a session read was asked to do besides reading.
type Update struct {
	// Update is POST /session (useSession().update()): trigger "update".
	Update bool
	// Data is the client's data for it (script.Undefined when none).
	Data any
}

// Cookie is a session cookie value to write, with its expiry.
type Cookie struct {
	Value   string
	Expires time.Time
}

// Read is the outcome of a session read.
type Read struct {
	// Active is set when a session was read: Body is the session callback's result, the
	// /session body as JSON.stringify wrote it, and Set the renewed cookie. Otherwise the
	// body is {}.
	Active bool
	Body   script.JSON
	Set    *Cookie
	// Clear asks for the session cookie to be deleted: the session ended or never was valid.
	Clear bool
	// Event is events.session's argument, nil when there is none.
	Event map[string]any
}

// SignIn is a user who has just signed in, and how.
type SignIn struct {
	// User and Account are what the signIn callback saw; Profile is the OAuth profile
	// (passed to jwt only with WithProfile, as NextAuth passes it only for OAuth).
	User, Account map[string]any
	Profile       map[string]any
	WithProfile   bool
	// IsNewUser is set when the sign-in created the user (jwt's trigger is then "signUp").
	IsNewUser bool
	// UserID is String(user.id) and HasID whether there is one: the token's sub, and the
	// store user a database session belongs to.
	UserID string
	HasID  bool
	// Claims, when set, are put on the jwt callback's result before it is encoded (the OAuth
	// refresh claim), in place or appended; their names are plain keys.
	Claims map[string]any
	// ProviderSession, when set, is the provider session of a sign-in with a provider that
	// has single logout on: a database session records it (the jwt strategy's token
	// carries it in Claims).
	ProviderSession *ProviderSession
	// AMR, when set, is how the user authenticated (RFC 8176 method names: "pwd", "otp",
	// "hwk", "mfa"): the session records it with the time, as the token's amr and
	// auth_time claims (jwt) or the stored session's (database), so authorized() can ask
	// for a recent or a stronger authentication. Unset, the token is NextAuth's exactly.
	AMR []string
}

// Refreshed is the outcome of the Refresh hook on a decoded token (engine/oauth's refresh).
type Refreshed struct {
	// Token is the token to hand to jwt.
	Token map[string]any
	// JWTArg, when set, replaces the jwt callback's argument.
	JWTArg *script.JWTArgs
	// Claims, when set, are put on the jwt callback's result (the refresh claim put back),
	// as SignIn.Claims.
	Claims map[string]any
	// End ends the session; Reason says why, for the log.
	End    bool
	Reason string
}

// Options configure Sessions.
type Options struct {
	// Keys encode and decode jwt session tokens, in the configured format (jwe or jws).
	Keys token.Codec
	// Store keeps database sessions; nil makes the database strategy fail with ErrNoStore.
	Store store.Store
	// Now is the clock that decides expiries, renewals and cache lifetimes; nil means time.Now.
	Now func() time.Time
	// Log receives the session log codes (JWT_SESSION_ERROR, ...); nil means slog.Default().
	Log *slog.Logger
	// Revoked reports whether decoded jwt claims are revoked; nil means never.
	Revoked func(ctx context.Context, claims map[string]any) (bool, error)
	// Refresh refreshes a decoded jwt token's OAuth access token when due; nil means never.
	Refresh func(ctx context.Context, gen *script.Generation, token map[string]any) (Refreshed, error)
	// RefreshDueAt is when Refresh will act on a decoded jwt token (false: never), so the
	// proxy's read can tell with a clock comparison that nothing is due; nil means never.
	RefreshDueAt func(gen *script.Generation, token map[string]any) (time.Time, bool)
	// RevokeProvider revokes the sessions of an ended provider session (the revocation
	// list, engine/guard); nil means back-channel logout is unavailable.
	RevokeProvider func(ctx context.Context, l ProviderLogout) error
	// ProviderRevoked reports whether a session started from provider session ps at
	// issuedAt was ended by its provider; the database strategy asks it on every read of a
	// session that records one (the jwt strategy's Revoked reads the token's claim). nil
	// means never.
	ProviderRevoked func(ctx context.Context, ps ProviderSession, issuedAt time.Time) (bool, error)
	// KeptClaims are the core's own claims (the provider session of single logout) that a
	// jwt session read copies from the decoded token onto the jwt callback's result, so a
	// callback that builds a new token object cannot drop them.
	KeptClaims []string
}

// Sessions holds both strategies and their caches. Safe for concurrent use.
type Sessions struct {
	jwt *jwtStrategy
	db  *databaseStrategy
}

// New returns the strategies configured by o.
func New(o Options) *Sessions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Revoked == nil {
		o.Revoked = func(context.Context, map[string]any) (bool, error) { return false, nil }
	}
	return &Sessions{
		jwt: &jwtStrategy{o: o, cache: newCache(cacheSize, cacheTTL)},
		db:  &databaseStrategy{o: o, cache: newDBCache(cacheSize)},
	}
}

// For returns the strategy cfg asks for: "database", or "jwt" (the default).
func (s *Sessions) For(cfg script.Config) Strategy {
	if cfg.Session.Strategy == "database" {
		return s.db
	}
	return s.jwt
}

// Clear drops every cached session read, so a revocation takes effect on the next request.
func (s *Sessions) Clear() {
	s.jwt.cache.clear()
	s.db.cache.clear()
}

// isoMillis is how NextAuth writes session expiries (Date.toISOString).
const isoMillis = "2006-01-02T15:04:05.000Z"

// shape is NextAuth's session as the browser sees it: the default session {user, expires},
// then callbacks.session({session, ...arg}) when gen defines it, as JSON in the key order
// NextAuth (or the script) built. Every session answer is built here: the jwt and database
// reads, and both of the proxy's (Session.Auth). arg's Session is set here.
func shape(ctx context.Context, gen *script.Generation, user script.Fields, expires time.Time, arg script.SessionArgs) (script.JSON, error) {
	session := defaultSession(user, expires)
	if !gen.Defines(script.CallbackSession) {
		return session.MarshalJSON()
	}
	arg.Session = session
	return gen.Session(ctx, arg)
}

// defaultSession is NextAuth's default session, {user, expires}, in that order.
func defaultSession(user script.Fields, expires time.Time) script.Fields {
	return script.Fields{{Key: "user", Value: user}, {Key: "expires", Value: expires.UTC().Format(isoMillis)}}
}

// sessionUser is NextAuth's default session.user, {name, email, image}, from the decoded
// token (before the jwt callback; its image is the picture claim) or the adapter's user
// (image). Missing fields are undefined keys; null ones stay null.
func sessionUser(from map[string]any, image string) script.Fields {
	return script.Fields{
		{Key: "name", Value: field(from, "name")},
		{Key: "email", Value: field(from, "email")},
		{Key: "image", Value: field(from, image)},
	}
}

// field is from[name], or script.Undefined when from has no such key: a field NextAuth
// reads with ?. and so may be an undefined key.
func field(from map[string]any, name string) any {
	if v, ok := from[name]; ok {
		return v
	}
	return script.Undefined
}

// present is m, or an empty map when m is nil: an argument key that is passed even when
// its value is missing (the script sees {}, as it saw a nil map in an argument map).
func present(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// orNull is v, or script.Null when v is nil: a typed argument's key the script sees as
// null, as it saw a nil value in an argument map.
func orNull(v any) any {
	if v == nil {
		return script.Null
	}
	return v
}
