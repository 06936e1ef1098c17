package guard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callgate/callgate/store"
)

// Revocations is the gateway's in-memory copy of every unexpired revocation, so that the
// jwt strategy checks a token with two map lookups and no store read. It is loaded in full
// by Start, kept current by the store's announcements (Redis pub/sub reaches every replica
// within milliseconds), and reloaded whenever announcements may have been missed and every
// RevocationResync as a safety net. While it cannot be loaded it is stale, and the
// fail-open/closed policy decides.
type Revocations struct {
	st       store.Revocations
	log      *slog.Logger
	now      func() time.Time
	failOpen bool
	resync   time.Duration
	// retry is how long the loop waits between reloads while the store is down.
	retry time.Duration

	mu     sync.RWMutex
	users  map[string]store.Revocation // by user ID
	tokens map[string]time.Time        // token ID → when the revocation expires
	fresh  bool                        // loaded, and no announcement missed since
	// staleLogged throttles the "revocations unknown" log line to one per outage.
	staleLogged bool
	// onChange runs after every change, so caches derived from sessions can drop entries.
	onChange func()
	kick     chan struct{}

	// run is the background loop's lifetime: Start sets it, Close ends it.
	run struct {
		sync.Mutex
		started bool
		cancel  context.CancelFunc
		done    chan struct{}
	}
}

func newRevocations(st store.Revocations, o Options, log *slog.Logger, now func() time.Time) *Revocations {
	resync := o.RevocationResync
	if resync <= 0 {
		resync = 30 * time.Second
	}
	return &Revocations{st: st, log: log, now: now, failOpen: o.RevocationFailOpen, resync: resync, retry: time.Second,
		users: map[string]store.Revocation{}, tokens: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// OnChange sets f to run after every change to the list (an announcement applied, a
// reload), so that caches derived from sessions can drop their entries at once rather than
// when they expire. Call it before Start.
func (v *Revocations) OnChange(f func()) {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.onChange = f
	v.mu.Unlock()
}

func (v *Revocations) changed() {
	v.mu.RLock()
	f := v.onChange
	v.mu.RUnlock()
	if f != nil {
		f()
	}
}

// Start subscribes to announcements, loads the list, and keeps it current in the
// background until ctx ends or Close is called. A list that cannot be loaded is logged and
// retried; only a failed subscription is an error. Start runs once: a second call fails.
func (v *Revocations) Start(ctx context.Context) error {
	if v == nil {
		return nil
	}
	v.run.Lock()
	defer v.run.Unlock()
	if v.run.started {
		return errors.New("guard: revocations already started")
	}
	v.run.started = true
	ctx, cancel := context.WithCancel(ctx)
	if err := v.st.SubscribeRevocations(ctx, v.announced); err != nil {
		cancel()
		return err
	}
	if err := v.reload(ctx); err != nil {
		v.log.WarnContext(ctx, "could not load revocations; retrying", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
	v.run.cancel, v.run.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		v.loop(ctx)
	}(v.run.done)
	return nil
}

// Close ends the subscription and the background loop and waits for the loop to return.
func (v *Revocations) Close() {
	if v == nil {
		return
	}
	v.run.Lock()
	cancel, done := v.run.cancel, v.run.done
	v.run.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// announced applies one announcement; the zero Revocation means some may have been missed.
func (v *Revocations) announced(r store.Revocation) {
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
	v.changed()
}

func (v *Revocations) add(r store.Revocation) {
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
func (v *Revocations) reload(ctx context.Context) error {
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
	v.changed()
	return nil
}

// loop reloads on a missed announcement (retrying every second while the store is down)
// and every resync interval.
func (v *Revocations) loop(ctx context.Context) {
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
			case <-time.After(v.retry):
			}
		}
	}
}

// Check reports whether a token of user sub with ID jti, issued at iat, is revoked. While
// the list is stale it returns ErrStoreUnavailable under the fail-closed policy and
// "not revoked" (as far as the last list knows) under fail-open, logging the outage once.
// A nil Revocations (no store) revokes nothing.
func (v *Revocations) Check(ctx context.Context, sub, jti string, iat time.Time) (bool, error) {
	if v == nil {
		return false, nil
	}
	now := v.now()
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

// Fresh reports whether the list is current (for health checks). A nil Revocations is.
func (v *Revocations) Fresh() bool {
	if v == nil {
		return true
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fresh
}
