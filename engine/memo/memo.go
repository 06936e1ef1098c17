// Package memo keeps the values the proxy derives from one credential (a session, a bearer
// token) while it is cached: the signed assertion JWT and the identity headers of each
// route, built once per credential and route rather than once per request.
package memo

import (
	"sync"
	"sync/atomic"
	"time"
)

// MaxEntries bounds a Memo: a callback that derives a different key on every request (a
// claim holding the path, say) must not grow one credential's memo without limit. Past it,
// new keys are derived on every call and not kept.
const MaxEntries = 16

// Memo is safe for concurrent use. Every request with the same credential reads it, often
// from several cores at once: reads are lock-free loads of an immutable map, and the rare
// writes replace it. The zero Memo is empty and ready.
type Memo struct {
	entries atomic.Pointer[map[string]entry] // never modified, replaced
	mu      sync.Mutex                       // serialises writers
}

type entry struct {
	value   any
	expires time.Time
}

// Remember returns the value stored under key while it is still valid at now, else calls
// derive, stores its result until the expiry it returns, and returns it. Values are shared
// by every request of the credential: read-only.
func (m *Memo) Remember(key string, now time.Time, derive func() (any, time.Time, error)) (any, error) {
	if cur := m.entries.Load(); cur != nil {
		if e, ok := (*cur)[key]; ok && now.Before(e.expires) {
			return e.value, nil
		}
	}
	v, exp, err := derive()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var old map[string]entry
	if cur := m.entries.Load(); cur != nil {
		old = *cur
	}
	if _, ok := old[key]; ok || len(old) < MaxEntries {
		next := make(map[string]entry, len(old)+1)
		for k, e := range old {
			next[k] = e
		}
		next[key] = entry{value: v, expires: exp}
		m.entries.Store(&next)
	}
	return v, nil
}
