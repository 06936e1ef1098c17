package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// databaseStrategy is the "database" strategy: the cookie holds an opaque random token, the
// store holds the session under the token's SHA-256 hash with the user id and expiry.
// Unlike NextAuth, it works with credentials sign-in too: that flow creates a store session
// instead of a JWT.
type databaseStrategy struct {
	o Options
	// cache keeps recent store reads for the proxy's hot path (cache.go).
	cache *dbCache
}

// unavailable wraps a store failure in ErrStoreUnavailable.
func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrStoreUnavailable, err) }

// newToken is NextAuth's generateSessionToken fallback: 32 random bytes as hex. It is never
// chunked (64 characters) and never stored: the store keys on its hash.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate session token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Read is NextAuth's database session read: the session and its user (one store read),
// deleted when expired, extended once updateAge has passed, session({session, user,
// newSession, trigger?}) with the stored expiry, and the cookie re-sent with a fresh one.
//
// A store that cannot be reached is ErrStoreUnavailable: never "no session", which would
// sign the user out, and never an answer for a session nobody could check.
func (s *databaseStrategy) Read(ctx context.Context, gen *script.Generation, raw string, u Update) (Read, error) {
	if raw == "" {
		return Read{}, nil
	}
	st := s.o.Store
	if st == nil {
		return Read{}, ErrNoStore
	}
	id := store.SessionID(raw)
	sess, usr, err := st.GetSessionAndUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Read{Clear: true}, nil
	}
	if err != nil {
		return Read{}, unavailable(err)
	}
	now := s.o.Now()
	if !sess.Expires.After(now) {
		if _, err := st.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.o.Log.WarnContext(ctx, "could not delete an expired session", "code", "SESSION_ERROR", "error", err.Error())
		}
		return Read{Clear: true}, nil
	}
	if revoked, err := s.providerRevoked(ctx, sess); err != nil {
		return Read{}, err
	} else if revoked {
		s.o.Log.InfoContext(ctx, "session ended by its provider", "code", "SESSION_ERROR", "reason", "back-channel logout")
		if _, err := st.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.o.Log.WarnContext(ctx, "could not delete a session its provider ended", "code", "SESSION_ERROR", "error", err.Error())
		}
		s.cache.remove(id)
		return Read{Clear: true}, nil
	}
	cfg := gen.Config()
	life, ok := lifetime(cfg.Session, sess.CreatedAt, now)
	if !ok {
		if _, err := st.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.o.Log.WarnContext(ctx, "could not delete a session past its absolute lifetime", "code", "SESSION_ERROR", "error", err.Error())
		}
		return Read{Clear: true}, nil
	}
	if next, due := extension(cfg.Session, sess.CreatedAt, sess.Expires, now); due {
		err := st.ExtendSession(ctx, id, next)
		if errors.Is(err, store.ErrNotFound) {
			return Read{Clear: true}, nil
		}
		if err != nil {
			return Read{}, unavailable(err)
		}
	}
	user := usr.AdapterUser()
	arg := script.SessionArgs{User: present(user), NewSession: orNull(u.Data)}
	if u.Update {
		arg.Trigger = "update"
	}
	// The stored expiry, not the extended one, as NextAuth answers.
	body, err := shape(ctx, gen, sessionUser(user, "image"), sess.Expires, arg)
	if err != nil {
		return Read{}, err
	}
	return Read{
		Active: true, Body: body, Set: &Cookie{Value: raw, Expires: now.Add(life)},
		Event: map[string]any{"session": body},
	}, nil
}

