package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// Gateway-owned refresh of provider access tokens, for providers with `refresh` on.
//
// Refresh tokens are often rotated: each one may be used once, and a provider that sees
// one used twice revokes the whole grant. NextAuth's documented pattern (refresh inside the
// jwt callback) races when a page fires parallel requests around expiry. Here a refresh
// runs under a per-account lock, in process (so parallel requests on one replica wait for
// one refresh) and in the store (so replicas do too); whoever takes the lock first reloads
// what the others already did, so each refresh token reaches the provider exactly once.
//
// The check on a session read is a comparison of the token's expires_at claim with the
// clock: nothing due, no store round trip.

// Claim is the session-token claim where the gateway keeps the provider tokens it
// refreshes itself (providers with `refresh` on). The cookie is encrypted, and the jwt
// callback may read it but the engine rewrites it after every jwt call.
const Claim = "oauth"

// refreshSkew refreshes a little before the access token expires, so a request that reads
// the session is not handed a token that dies on its way to the API.
const refreshSkew = 30 * time.Second

// refreshLockTTL is the store lock's default lease. The holder renews it every third of it
// while the provider answers, so a slow provider never lets a second replica in with the
// same refresh token, and a crashed holder blocks the account for at most this long.
const refreshLockTTL = 5 * time.Second

// refreshLockPoll is how often a replica waiting for another's refresh retries the lock.
const refreshLockPoll = 25 * time.Millisecond

// rotatedTTL is how long a refresh result is kept for requests still carrying the token it
// replaced (cookies sent before the new one arrived).
const rotatedTTL = 2 * time.Minute

// refresher coordinates refreshes in this process.
type refresher struct {
	mu      sync.Mutex
	locks   map[string]*accountLock // per account being refreshed
	rotated map[string]rotatedEntry // by hash of the refresh token that was replaced
	// lease and renewEvery time the store lock: refreshLockTTL and a third of it unless
	// Options say otherwise (tests shorten them to prove a renewed lease outlives a slow
	// provider). Renewing well inside the lease means one slow store round trip does not
	// lose it.
	lease, renewEvery time.Duration
}

type rotatedEntry struct {
	tokens map[string]any
	until  time.Time
}

func newRefresher(lease, renewEvery time.Duration) *refresher {
	if lease <= 0 {
		lease = refreshLockTTL
	}
	if renewEvery <= 0 {
		renewEvery = lease / 3
	}
	return &refresher{locks: map[string]*accountLock{}, rotated: map[string]rotatedEntry{},
		lease: lease, renewEvery: renewEvery}
}

// lock takes the account's in-process lock, waiting at most until ctx ends. Entries are
// reference-counted so the map holds only accounts being refreshed right now.
func (r *refresher) lock(ctx context.Context, key string) (func(), error) {
	r.mu.Lock()
	l, ok := r.locks[key]
	if !ok {
		l = &accountLock{ch: make(chan struct{}, 1)}
		r.locks[key] = l
	}
	l.refs++
	r.mu.Unlock()
	drop := func() {
		r.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(r.locks, key)
		}
		r.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-ctx.Done():
		drop()
		return nil, fmt.Errorf("wait for the refresh lock: %w", ctx.Err())
	}
	return func() {
		<-l.ch
		drop()
	}, nil
}

// accountLock is a one-slot semaphore and the number of callers holding or awaiting it.
type accountLock struct {
	ch   chan struct{}
	refs int
}

func (r *refresher) lookup(oldHash string, now time.Time) (map[string]any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.rotated[oldHash]
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.tokens, true
}

func (r *refresher) remember(oldHash string, tokens map[string]any, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.rotated {
		if !now.Before(e.until) {
			delete(r.rotated, k)
		}
	}
	r.rotated[oldHash] = rotatedEntry{tokens: tokens, until: now.Add(rotatedTTL)}
}

func tokenHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// RefreshClaim is what the session token keeps of an account's tokens, under Claim.
func RefreshClaim(providerID, providerAccountID string, tokens map[string]any) map[string]any {
	c := map[string]any{"provider": providerID, "providerAccountId": providerAccountID}
	for _, k := range []string{"access_token", "refresh_token", "expires_at", "token_type", "scope", "id_token"} {
		if v, ok := tokens[k]; ok {
			c[k] = v
		}
	}
	return c
}

