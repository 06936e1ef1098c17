package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Session is a server-side session (the "database" session strategy): the browser holds an
// opaque random token, the store holds this record under the token's SHA-256 hash.
//
// Only the hash is ever stored, so a copy of the database (a backup, a replica, a leaked
// dump) cannot be replayed as session cookies.
type Session struct {
	// ID is SessionID(token): the lowercase hex SHA-256 of the cookie's session token.
	ID string
	// UserID is the ID of the user the session belongs to.
	UserID string
	// Expires is when the session ends unless it is extended.
	Expires time.Time
	// CreatedAt is when the user signed in.
	CreatedAt time.Time
	// Provider, ProviderSubject and ProviderSessionID name the OpenID Connect provider
	// session the sign-in came from (the provider's id, its ID token's sub and sid), for
	// providers with single logout on; empty otherwise. A back-channel logout from that
	// provider ends the session by them.
	Provider, ProviderSubject, ProviderSessionID string
	// AMR and AuthTime are how and when the user last authenticated (RFC 8176 method
	// names), when the sign-in or a step-up recorded them; empty otherwise.
	AMR      []string
	AuthTime time.Time
}

// SessionID returns the identifier a session token is stored under. Backends never see the
// token itself.
func SessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Sessions keeps server-side sessions, shaped like NextAuth's adapter (createSession,
// getSessionAndUser, updateSession, deleteSession) plus the per-user listing a gateway
// needs to sign a user out everywhere.
type Sessions interface {
	// CreateSession stores s. A taken ID gives an error wrapping ErrDuplicate. The record
	// and its entry in the user's session index are written together or not at all.
	CreateSession(ctx context.Context, s Session) error
	// GetSessionAndUser returns the session with this ID and its user in one read. A
	// missing session, or a session whose user no longer exists, is ErrNotFound. An expired
	// session is either ErrNotFound (backends with key expiry drop it by themselves) or
	// returned: the caller must check Expires and delete it, as NextAuth does.
	GetSessionAndUser(ctx context.Context, id string) (Session, User, error)
	// ExtendSession sets the session's expiry, or returns ErrNotFound.
	ExtendSession(ctx context.Context, id string, expires time.Time) error
	// DeleteSession removes the session and returns it, or returns ErrNotFound.
	DeleteSession(ctx context.Context, id string) (Session, error)
	// ListSessions returns the user's unexpired sessions, soonest expiry first.
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteUserSessions removes every session of the user and returns how many there were.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}