// Issue creates a store session for the signed-in user, who must be one of the store's.
func (s *databaseStrategy) Issue(ctx context.Context, gen *script.Generation, in SignIn) (Cookie, error) {
	if s.o.Store == nil {
		return Cookie{}, ErrNoStore
	}
	if !in.HasID {
		return Cookie{}, ErrNoUserID
	}
	tok, err := newToken()
	if err != nil {
		return Cookie{}, err
	}
	now := s.o.Now()
	life, _ := lifetime(gen.Config().Session, now, now)
	expires := now.Add(life)
	rec := store.Session{ID: store.SessionID(tok), UserID: in.UserID, Expires: expires, CreatedAt: now}
	if ps := in.ProviderSession; ps != nil {
		rec.Provider, rec.ProviderSubject, rec.ProviderSessionID = ps.Provider, ps.Subject, ps.SID
	}
	if in.AMR != nil {
		rec.AMR, rec.AuthTime = in.AMR, now
	}
	if err := s.o.Store.CreateSession(ctx, rec); err != nil {
		return Cookie{}, unavailable(err)
	}
	return Cookie{Value: tok, Expires: expires}, nil
}

// End deletes the store session and reports it for events.signOut({session}). A store that
// cannot be reached is ErrStoreUnavailable: the caller keeps the cookie, so the user can try
// again rather than believe a live session has ended.
func (s *databaseStrategy) End(ctx context.Context, raw string) (map[string]any, error) {
	if s.o.Store == nil {
		return nil, ErrNoStore
	}
	id := store.SessionID(raw)
	sess, err := s.o.Store.DeleteSession(ctx, id)
	s.cache.remove(id)
	switch {
	case err == nil:
		return map[string]any{"session": map[string]any{
			"sessionToken": raw, "userId": sess.UserID, "expires": sess.Expires.UTC().Format(isoMillis),
		}}, nil
	case errors.Is(err, store.ErrNotFound):
		s.o.Log.InfoContext(ctx, "sign-out with an unknown session", "code", "SIGNOUT_ERROR")
		return nil, nil
	default:
		return nil, unavailable(err)
	}
}

// Lookup is one store read, reused for dbCacheTTL. The Session's token holds the claims the
// proxy reads (sub, name, email, picture, role, exp) built from the user record.
func (s *databaseStrategy) Lookup(ctx context.Context, raw string) (*Session, error) {
	if s.o.Store == nil {
		return nil, ErrNoStore
	}
	id := store.SessionID(raw)
	now := s.o.Now()
	entry, ok := s.cache.get(id, now)
	if !ok {
		sess, u, err := s.o.Store.GetSessionAndUser(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, unavailable(err)
		}
		entry = dbEntry{session: sess, user: u, until: now.Add(dbCacheTTL)}
		s.cache.put(id, entry, now)
	}
	if !entry.session.Expires.After(now) {
		return nil, nil
	}
	if revoked, err := s.providerRevoked(ctx, entry.session); err != nil || revoked {
		return nil, err
	}
	user := entry.user.AdapterUser()
	claims := map[string]any{"sub": entry.user.ID, "name": entry.user.Name, "email": user["email"],
		"exp": float64(entry.session.Expires.Unix())}
	if v, ok := user["image"]; ok {
		claims["picture"] = v
	}
	if entry.user.Role != "" {
		claims["role"] = entry.user.Role
	}
	if entry.session.AMR != nil {
		claims[AMRClaim], claims[AuthTimeClaim] = entry.session.AMR, float64(entry.session.AuthTime.Unix())
	}
	return &Session{token: claims, expires: entry.session.Expires, now: s.o.Now, user: user, raw: raw, signedIn: entry.session.CreatedAt}, nil
}

// extensionDue is NextAuth's updateAge rule for a stored session: it is extended once
// updateAge has passed since it was last extended (its expiry less maxAge). GET /session
// and the proxy's renewal both apply it.
func extensionDue(expires time.Time, o script.SessionOptions, now time.Time) bool {
	return !expires.Add(-o.MaxAge).Add(o.UpdateAge).After(now)
}