// WithRefreshClaim returns token with the refresh claim set, without touching the caller's map.
func WithRefreshClaim(token, claim map[string]any) map[string]any {
	out := make(map[string]any, len(token)+1)
	for k, v := range token {
		out[k] = v
	}
	out[Claim] = claim
	return out
}

// Refresh is what a session read does after the refresh check.
type Refresh struct {
	// Token is the token to hand to jwt (with the new claim when refreshed).
	Token map[string]any
	// JWTArg, when set, replaces the jwt callback's argument: {token, account, trigger:"refresh"}.
	JWTArg *script.JWTArgs
	// Claim is the refresh claim to put back after jwt ran, nil when there is none.
	Claim map[string]any
	// End is set when the session must end: the grant was revoked, or the access token is
	// past its grace period and cannot be refreshed. Reason says which, for the log.
	End    bool
	Reason string
}

// RefreshIfDue is the session read's refresh check of a decoded session token; provider
// finds a configured provider by id. It costs a map lookup and a clock comparison unless
// the access token is about to expire. A refresh that fails for a reason other than a
// refused grant keeps the session until the provider's refreshGrace has passed.
func (c *Client) RefreshIfDue(ctx context.Context, token map[string]any, provider func(id string) (script.Provider, bool)) (Refresh, error) {
	out := Refresh{Token: token}
	claim, ok := token[Claim].(map[string]any)
	if !ok {
		return out, nil
	}
	out.Claim = claim
	p, expiry, ok := refreshable(claim, provider)
	if !ok {
		return out, nil
	}
	now := c.now()
	if now.Before(expiry.Add(-refreshSkew)) {
		return out, nil
	}
	oldRefresh, _ := claim["refresh_token"].(string)
	pastGrace := !now.Before(expiry.Add(p.OAuth.RefreshGrace))
	if oldRefresh == "" {
		if pastGrace {
			return Refresh{End: true, Reason: "the access token expired and there is no refresh token"}, nil
		}
		return out, nil
	}
	providerAccountID, _ := claim["providerAccountId"].(string)
	tokens, err := c.refreshAccount(ctx, p, providerAccountID, oldRefresh)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "unauthorized_client") {
			return Refresh{End: true, Reason: "the provider refused the refresh token: " + re.ErrorCode}, nil
		}
		if errors.Is(err, ErrStoreUnavailable) && !pastGrace {
			return out, nil
		}
		c.log.WarnContext(ctx, "access token refresh failed", "code", "OAUTH_REFRESH_ERROR", "provider", p.ID, "error", err.Error())
		if pastGrace {
			return Refresh{End: true, Reason: "the access token expired and could not be refreshed"}, nil
		}
		return out, nil
	}
	newClaim := RefreshClaim(p.ID, providerAccountID, tokens)
	newToken := WithRefreshClaim(token, newClaim)
	account := map[string]any{"provider": p.ID, "type": p.Type, "providerAccountId": providerAccountID}
	for k, v := range tokens {
		account[k] = v
	}
	return Refresh{
		Token:  newToken,
		Claim:  newClaim,
		JWTArg: &script.JWTArgs{Token: newToken, Account: account, Trigger: "refresh"},
	}, nil
}

// RefreshDueAt is when RefreshIfDue starts to act on token: the access token's expiry less
// the skew. false means never (no refresh claim, or its provider does not refresh). The
// reverse proxy computes it once per decoded session, so that a request with nothing due
// costs a clock comparison.
func RefreshDueAt(token map[string]any, provider func(id string) (script.Provider, bool)) (time.Time, bool) {
	claim, ok := token[Claim].(map[string]any)
	if !ok {
		return time.Time{}, false
	}
	_, expiry, ok := refreshable(claim, provider)
	if !ok {
		return time.Time{}, false
	}
	return expiry.Add(-refreshSkew), true
}

// refreshable is the configured provider of a refresh claim and its access token's expiry,
// when the gateway refreshes that provider's tokens.
func refreshable(claim map[string]any, provider func(id string) (script.Provider, bool)) (script.Provider, time.Time, bool) {
	providerID, _ := claim["provider"].(string)
	p, known := provider(providerID)
	if !known || p.OAuth == nil || !p.OAuth.Refresh {
		return script.Provider{}, time.Time{}, false
	}
	expiresAt, ok := claim["expires_at"].(float64)
	if !ok {
		return script.Provider{}, time.Time{}, false
	}
	return p, time.Unix(int64(expiresAt), 0), true
}

