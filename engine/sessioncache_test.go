package engine

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSessionCache: a cached session is returned until its entry expires (the cache's TTL
// or the token's expiry, whichever is first), a full cache evicts expired entries and then
// a quarter of itself, clear empties it, and concurrent readers and writers are safe.
func TestSessionCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	t.Run("expiry", func(t *testing.T) {
		c := newSessionCache(8)
		long := &Session{expires: now.Add(time.Hour)}
		short := &Session{expires: now.Add(5 * time.Second)}
		c.put("long", long, now)
		c.put("short", short, now)
		for _, tt := range []struct {
			key  string
			at   time.Duration
			want *Session
		}{
			{"long", 0, long}, {"long", sessionCacheTTL - time.Second, long}, {"long", sessionCacheTTL, nil},
			{"short", 4 * time.Second, short}, {"short", 5 * time.Second, nil}, {"missing", 0, nil},
		} {
			if got := c.get(tt.key, now.Add(tt.at)); got != tt.want {
				t.Errorf("get(%s) at +%v: got %p, want %p", tt.key, tt.at, got, tt.want)
			}
		}
	})
	t.Run("eviction", func(t *testing.T) {
		c := newSessionCache(8)
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
		c := newSessionCache(64)
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

// TestSessionRemember: a remembered value is reused until its expiry and then derived
// again, at most maxMemoEntries keys are kept (others are derived every time), and
// concurrent callers, under the race detector, see only values some call derived.
func TestSessionRemember(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Session{}
	calls := 0
	derive := func(v string, until time.Time) func() (any, time.Time, error) {
		return func() (any, time.Time, error) { calls++; return v, until, nil }
	}
	for _, tt := range []struct {
		at        time.Duration
		value     string
		want      string
		wantCalls int
	}{
		{0, "first", "first", 1},
		{time.Minute, "second", "first", 1}, // still valid
		{2 * time.Minute, "third", "third", 2},
	} {
		got, err := s.Remember("k", now.Add(tt.at), derive(tt.value, now.Add(tt.at+90*time.Second)))
		if err != nil || got != tt.want || calls != tt.wantCalls {
			t.Errorf("at +%v: got %v, %v after %d derivations, want %s after %d", tt.at, got, err, calls, tt.want, tt.wantCalls)
		}
	}
	for i := range maxMemoEntries + 4 {
		_, _ = s.Remember(fmt.Sprint("key", i), now, derive("v", now.Add(time.Hour)))
	}
	if n := len(*s.memo.Load()); n != maxMemoEntries {
		t.Errorf("%d keys remembered, want the cap of %d", n, maxMemoEntries)
	}

	shared := &Session{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprint("k", i%20)
				v, err := shared.Remember(key, now, func() (any, time.Time, error) { return key, now.Add(time.Hour), nil })
				if err != nil || v != key {
					t.Errorf("worker %d: Remember(%s) = %v, %v", w, key, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