// providerRevoked reports whether sess, started from a provider session, was ended by its
// provider (a back-channel logout): the revocation list's answer, in memory.
func (s *databaseStrategy) providerRevoked(ctx context.Context, sess store.Session) (bool, error) {
	if sess.Provider == "" || s.o.ProviderRevoked == nil {
		return false, nil
	}
	return s.o.ProviderRevoked(ctx, ProviderSession{Provider: sess.Provider, Subject: sess.ProviderSubject, SID: sess.ProviderSessionID}, sess.CreatedAt)
}

// EndProvider revokes the provider session through the revocation list, as the jwt
// strategy does: every replica's reads refuse (and delete) the sessions that record it.
// When the logout names the subject, the sessions of the user linked to that provider
// account are found and deleted at once too, each reported for events.signOut({session});
// a logout naming only a sid cannot name its sessions (the store keeps no index by sid),
// and is reported once, with the provider session.
func (s *databaseStrategy) EndProvider(ctx context.Context, l ProviderLogout) ([]map[string]any, error) {
	st := s.o.Store
	if st == nil || s.o.RevokeProvider == nil {
		return nil, ErrNoStore
	}
	if err := s.o.RevokeProvider(ctx, l); err != nil {
		return nil, err
	}
	anonymous := []map[string]any{{"session": l.Token}}
	if l.Subject == "" {
		return anonymous, nil
	}
	acc, err := st.FindAccount(ctx, l.Provider, l.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return anonymous, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	list, err := st.ListSessions(ctx, acc.UserID)
	if err != nil {
		return nil, unavailable(err)
	}
	var events []map[string]any
	for _, sess := range list {
		if sess.Provider != l.Provider || (l.SID != "" && sess.ProviderSessionID != l.SID) || (l.SID == "" && sess.ProviderSubject != l.Subject) {
			continue
		}
		// Signed in after the provider's logout (whose iat counts whole seconds): not its
		// session.
		if l.SID == "" && !l.Before.IsZero() && sess.CreatedAt.After(l.Before.Add(time.Second)) {
			continue
		}
		if _, err := st.DeleteSession(ctx, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, unavailable(err)
		}
		s.cache.remove(sess.ID)
		// The store keeps the token's hash only: the event names the session by its user,
		// expiry and provider session, without its sessionToken.
		ended := map[string]any{"userId": sess.UserID, "expires": sess.Expires.UTC().Format(isoMillis)}
		for k, v := range l.Token {
			ended[k] = v
		}
		events = append(events, map[string]any{"session": ended})
	}
	if len(events) == 0 {
		return anonymous, nil
	}
	return events, nil
}

// Reauthenticate replaces the store session of raw with a new one recording the new
// authentication: a new session id, as after any change of what a session may do, so a
// copy of the old cookie does not gain the step-up. The new session keeps the user, the
// provider session and the sign-in time, and ends the old one.
func (s *databaseStrategy) Reauthenticate(ctx context.Context, gen *script.Generation, raw string, amr []string) (Cookie, error) {
	if s.o.Store == nil {
		return Cookie{}, ErrNoStore
	}
	now := s.o.Now()
	oldID := store.SessionID(raw)
	old, _, err := s.o.Store.GetSessionAndUser(ctx, oldID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !old.Expires.After(now)) {
		return Cookie{}, ErrNoSession
	}
	if err != nil {
		return Cookie{}, unavailable(err)
	}
	tok, err := newToken()
	if err != nil {
		return Cookie{}, err
	}
	life, _ := lifetime(gen.Config().Session, old.CreatedAt, now)
	rec := old
	rec.ID, rec.Expires, rec.AMR, rec.AuthTime = store.SessionID(tok), now.Add(life), amr, now
	if err := s.o.Store.CreateSession(ctx, rec); err != nil {
		return Cookie{}, unavailable(err)
	}
	if _, err := s.o.Store.DeleteSession(ctx, oldID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.o.Log.WarnContext(ctx, "end the session a step-up replaced", "code", "SESSION_ERROR", "error", err.Error())
	}
	s.cache.remove(oldID)
	return Cookie{Value: tok, Expires: rec.Expires}, nil
}
