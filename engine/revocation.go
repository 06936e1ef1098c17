package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/store"
)

// SecurityOptions tune the store-backed protections: revocations (sign-out everywhere)
// and the sign-in failure limits. The zero value turns the limits off.
type SecurityOptions struct {
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
	// Addresses finds a sign-in's client address behind trusted proxies (the reverse
	// proxy's proxy.trusted_proxies). nil counts the TCP peer.
	Addresses *clientaddr.Resolver
}

// ErrStoreUnavailable is returned (wrapped) when a session check needs the store and cannot
// reach it: database sessions, and jwt revocation checks under the fail-closed policy.
// Routes answer 503; callers of SessionFromRequest should too.
var ErrStoreUnavailable = errors.New("the session store is unavailable")

// revocations is the gateway's in-memory copy of every unexpired revocation, so that the
// jwt strategy checks a token with two map lookups and no store read. It is loaded in full
// at start, kept current by the store's announcements (Redis pub/sub reaches every replica
// within milliseconds), and reloaded whenever announcements may have been missed and every
// RevocationResync as a safety net. While it cannot be loaded it is stale, and the
// fail-open/closed policy decides.
type revocations struct {
	st       store.Revocations
	log      *slog.Logger
	failOpen bool
	resync   time.Duration
	// onChange runs after every change, so caches derived from sessions can drop entries.
	onChange func()

	mu     sync.RWMutex
	users  map[string]store.Revocation // by user ID
	tokens map[string]time.Time        // token ID → when the revocation expires
	fresh  bool                        // loaded, and no announcement missed since
	// staleLogged throttles the "revocations unknown" log line to one per outage.
	staleLogged bool
	kick        chan struct{}
}

func newRevocations(st store.Revocations, o SecurityOptions, log *slog.Logger, onChange func()) *revocations {
	resync := o.RevocationResync
	if resync <= 0 {
		resync = 30 * time.Second
	}
	return &revocations{st: st, log: log, failOpen: o.RevocationFailOpen, resync: resync, onChange: onChange,
		users: map[string]store.Revocation{}, tokens: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// watch subscribes to announcements, loads the list, and keeps it current until ctx ends.
func (v *revocations) watch(ctx context.Context) error {
	if err := v.st.SubscribeRevocations(ctx, v.announced); err != nil {
		return err
	}
	if err := v.reload(ctx); err != nil {
		v.log.WarnContext(ctx, "could not load revocations; retrying", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
	go v.loop(ctx)
	return nil
}

// announced applies one announcement; the zero Revocation means some may have been missed.
func (v *revocations) announced(r store.Revocation) {
	if r.UserID == "" && r.TokenID == "" {
		v.mu.Lock()
		v.fresh = false
		v.mu.Unlock()
		select {
		case v.kick <- struct{}{}:
		default:
		}
		return
	}
	v.mu.Lock()
	v.add(r)
	v.mu.Unlock()
	if v.onChange != nil {
		v.onChange()
	}
}

func (v *revocations) add(r store.Revocation) {
	if r.UserID != "" {
		old, ok := v.users[r.UserID]
		if !ok || r.Before.After(old.Before) {
			old.Before = r.Before
		}
		if r.Expires.After(old.Expires) {
			old.Expires = r.Expires
		}
		old.UserID = r.UserID
		v.users[r.UserID] = old
	}
	if r.TokenID != "" && r.Expires.After(v.tokens[r.TokenID]) {
		v.tokens[r.TokenID] = r.Expires
	}
}

// reload replaces the list with the store's.
func (v *revocations) reload(ctx context.Context) error {
	list, err := v.st.ListRevocations(ctx)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.users = make(map[string]store.Revocation, len(list))
	v.tokens = make(map[string]time.Time)
	for _, r := range list {
		v.add(r)
	}
	wasStale := !v.fresh && v.staleLogged
	v.fresh, v.staleLogged = true, false
	v.mu.Unlock()
	if wasStale {
		v.log.InfoContext(ctx, "revocations reloaded; the store is back", "code", "STORE_RECOVERED", "revocations", len(list))
	}
	if v.onChange != nil {
		v.onChange()
	}
	return nil
}

// loop reloads on a missed announcement (retrying every second while the store is down)
// and every resync interval.
func (v *revocations) loop(ctx context.Context) {
	t := time.NewTicker(v.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-v.kick:
		}
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := v.reload(rctx)
			cancel()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// check reports whether a token of user sub with ID jti, issued at iat, is revoked. While
// the list is stale it returns ErrStoreUnavailable under the fail-closed policy and
// "not revoked" (as far as the last list knows) under fail-open, logging the outage once.
func (v *revocations) check(ctx context.Context, sub, jti string, iat time.Time) (bool, error) {
	now := time.Now()
	v.mu.RLock()
	fresh := v.fresh
	revoked := false
	if r, ok := v.users[sub]; ok && sub != "" && r.Expires.After(now) {
		revoked = store.RevocationState{UserBefore: r.Before}.Revoked(iat)
	}
	if exp, ok := v.tokens[jti]; ok && jti != "" && exp.After(now) {
		revoked = true
	}
	v.mu.RUnlock()
	if revoked || fresh {
		return revoked, nil
	}
	v.mu.Lock()
	first := !v.staleLogged
	v.staleLogged = true
	v.mu.Unlock()
	if first {
		v.log.WarnContext(ctx, "revocations unknown: the store is unreachable", "code", "STORE_UNAVAILABLE",
			"policy", map[bool]string{true: "fail open: jwt sessions are accepted unless revoked before the outage", false: "fail closed: jwt sessions get 503"}[v.failOpen])
	}
	if v.failOpen {
		return false, nil
	}
	return false, ErrStoreUnavailable
}

// isFresh reports whether the list is current (for health checks).
func (v *revocations) isFresh() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fresh
}
