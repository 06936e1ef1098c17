package engine

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
)

// Session is a request's session as read from its cookie, for code outside /api/auth/*
// (the reverse proxy and forward-auth) that must know who a request is on every request.
//
// A Session is shared by every request that carries the same cookie while it sits in the
// engine's cache: the maps it returns must be treated as read-only.
type Session struct {
	token   map[string]any
	expires time.Time
	engine  *Engine
	// user is the store's user record under the database strategy; nil for jwt.
	user map[string]any

	// Every request with this cookie reads auth and memo, often from several cores at once:
	// reads are lock-free loads of immutable values, and the rare writes replace them.
	auth atomic.Pointer[authValue]            // the session callback's result, for one generation
	memo atomic.Pointer[map[string]memoEntry] // per-session values callers derive (signed assertions, headers); never modified, replaced
	mu   sync.Mutex                           // serialises memo's writers
}

type authValue struct {
	gen   *script.Generation
	value map[string]any
}

type memoEntry struct {
	value   any
	expires time.Time
}

// maxMemoEntries bounds Remember per session: a callback that derives a different key on
// every request (a claim holding the path, say) must not grow a session without limit.
const maxMemoEntries = 16

// Token returns the decoded session token (sub, name, email, iat, exp, jti and whatever the
// jwt callback added). Read-only.
func (s *Session) Token() map[string]any { return s.token }

// Expires is when the session token expires.
func (s *Session) Expires() time.Time { return s.expires }