// refreshAccount returns the tokens that replace oldRefresh: from this process's recent
// refreshes, from the store when another replica refreshed, or from the provider, in that
// order, under the account's lock.
func (c *Client) refreshAccount(ctx context.Context, p script.Provider, providerAccountID, oldRefresh string) (map[string]any, error) {
	r := c.refresh
	oldHash := tokenHash(oldRefresh)
	if t, ok := r.lookup(oldHash, c.now()); ok {
		return t, nil
	}
	key := p.ID + "\x00" + providerAccountID
	unlock, err := r.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t, ok := r.lookup(oldHash, c.now()); ok {
		return t, nil
	}
	st := c.st
	var stored *store.Account
	if st != nil {
		release, err := c.storeRefreshLock(ctx, "oauth-refresh:"+tokenHash(key))
		if err != nil {
			return nil, err
		}
		defer release()
		acc, err := st.FindAccount(ctx, p.ID, providerAccountID)
		switch {
		case err == nil:
			stored = &acc
			if from, _ := acc.Tokens["refreshed_from"].(string); from == oldHash {
				// Another replica already used this refresh token: reuse its result.
				t := publicTokens(acc.Tokens)
				r.remember(oldHash, t, c.now())
				return t, nil
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, unavailable(fmt.Errorf("reload account: %w", err))
		}
	}
	ep, err := c.endpointsFor(ctx, p)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(c.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	tok, err := c.oauth2Config(p, ep).TokenSource(pctx, &oauth2.Token{RefreshToken: oldRefresh}).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh the access token: %w", err)
	}
	tokens := tokenSet(tok, c.now())
	if _, ok := tokens["refresh_token"]; !ok {
		tokens["refresh_token"] = oldRefresh // not rotated: keep using it
	}
	r.remember(oldHash, tokens, c.now())
	if stored != nil {
		saved := map[string]any{"refreshed_from": oldHash}
		for k, v := range tokens {
			saved[k] = v
		}
		acc := *stored
		acc.Tokens = saved
		if err := c.replaceAccount(ctx, acc); err != nil {
			// The new tokens are in hand and cached here; other replicas will find the old
			// refresh token rejected and end those sessions, which is safe.
			c.log.WarnContext(ctx, "could not store refreshed tokens", "code", "OAUTH_REFRESH_ERROR", "provider", p.ID, "error", err.Error())
		}
	}
	return tokens, nil
}

// publicTokens drops the gateway's bookkeeping from stored tokens.
func publicTokens(t map[string]any) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		if k != "refreshed_from" {
			out[k] = v
		}
	}
	return out
}

// storeRefreshLock takes the store lock, polling while another replica holds it.
func (c *Client) storeRefreshLock(ctx context.Context, name string) (func(), error) {
	for {
		tok, ok, err := c.st.AcquireLock(ctx, name, c.refresh.lease)
		if err != nil {
			return nil, unavailable(fmt.Errorf("take the refresh lock: %w", err))
		}
		if ok {
			stopRenewing := c.renewRefreshLock(ctx, name, tok)
			return func() {
				stopRenewing()
				// Released with a context of its own: the request may be over already.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				if err := c.st.ReleaseLock(rctx, name, tok); err != nil {
					c.log.WarnContext(ctx, "release the refresh lock", "code", "OAUTH_REFRESH_ERROR", "error", err.Error())
				}
			}, nil
		}
		select {
		case <-time.After(refreshLockPoll):
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the refresh lock: %w", ctx.Err())
		}
	}
}

// renewRefreshLock keeps the lease on the refresh lock while its holder works, renewing it
// every renewEvery. The returned stop ends the renewal and waits for it, so no renewal
// can land after the lock is released. A lease that could not be renewed is logged: the
// refresh goes on, and the worst case is the one the lease exists to make unlikely (a
// second replica refreshing too, which a provider with rotation answers with invalid_grant).
func (c *Client) renewRefreshLock(ctx context.Context, name, tok string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(c.refresh.renewEvery)
		defer tick.Stop()
		rctx := context.WithoutCancel(ctx)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				held, err := c.st.RenewLock(rctx, name, tok, c.refresh.lease)
				if err != nil || !held {
					reason := "the lease was lost"
					if err != nil {
						reason = err.Error()
					}
					c.log.WarnContext(ctx, "renew the refresh lock", "code", "OAUTH_REFRESH_ERROR", "lock", name, "reason", reason)
					if !held && err == nil {
						return
					}
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
