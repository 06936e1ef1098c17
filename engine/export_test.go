package engine

import (
	"time"

	"github.com/callgate/callgate/engine/oauth"
)

// SetRefreshLease shortens the store lock's lease and renewal period of OAuth refreshes, so
// a test can prove that a renewed lease outlives a provider slower than the lease. Call it
// before the engine serves: it replaces the OAuth client.
func SetRefreshLease(e *Engine, lease, renewEvery time.Duration) {
	o := e.oauthOptions(e.stored.st)
	o.RefreshLockLease, o.RefreshLockRenew = lease, renewEvery
	e.oauth = oauth.New(o)
}
