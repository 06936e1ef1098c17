package session

import (
	"sync"
	"time"

	"github.com/callgate/callgate/store"
)

// cacheSize bounds each session cache: at a few KiB per entry, about 20 MiB in the worst
// case, and far more distinct sessions than one replica sees in a minute.
const cacheSize = 4096

// cacheTTL bounds how long a decoded jwt cookie is reused: long enough that a busy session
// decodes a few times a minute rather than on every request, short enough that the session
// callback's view (Session.Auth) and a rotated-out secret catch up quickly. Revocations
// clear the cache at once (Sessions.Clear).
const cacheTTL = 15 * time.Second

// dbCacheTTL bounds how long the proxy reuses a database session read: a burst of requests
// from one page costs one store read, and a revocation clears the cache anyway.
const dbCacheTTL = time.Second

// cache maps cookie values to decoded jwt sessions. Safe for concurrent use. Every proxied
// request reads it, from every core: a read is a lock-free load; writes (one per cookie
// every ttl) and evictions take the mutex. Times are the caller's clock (Options.Now).
type cache struct {
	max     int
	ttl     time.Duration
	entries sync.Map // string → cacheEntry

	mu    sync.Mutex // serialises writers
	count int        // entries stored, under mu
}

type cacheEntry struct {
	session *Session
	until   time.Time
}

func newCache(max int, ttl time.Duration) *cache {
	return &cache{max: max, ttl: ttl}
}

func (c *cache) get(key string, now time.Time) *Session {
	v, ok := c.entries.Load(key)
	if !ok {
		return nil
	}
	e := v.(cacheEntry)
	if !now.Before(e.until) {
		return nil
	}
	return e.session
}

func (c *cache) put(key string, s *Session, now time.Time) {
	until := now.Add(c.ttl)
	if !s.expires.IsZero() && s.expires.Before(until) {
		until = s.expires
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count >= c.max {
		c.evict(now)
	}
	if _, loaded := c.entries.Swap(key, cacheEntry{session: s, until: until}); !loaded {
		c.count++
	}
}

// evict drops expired entries, then, if the cache is still full, an arbitrary quarter of it
// (map order is random): cheap, and a dropped session only costs one more decode. Call it
// with mu held.
func (c *cache) evict(now time.Time) {
	c.entries.Range(func(k, v any) bool {
		if !now.Before(v.(cacheEntry).until) {
			c.entries.Delete(k)
			c.count--
		}
		return true
	})
	drop := c.count - c.max*3/4
	c.entries.Range(func(k, _ any) bool {
		if drop <= 0 {
			return false
		}
		c.entries.Delete(k)
		c.count--
		drop--
		return true
	})
}

// clear drops every entry.
func (c *cache) clear() {
	c.mu.Lock()
	c.entries.Clear()
	c.count = 0
	c.mu.Unlock()
}

type dbEntry struct {
	session store.Session
	user    store.User
	until   time.Time
}

// dbCache maps session IDs (hashes) to recent store reads. Safe for concurrent use.
type dbCache struct {
	max     int
	mu      sync.Mutex
	entries map[string]dbEntry
}

func newDBCache(max int) *dbCache {
	return &dbCache{max: max, entries: map[string]dbEntry{}}
}

func (c *dbCache) get(id string, now time.Time) (dbEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !now.Before(e.until) {
		return dbEntry{}, false
	}
	return e, true
}

func (c *dbCache) put(id string, e dbEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, v := range c.entries {
			if !now.Before(v.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[id] = e
}

// extend moves the expiry of the cached read of id, if there still is one: a session
// removed meanwhile (signed out) is not put back.
func (c *dbCache) extend(id string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		e.session.Expires = expires
		c.entries[id] = e
	}
}

func (c *dbCache) remove(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

func (c *dbCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
