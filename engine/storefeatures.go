package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/callgate/callgate/store"
)

// storeFeatures is everything the engine does with the store beyond the users scripts
// read: database sessions, the revocation list and the sign-in failure limits.
type storeFeatures struct {
	st   store.Store // nil: none of the features below
	opts SecurityOptions
	log  *slog.Logger
	revs *revocations
	// dbSessions briefly caches database sessions for the proxy's hot path.
	dbSessions *dbSessionCache
}

func newStoreFeatures(st store.Store, o SecurityOptions, log *slog.Logger, decoded *sessionCache) *storeFeatures {
	if o.FailureWindow <= 0 {
		o.FailureWindow = 15 * time.Minute
	}
	f := &storeFeatures{st: st, opts: o, log: log, dbSessions: newDBSessionCache()}
	if st != nil {
		f.revs = newRevocations(st, o, log, func() {
			// A revocation must reach the proxy's caches at once, not when they expire.
			f.dbSessions.clear()
			if decoded != nil {
				decoded.clear()
			}
		})
	}
	return f
}

// WatchRevocations loads the revocation list and keeps it current (through the store's
// announcements) until ctx ends. With a store, call it once before serving: until the
// list is loaded, jwt sessions follow the fail-open/closed policy.
func (e *Engine) WatchRevocations(ctx context.Context) error {
	if e.stored.revs == nil {
		return nil
	}
	return e.stored.revs.watch(ctx)
}

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
	if !e.stored.revs.isFresh() {
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

// clientAddress is the address a sign-in attempt is counted against: the TCP peer, or,
// when the peer is one of the trusted proxies, the client it names in X-Forwarded-For, by
// the same rules as the reverse proxy's request.ip. Without trusted proxies, every client
// behind a load balancer shares its address.
func (f *storeFeatures) clientAddress(r *http.Request) string {
	return f.opts.Addresses.ClientIP(r)
}

// clear drops every decoded session, so a revocation takes effect on the next request.
func (c *sessionCache) clear() {
	c.mu.Lock()
	c.entries.Clear()
	c.count = 0
	c.mu.Unlock()
}

// dbSessionTTL bounds how long the proxy reuses a database session read: a burst of
// requests from one page costs one store read, and a revocation clears the cache anyway.
const dbSessionTTL = time.Second

type dbSessionEntry struct {
	session store.Session
	user    store.User
	until   time.Time
}

// dbSessionCache maps session IDs (hashes) to recent store reads. Safe for concurrent use.
type dbSessionCache struct {
	mu      sync.Mutex
	entries map[string]dbSessionEntry
}

func newDBSessionCache() *dbSessionCache {
	return &dbSessionCache{entries: map[string]dbSessionEntry{}}
}

func (c *dbSessionCache) get(id string, now time.Time) (dbSessionEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !now.Before(e.until) {
		return dbSessionEntry{}, false
	}
	return e, true
}

func (c *dbSessionCache) put(id string, e dbSessionEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= sessionCacheSize {
		for k, v := range c.entries {
			if !now.Before(v.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= sessionCacheSize {
			clear(c.entries)
		}
	}
	c.entries[id] = e
}

func (c *dbSessionCache) remove(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

func (c *dbSessionCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
