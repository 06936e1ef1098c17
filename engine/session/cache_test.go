package session

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callgate/callgate/store"
)

// TestSessionCache: a cached session is returned until its entry expires (the cache's TTL
// or the token's expiry, whichever is first), a full cache evicts expired entries and then
// a quarter of itself, clear empties it, and concurrent readers and writers are safe.
func TestSessionCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	t.Run("expiry", func(t *testing.T) {
		c := newCache(8, cacheTTL)
		long := &Session{expires: now.Add(time.Hour)}
		short := &Session{expires: now.Add(5 * time.Second)}
		c.put("long", long, now)
		c.put("short", short, now)
		for _, tt := range []struct {
			key  string
			at   time.Duration
			want *Session
		}{
			{"long", 0, long}, {"long", cacheTTL - time.Second, long}, {"long", cacheTTL, nil},
			{"short", 4 * time.Second, short}, {"short", 5 * time.Second, nil}, {"missing", 0, nil},
		} {
			if got := c.get(tt.key, now.Add(tt.at)); got != tt.want {
				t.Errorf("get(%s) at +%v: got %p, want %p", tt.key, tt.at, got, tt.want)
			}
		}
	})
	t.Run("eviction", func(t *testing.T) {
		c := newCache(8, cacheTTL)
		for i := range 4 { // expired by the time the cache fills
			c.put(fmt.Sprint("old", i), &Session{expires: now.Add(time.Second)}, now)
		}
		later := now.Add(time.Minute)
		for i := range 4 {
			c.put(fmt.Sprint("new", i), &Session{}, later)
		}
		c.put("new4", &Session{}, later) // full: the four expired ones go
		if c.count != 5 {
			t.Fatalf("after evicting expired entries: %d entries, want 5", c.count)
		}
		for i := range 4 {
			c.put(fmt.Sprint("more", i), &Session{}, later)
		}
		if c.count > 8 || c.count < 6 { // full again: down to three quarters, plus the new one
			t.Fatalf("after evicting a quarter: %d entries, want 6..8", c.count)
		}
		n := 0
		c.entries.Range(func(_, _ any) bool { n++; return true })
		if n != c.count {
			t.Errorf("count %d, but %d entries stored", c.count, n)
		}
		c.clear()
		if c.get("new4", later) != nil || c.count != 0 {
			t.Errorf("after clear: count %d, new4 still cached: %v", c.count, c.get("new4", later) != nil)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		c := newCache(64, cacheTTL)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 500 {
					key := fmt.Sprint(w, "-", i%100)
					c.put(key, &Session{}, now)
					c.get(key, now)
					if i%250 == 0 {
						c.clear()
					}
				}
			})
		}
		wg.Wait()
		if c.count > 64 {
			t.Errorf("%d entries, want at most 64", c.count)
		}
	})
}

// TestDBCacheExtendPutsNothingBack: extending the cached read of a session that was removed
// meanwhile (signed out between a renewal's read and its write) does not bring it back.
func TestDBCacheExtendPutsNothingBack(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newDBCache(8)
	c.put("a", dbEntry{session: store.Session{ID: "a", Expires: now.Add(time.Hour)}, until: now.Add(time.Second)}, now)
	c.extend("a", now.Add(2*time.Hour))
	if e, ok := c.get("a", now); !ok || !e.session.Expires.Equal(now.Add(2*time.Hour)) {
		t.Errorf("extend of a cached read: got %+v, %v; want the new expiry", e, ok)
	}
	c.remove("a")
	c.extend("a", now.Add(3*time.Hour))
	if _, ok := c.get("a", now); ok {
		t.Errorf("a removed session is back in the cache after extend")
	}
}