// Auth returns the session as the session callback shapes it (NextAuth's `auth`): the
// default session built from the token, passed through callbacks.session when gen defines
// it. It is computed on first use and kept for the life of this Session, per generation,
// so the proxy's hot path pays for the session callback once per cached cookie, not once
// per request. Read-only.
//
// Unlike GET /api/auth/session, the jwt callback does not run here: the proxy reads the
// token as it was issued, as NextAuth's middleware does.
func (s *Session) Auth(ctx context.Context, gen *script.Generation) (map[string]any, error) {
	if cached := s.auth.Load(); cached != nil && cached.gen == gen {
		return cached.value, nil
	}
	if s.user != nil {
		session, err := databaseAuth(ctx, gen, s)
		if err != nil {
			return nil, err
		}
		s.auth.Store(&authValue{gen: gen, value: session})
		return session, nil
	}
	cfg := gen.Config()
	session := map[string]any{
		"user":    defaultSessionUser(s.token),
		"expires": s.engine.now().Add(cfg.Session.MaxAge).UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if gen.Has("callbacks.session") {
		res, err := gen.Call(ctx, "callbacks.session", map[string]any{"session": session, "token": s.token})
		if err != nil {
			return nil, fmt.Errorf("session callback: %w", err)
		}
		session, _ = res.(map[string]any)
	}
	s.auth.Store(&authValue{gen: gen, value: session})
	return session, nil
}

// Remember returns the value stored under key while it is still valid at now, else calls
// derive, stores its result until the expiry it returns, and returns it. The proxy keeps the
// signed assertion JWT and the identity headers of each route here, so it signs and builds
// them once per session and route rather than once per request. Values are shared by every
// request of the session: read-only.
func (s *Session) Remember(key string, now time.Time, derive func() (any, time.Time, error)) (any, error) {
	if memo := s.memo.Load(); memo != nil {
		if m, ok := (*memo)[key]; ok && now.Before(m.expires) {
			return m.value, nil
		}
	}
	v, exp, err := derive()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[string]memoEntry
	if memo := s.memo.Load(); memo != nil {
		old = *memo
	}
	if _, ok := old[key]; ok || len(old) < maxMemoEntries {
		next := make(map[string]memoEntry, len(old)+1)
		for k, e := range old {
			next[k] = e
		}
		next[key] = memoEntry{value: v, expires: exp}
		s.memo.Store(&next)
	}
	return v, nil
}

// SessionFromRequest returns the session of r, or nil when r carries no valid session (no
// cookie, or one that is expired, tampered or from another secret). The error is for
// failures of the gateway itself, never for a bad cookie.
//
// This is the one place outside /api/auth/* that reads sessions: with the jwt strategy it
// reassembles the cookie chunks and decrypts the token, with no store round trip; the
// session strategy is switched inside this method and nowhere else, so callers do not
// change when sessions live in the store.
//
// Decoded cookies are cached (bounded, keyed by the cookie value, expiring with the token
// and after at most sessionCacheTTL), because decrypting a JWE costs more than the rest of
// a proxied request's gateway work together. The short bound keeps a revoked or rotated-out
// secret from being honoured for long.
func (e *Engine) SessionFromRequest(r *http.Request) (*Session, error) {
	cfg := e.Generation().Config()
	set := e.cookieSet(secureCookies(&cfg, e.origin))
	raw := cookie.SessionValue(r.Header, set.SessionToken)
	if raw == "" {
		return nil, nil
	}
	if cfg.Session.Strategy == "database" {
		return e.databaseSessionFromRequest(r.Context(), raw)
	}
	now := e.now()
	if s := e.sessions.get(raw, now); s != nil {
		return e.unlessRevoked(r.Context(), s)
	}
	claims, err := e.keys.Decode(raw)
	if err != nil {
		e.log.DebugContext(r.Context(), "session token rejected", "code", "JWT_SESSION_ERROR", "reason", err.Error())
		return nil, nil
	}
	s := &Session{token: claims, engine: e}
	if exp, ok := claims["exp"].(float64); ok {
		s.expires = time.Unix(int64(exp), 0)
	}
	e.sessions.put(raw, s, now)
	return e.unlessRevoked(r.Context(), s)
}

// sessionCacheSize bounds the decoded-session cache: at a few KiB per entry, about 20 MiB
// in the worst case, and far more distinct sessions than one replica sees in a minute.
const sessionCacheSize = 4096

// sessionCacheTTL bounds how long a decoded cookie is reused: long enough that a busy
// session decodes a few times a minute rather than on every request, short enough that
// the session callback's view (auth) and any revocation catch up quickly.
const sessionCacheTTL = 15 * time.Second

// sessionCache maps cookie values to decoded sessions. Safe for concurrent use. Every
// proxied request reads it, from every core: a read is a lock-free load; writes (one per
// cookie every sessionCacheTTL) and evictions take the mutex.
type sessionCache struct {
	max     int
	entries sync.Map // string → sessionEntry

	mu    sync.Mutex // serialises writers
	count int        // entries stored, under mu
}

type sessionEntry struct {
	session *Session
	until   time.Time
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max}
}

func (c *sessionCache) get(key string, now time.Time) *Session {
	v, ok := c.entries.Load(key)
	if !ok {
		return nil
	}
	e := v.(sessionEntry)
	if !now.Before(e.until) {
		return nil
	}
	return e.session
}

func (c *sessionCache) put(key string, s *Session, now time.Time) {
	until := now.Add(sessionCacheTTL)
	if !s.expires.IsZero() && s.expires.Before(until) {
		until = s.expires
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count >= c.max {
		c.evict(now)
	}
	if _, loaded := c.entries.Swap(key, sessionEntry{session: s, until: until}); !loaded {
		c.count++
	}
}

// evict drops expired entries, then, if the cache is still full, an arbitrary quarter of it
// (map order is random): cheap, and a dropped session only costs one more decode. Call it
// with mu held.
func (c *sessionCache) evict(now time.Time) {
	c.entries.Range(func(k, v any) bool {
		if !now.Before(v.(sessionEntry).until) {
			c.entries.Delete(k)
			c.count--
		}
		return true
	})
	drop := c.count - c.max*3/4
	c.entries.Range(func(k, _ any) bool {
		if drop <= 0 {
			return false
		}
		c.entries.Delete(k)
		c.count--
		drop--
		return true
	})
}
