package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/callgate/callgate/store"
)

// Brute-force protection for credentials sign-in: attempts are counted per account named
// (username, e-mail) and per client address in the store, so every replica sees the same
// counts. Past a limit, attempts are refused until the window ends; the engine answers
// them with NextAuth's 429 (engine/signinlimit.go).
//
// Reserve, then check. An attempt first takes a slot on each of its counters with the
// store's atomic Increment, and only an attempt whose every slot is within its limit runs
// authorize. Parallel attempts, on any replica, get distinct counts, so a burst of any size
// runs authorize at most limit times per counter and window: checking a count and adding
// to it later (as the engine once did) let a burst of N parallel guesses through whole.
// What happens to a slot afterwards:
//
//   - authorize failed (null, a thrown message, or a script error): the slot stays. It is
//     the failure's count, already in place before the password was looked at.
//   - the attempt was refused: the slots it took on counters still within their limit are
//     given back (Release), since nothing ran; a locked account then does not use up the
//     address's allowance of a shared NAT, nor a locked address an account's. The slot on
//     the counter that was past its limit is not: it is past the limit either way, and the
//     window does not move.
//   - authorize succeeded: a success is not a failure. The address's slot is given back,
//     so an office behind one address signing in all morning is never locked out, while its
//     failures still count. The account's counter is reset when the attempt named exactly
//     one account; when it named several (a username and a different e-mail), authorize
//     may have used either, so nothing tells which account the success proves: its slots
//     are only given back, so that signing in to one's own account cannot wipe the failures
//     counted on another. (A reset also drops the slots of attempts still in flight on that
//     account: at most limit of them, and only when its owner signs in.)
//
// Release names the window a slot was taken in, so giving a slot back after the window
// ended never frees a slot of the next one.
//
// Keys name the account, not the bytes typed: the identifier goes through
// store.IdentifierKey (NFKC, case folding, trimming), so "Demo", " demo" and fullwidth
// "ｄｅｍｏ" are one counter: coarser than the store's lookups (exact usernames, lower-cased
// e-mails) and than what a script usually does to a name first (trim, toLowerCase). It is then
// hashed, so the key has a fixed length whatever the client sends: a key too long for the
// store would fail the reservation, and that must not be a way into the fail-open path
// below.
//
// A store failure while reserving never blocks a sign-in: that counter fails open, Reserve
// reports the failure for the caller to log, and the attempt's other counters still apply.
// This is the documented trade (an outage must not lock everyone out; a store-backed
// authorize fails anyway when the store is down). It is not an input-driven bypass: with
// hashed keys and a fixed address format, nothing a client sends can make a reservation
// fail.
//
// The bookkeeping (reserving, giving back, resetting) runs without the caller's
// cancellation: it must land even if the client hangs up at once.

// Limits counts credentials sign-in attempts per account and per client address in the
// store, and refuses attempts past a limit. A nil Limits (no store) limits nothing.
type Limits struct {
	// prefix names the counters in the store: "signin-failures", or "email-sends" for the
	// e-mail sending limits (sends.go).
	prefix     string
	st         store.RateLimits
	log        *slog.Logger
	now        func() time.Time
	perAccount int64
	perAddress int64
	window     time.Duration
}

func newLimits(st store.RateLimits, o Options, log *slog.Logger, now func() time.Time) *Limits {
	window := o.FailureWindow
	if window <= 0 {
		window = 15 * time.Minute
	}
	return &Limits{prefix: "signin-failures", st: st, log: log, now: now, perAccount: int64(o.MaxFailuresPerUsername),
		perAddress: int64(o.MaxFailuresPerAddress), window: window}
}

// CountsAccounts reports whether attempts are counted per account, that is whether the
// identifiers passed to Reserve matter.
func (l *Limits) CountsAccounts() bool { return l != nil && l.perAccount > 0 }

// counter is one counter an attempt is charged to.
type counter struct {
	key     string
	limit   int64
	perUser bool
}

// slot is one slot an attempt reserved: its counter and the window it belongs to.
type slot struct {
	counter
	resetAt time.Time
}

// Reservation is what an attempt holds between Reserve and its outcome: settle it with
// exactly one of Failed, Succeeded or Refused. The zero Reservation holds nothing, and
// settling it does nothing.
type Reservation struct {
	l     *Limits
	slots []slot
	// accounts is how many accounts the attempt named, whether or not their reservation
	// succeeded.
	accounts int
}

// accountKey is the sign-in counter key of an identifier: its account form, hashed.
func accountKey(identifier string) string { return prefixedAccountKey("signin-failures", identifier) }

