package engine

import "time"

// SetRefreshLease shortens the store lock's lease and renewal period of OAuth refreshes, so
// a test can prove that a renewed lease outlives a provider slower than the lease.
func SetRefreshLease(e *Engine, lease, renewEvery time.Duration) {
	e.oauth.refresh.lease, e.oauth.refresh.renewEvery = lease, renewEvery
}
