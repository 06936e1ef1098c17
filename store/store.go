// Package store defines what callgate keeps between requests as interfaces, independent of
// any backend: users, accounts, server-side sessions and verification tokens (shaped like
// NextAuth's adapter) plus what a gateway needs: revocations, rate-limit counters, locks
// and users' second factors (passkeys, TOTP, recovery codes).
//
// Nothing in this package knows about HTTP, cookies or scripts. Backends live in
// sub-packages (store/bolt is the embedded default, store/redis serves many replicas) and
// must return ErrNotFound for a missing record and a wrapped, distinct error when the
// backend itself fails (ErrUnavailable when it cannot be reached), so callers can tell "no
// such user" from "the store is down". Backends never store a session token itself, only
// its hash.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound reports that the record asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrDuplicate reports that a unique field (username or e-mail) is already taken.
// Backends wrap it with the field and value: errors.Is(err, ErrDuplicate) still holds.
var ErrDuplicate = errors.New("already exists")

// ErrUnavailable reports that the backend could not be reached or did not answer in time.
// It is never ErrNotFound: a caller must fail closed, not treat the record as missing.
var ErrUnavailable = errors.New("store unavailable")

// User is one account that can sign in with credentials.
//
// The JSON shape of a user as scripts see it (users.findOne) is a MongoDB-style document:
// {_id, username, name, email, role, password, ...Extra}. Extra holds every other field of
// an imported record, kept verbatim; its values are what encoding/json decodes into `any`
// (string, float64, bool, nil, []any, map[string]any) and its keys may not be one of the
// document's own field names (ValidateUser refuses them).
type User struct {
	ID           string // 24 lowercase hex characters, like a MongoDB ObjectId
	Username     string // unique, compared exactly
	Name         string
	Email        string // unique, compared case-insensitively; may be empty
	Role         string
	PasswordHash string         // bcrypt ($2a$, $2b$ or $2y$); empty means no password sign-in
	Extra        map[string]any // other stored fields, JSON-shaped values
	CreatedAt    time.Time
}

// UserQuery selects one user by its fields. The zero fields are ignored; when several are
// set, all must match. A query with no field set is an error, not "not found".
type UserQuery struct {
	ID       string
	Username string
	Email    string
}

// Users is the user directory.
type Users interface {
	// CreateUser stores a new user. An empty ID is filled with a fresh one (NewUserID) and a
	// zero CreatedAt with the current time; the stored user is returned. A taken ID, username
	// or e-mail gives an error wrapping ErrDuplicate; a user ValidateUser refuses, an error.
	CreateUser(ctx context.Context, u User) (User, error)
	// ImportUsers stores all users or none: a duplicate (against the store or within the
	// batch) aborts the whole import with an error naming the record by its index in users
	// and wrapping ErrDuplicate.
	ImportUsers(ctx context.Context, users []User) error
	// UpdateUser applies patch to the user with this ID and returns the stored result; the
	// ID and CreatedAt never change. Atomically with the write, a username or e-mail taken
	// by another user (e-mails compared case-insensitively) is refused with an error naming
	// the field and wrapping ErrDuplicate, and the values it gives up are freed for others.
	// A missing user is ErrNotFound; a result ValidateUser refuses (UserPatch.Apply), an
	// error. A refused update changes nothing.
	UpdateUser(ctx context.Context, id string, patch UserPatch) (User, error)
	// FindUser returns the user matching q, or ErrNotFound.
	FindUser(ctx context.Context, q UserQuery) (User, error)
	// ListUsers returns every user, ordered by username (byte-wise).
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes the user with this ID, username or e-mail, or returns ErrNotFound.
	DeleteUser(ctx context.Context, q UserQuery) error
	// CountUsers returns how many users are stored.
	CountUsers(ctx context.Context) (int, error)
}

// Store is everything a backend provides.
type Store interface {
	Users
	Sessions
	Accounts
	VerificationTokens
	Revocations
	RateLimits
	Locks
	Factors
	// Ping reports whether the backend can be reached.
	Ping(ctx context.Context) error
	Close() error
}