// prefixedAccountKey is accountKey under another prefix (the e-mail sending limits').
func prefixedAccountKey(prefix, identifier string) string {
	sum := sha256.Sum256([]byte(store.IdentifierKey(identifier)))
	return prefix + ":user:" + hex.EncodeToString(sum[:])
}

// counters are the counters of an attempt, each when its limit is on: its client address
// first (a spray over many usernames is refused before it touches any of their counters),
// then every distinct account it names. An empty (or blank) identifier names no account:
// a form that sends every field it has, filled or not, must not put every sign-in on one
// shared counter.
func (l *Limits) counters(identifiers []string, address string) []counter {
	var cs []counter
	if l.perAddress > 0 {
		cs = append(cs, counter{l.prefix + ":addr:" + address, l.perAddress, false})
	}
	if l.perAccount > 0 {
		seen := map[string]bool{}
		for _, name := range identifiers {
			if store.IdentifierKey(name) == "" {
				continue
			}
			if key := prefixedAccountKey(l.prefix, name); !seen[key] {
				seen[key] = true
				cs = append(cs, counter{key, l.perAccount, true})
			}
		}
	}
	return cs
}

// Reserve takes a slot for an attempt naming identifiers (the accounts it may sign in to)
// from address (the client's), before the attempt's password is checked. When a counter
// is past its limit the attempt is refused: refusedUntil is when that counter's window
// ends, the other slots are given back, and the Reservation is the zero one. Otherwise the
// attempt may go on, and the caller settles the Reservation with its outcome.
//
// err reports counters that could not be reserved because the store failed. They fail
// open: the attempt goes on (or is refused) by its other counters, so err is for the
// caller to log, never a reason to refuse.
func (l *Limits) Reserve(ctx context.Context, identifiers []string, address string) (r Reservation, refusedUntil time.Time, err error) {
	if l == nil {
		return Reservation{}, time.Time{}, nil
	}
	cs := l.counters(identifiers, address)
	r.l = l
	for _, c := range cs {
		if c.perUser {
			r.accounts++
		}
	}
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, c := range cs {
		n, resetAt, ierr := l.st.Increment(ctx, c.key, l.window)
		if ierr != nil {
			errs = append(errs, fmt.Errorf("sign-in counter %s: %w", kind(c), ierr))
			continue
		}
		if n <= c.limit {
			r.slots = append(r.slots, slot{c, resetAt})
			continue
		}
		r.Refused(ctx)
		return Reservation{}, resetAt, errors.Join(errs...)
	}
	return r, time.Time{}, errors.Join(errs...)
}

// kind names a counter for messages without its key (which may hash a username).
func kind(c counter) string {
	if c.perUser {
		return "per account"
	}
	return "per address"
}

// RetryAfter is how long a refused client should wait: until refusedUntil, in whole
// seconds rounded up, and at least one.
func (l *Limits) RetryAfter(refusedUntil time.Time) time.Duration {
	now := time.Now
	if l != nil {
		now = l.now
	}
	return time.Duration(max(1, math.Ceil(refusedUntil.Sub(now()).Seconds()))) * time.Second
}

// Failed settles an attempt whose credentials were wrong (or whose authorize failed).
// There is nothing to add: the slots Reserve took are the failure's count, and stay until
// their window ends.
func (r *Reservation) Failed(context.Context) { *r = Reservation{} }

// Refused settles an attempt refused before its credentials were checked: nothing ran, so
// every slot it holds is given back.
func (r *Reservation) Refused(ctx context.Context) {
	held := *r
	*r = Reservation{}
	if held.l == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, s := range held.slots {
		held.l.release(ctx, s)
	}
}

// Succeeded settles a successful attempt: the address's slot is given back and the
// account's counter reset, or only given back when the attempt named several accounts
// (see the comment at the top of this file).
func (r *Reservation) Succeeded(ctx context.Context) {
	held := *r
	*r = Reservation{}
	if held.l == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, s := range held.slots {
		if !s.perUser || held.accounts > 1 {
			held.l.release(ctx, s)
			continue
		}
		if err := held.l.st.ResetCount(ctx, s.key); err != nil {
			held.l.log.WarnContext(ctx, "sign-in counter not reset", "code", "STORE_UNAVAILABLE", "error", err.Error())
		}
	}
}

// release gives a slot back. A slot that cannot be given back stays counted: the error
// costs the client one attempt, never the limit its protection.
func (l *Limits) release(ctx context.Context, s slot) {
	if err := l.st.Release(ctx, s.key, s.resetAt); err != nil {
		l.log.WarnContext(ctx, "sign-in limit slot not given back", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
}
