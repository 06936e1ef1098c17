// Package guard holds the gateway's store-backed protections: the revocation list that
// signs a user out everywhere (revocations.go), the sign-in failure limits that stop
// password guessing (limits.go), and the revocations and replay protection of single
// logout from an OpenID Connect provider (logout.go).
//
// Both keep their state in the store, so every replica sharing it enforces the same
// revocations and counts the same failures, and both have a policy for when the store is
// down: revocations fail open or closed as configured, the limits fail open. They are a
// package of their own so that this policy lives in one place below the HTTP surface: guard
// knows the store and plain values (user IDs, token IDs, account names, client addresses),
// never a request or a response. The engine (engine/signinlimit.go, engine/revoked.go)
// turns a request into those values and a refusal into NextAuth's 429.
package guard

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/store"
)

// Options tune the store-backed protections: revocations (sign-out everywhere) and the
// sign-in failure limits. The zero value turns the limits off.
type Options struct {
	// RevocationFailOpen decides what a jwt session does while the gateway cannot know the
	// current revocations (the store is unreachable): true accepts the token (and logs it),
	// false answers 503. Database sessions always fail closed.
	RevocationFailOpen bool
	// RevocationResync is how often the in-memory revocation list is reloaded in full, as a
	// safety net under the announcements. 0 means 30s.
	RevocationResync time.Duration
	// MaxFailuresPerUsername and MaxFailuresPerAddress are how many failed credentials
	// sign-ins a username, or a client address, may have within FailureWindow before
	// further attempts are refused with 429 until the window ends. 0 turns a limit off.
	MaxFailuresPerUsername int
	MaxFailuresPerAddress  int
	// FailureWindow is the counting window and cool-down. 0 means 15 minutes.
	FailureWindow time.Duration
	// EmailSendsPerAddress and EmailSendsPerClient are how many sign-in e-mails one
	// address, or one client address, may be sent within EmailSendWindow (sends.go); past
	// a limit, requests are answered as if sent, and nothing is sent. 0 turns a limit off.
	EmailSendsPerAddress int
	EmailSendsPerClient  int
	// EmailSendWindow is the e-mail counting window. 0 means one hour.
	EmailSendWindow time.Duration
	// Addresses finds a sign-in's client address behind trusted proxies (the reverse
	// proxy's proxy.trusted_proxies). nil counts the TCP peer. Guard does not read it: the
	// engine uses it to find the address it passes to Limits.Reserve.
	Addresses *clientaddr.Resolver
}

// ErrStoreUnavailable is returned (wrapped) when a check needs the store and cannot reach
// it: jwt revocation checks under the fail-closed policy here, database sessions in the
// engine (which declares it as its own ErrStoreUnavailable).
var ErrStoreUnavailable = errors.New("the session store is unavailable")

// Guard is the store-backed protections of one gateway. Its Revocations and Limits are
// nil when it has no store; their methods treat a nil receiver as "nothing revoked, no
// limits". Safe for concurrent use.
type Guard struct {
	Revocations *Revocations
	Limits      *Limits
	// EmailSends limits the sign-in e-mails sent per e-mail address and per client (sends.go).
	EmailSends *Limits
	// Logouts carries out back-channel logouts from OpenID Connect providers (logout.go).
	Logouts *Logouts
}

// New returns the protections backed by st under o. log receives what they have to say
// (outages, refusals); now is the clock that decides whether a revocation has expired (nil
// means time.Now). The sign-in windows are the store's: it starts and ends them on its own
// clock. With a nil st, the Guard protects nothing.
func New(st store.Store, o Options, log *slog.Logger, now func() time.Time) *Guard {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	if st == nil {
		return &Guard{}
	}
	return &Guard{Revocations: newRevocations(st, o, log, now), Limits: newLimits(st, o, log, now),
		EmailSends: newSendLimits(st, o, log, now), Logouts: &Logouts{st: st, now: now}}
}

// Start loads the revocation list and keeps it current in the background until ctx ends
// or Close is called. Call it once, before serving: until the list is loaded, jwt sessions
// follow the fail-open/closed policy.
func (g *Guard) Start(ctx context.Context) error { return g.Revocations.Start(ctx) }

// Close stops the background loop Start began and waits for it to end, so that the store
// can be closed after it. It is safe to call more than once, and without Start.
func (g *Guard) Close() { g.Revocations.Close() }
