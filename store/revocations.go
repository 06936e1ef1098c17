package store

import (
	"context"
	"time"
)

// Revocation ends sessions that the store cannot delete because it never held them: the
// encrypted JWTs of the "jwt" strategy. It names either a user (every token of that user
// issued at or before Before) or one token by its ID (the jti claim).
type Revocation struct {
	// UserID, when set, revokes the user's tokens issued at or before Before.
	UserID string
	Before time.Time
	// TokenID, when set, revokes the token with this jti.
	TokenID string
	// Expires is when the revocation may be forgotten: when every token it covers has
	// expired anyway. A revocation that outlived its tokens is noise.
	Expires time.Time
}

// RevocationState is what the store knows about one token: whether its user was revoked
// (and up to when) and whether the token itself was.
type RevocationState struct {
	// UserBefore is the latest Before of the user's unexpired revocations; zero when none.
	UserBefore time.Time
	// TokenRevoked is true when the token ID was revoked.
	TokenRevoked bool
}

// Revoked reports whether a token of userID with this jti, issued at issuedAt, is revoked.
func (s RevocationState) Revoked(issuedAt time.Time) bool {
	if s.TokenRevoked {
		return true
	}
	// Token times have whole seconds: a token issued in the same second as the
	// revocation is revoked too, erring on the safe side.
	return !s.UserBefore.IsZero() && issuedAt.Unix() <= s.UserBefore.Unix()
}

// Revocations keeps revocations and tells every gateway replica about new ones.
type Revocations interface {
	// Revoke stores r and announces it to every subscriber, on every replica sharing the
	// store. A user revocation keeps the latest Before and the latest Expires of any
	// revocation of that user.
	Revoke(ctx context.Context, r Revocation) error
	// RevocationState returns the state of a user and a token ID in one read. Either may be
	// empty. Nothing revoked is the zero state, not ErrNotFound.
	RevocationState(ctx context.Context, userID, tokenID string) (RevocationState, error)
	// ListRevocations returns every unexpired revocation, one per user (with its latest
	// Before) and one per token. Revocations are rare and expire with their tokens, so a
	// gateway can hold them all in memory and check tokens without a store read.
	ListRevocations(ctx context.Context) ([]Revocation, error)
	// SubscribeRevocations calls fn for every revocation announced after it returns, until
	// ctx ends. fn is also called with the zero Revocation whenever announcements may have
	// been missed (the connection to the backend was lost and restored): a subscriber that
	// caches revocation state must then drop its cache. fn must not block for long.
	SubscribeRevocations(ctx context.Context, fn func(Revocation)) error
}

// RateLimits are fixed-window counters shared by every replica, for counting sign-in
// attempts per username and per client address.
//
// A caller reserves a slot with Increment before doing the work the counter limits, so
// that parallel callers, on any replica, each see a distinct count and no more than the
// limit get through; it gives the slot back with Release when the attempt turned out not
// to count (a successful sign-in is not a failure).
type RateLimits interface {
	// Increment adds one to the counter named key, atomically (parallel callers get
	// distinct counts), and returns its new value and when the window ends. The first
	// increment of a window starts it, window long; the window is set in the same atomic
	// step, so a counter never outlives it.
	Increment(ctx context.Context, key string, window time.Duration) (count int64, resetAt time.Time, err error)
	// Release takes back one increment made in the window that ends at resetAt (the time
	// Increment returned). It is a no-op when that window has ended, even if a new one has
	// started since (a slot of an old window must not free one of the new), and when the
	// counter is already 0: it never goes below 0 and never creates a counter. A counter
	// released to 0 is deleted, like ResetCount.
	Release(ctx context.Context, key string, resetAt time.Time) error
	// Count returns the counter's value and when its window ends; a counter never
	// incremented or past its window is 0 with a zero time.
	Count(ctx context.Context, key string) (count int64, resetAt time.Time, err error)
	// ResetCount deletes the counter.
	ResetCount(ctx context.Context, key string) error
}

// Locks are short leases shared by every replica (for example so that only one replica
// refreshes a provider token at a time).
type Locks interface {
	// AcquireLock takes the lock named name for ttl unless someone else holds it. It returns
	// a fencing token for ReleaseLock and whether the lock was taken.
	AcquireLock(ctx context.Context, name string, ttl time.Duration) (token string, ok bool, err error)
	// RenewLock extends the lock to ttl from now if token still holds it, so a holder whose
	// work outlasts the first ttl keeps the lease; it reports false when the lock was lost
	// (expired, or taken by someone else).
	RenewLock(ctx context.Context, name, token string, ttl time.Duration) (bool, error)
	// ReleaseLock gives the lock back if token still holds it; releasing a lock that expired
	// or was taken by someone else is a no-op.
	ReleaseLock(ctx context.Context, name, token string) error
}
