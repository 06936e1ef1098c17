package bearer

import (
	"sync"
	"time"
)

// cache holds answers by the token's SHA-256, never the token itself, so a heap dump does
// not hand out live credentials. It is bounded, and making room is O(1): the entries sit
// in a ring in insertion order, and a new one takes the place of the oldest, expired or
// not. Refusals live in a ring of their own, a tenth the size, so a stream of junk tokens
// cannot push the answers of valid tokens out.
type cache struct {
	mu       sync.Mutex
	accepted ring
	refused  ring
}

type entry struct {
	v     *Verified
	err   error
	until time.Time
}

type ring struct {
	entries map[[32]byte]entry
	keys    [][32]byte // keys[next] is the oldest once the ring is full
	used    []bool
	next    int
}

func newRing(size int) ring {
	return ring{entries: make(map[[32]byte]entry, size), keys: make([][32]byte, size), used: make([]bool, size)}
}

func newCache(size int) *cache {
	return &cache{accepted: newRing(size), refused: newRing(max(1, size/10))}
}

func (c *cache) get(key [32]byte, now time.Time) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range []*ring{&c.accepted, &c.refused} {
		if e, ok := r.entries[key]; ok && now.Before(e.until) {
			return e, true
		}
	}
	return entry{}, false
}

func (c *cache) put(key [32]byte, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.accepted
	if e.err != nil {
		r = &c.refused
	}
	if _, ok := r.entries[key]; ok {
		r.entries[key] = e
		return
	}
	if r.used[r.next] {
		delete(r.entries, r.keys[r.next])
	}
	r.keys[r.next], r.used[r.next] = key, true
	r.next = (r.next + 1) % len(r.keys)
	r.entries[key] = e
}
