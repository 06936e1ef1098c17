package engine

import (
	"context"
	"errors"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/store"
)

// storeFeatures is the store, for what the engine does with it beyond the users scripts
// read: its health. Database sessions are engine/session's; revocations and sign-in limits
// are the guard's (engine/guard).
type storeFeatures struct {
	st store.Store // nil: no store
}

func newStoreFeatures(st store.Store) *storeFeatures {
	return &storeFeatures{st: st}
}

// WatchRevocations loads the revocation list and keeps it current (through the store's
// announcements) until ctx ends or Close is called. With a store, call it once before
// serving: until the list is loaded, jwt sessions follow the fail-open/closed policy.
func (e *Engine) WatchRevocations(ctx context.Context) error { return e.guard.Start(ctx) }

// Close stops what WatchRevocations started and waits for it to end. Call it before
// closing the store.
func (e *Engine) Close() { e.guard.Close() }

// ErrStoreUnavailable is returned (wrapped) when a session check needs the store and cannot
// reach it: database sessions, and jwt revocation checks under the fail-closed policy.
// Routes answer 503; callers of SessionFromRequest should too. It is guard's error, so that
// errors.Is finds either.
var ErrStoreUnavailable = guard.ErrStoreUnavailable

// StoreStatus is the store's state for health endpoints.
type StoreStatus struct {
	// State is "ok", "unavailable", or "none" when the engine has no store.
	State string `json:"state"`
	// Revocations is "current" when the in-memory revocation list is up to date, "stale"
	// while the store cannot be reached.
	Revocations string `json:"revocations,omitempty"`
	// Error is the last ping's error, when State is "unavailable".
	Error string `json:"error,omitempty"`
}

// OK reports whether the store (if any) answers.
func (s StoreStatus) OK() bool { return s.State != "unavailable" }

// StoreStatus pings the store, bounded by one second so a health check never hangs on it.
func (e *Engine) StoreStatus(ctx context.Context) StoreStatus {
	if e.stored.st == nil {
		return StoreStatus{State: "none"}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st := StoreStatus{State: "ok", Revocations: "current"}
	if !e.guard.Revocations.Fresh() {
		st.Revocations = "stale"
	}
	if err := e.stored.st.Ping(ctx); err != nil {
		st.State, st.Error = "unavailable", err.Error()
	}
	return st
}

// unavailable wraps a store failure so routes answer 503 rather than 500 or "no session".
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrStoreUnavailable) {
		return err
	}
	return errors.Join(ErrStoreUnavailable, err)
}
