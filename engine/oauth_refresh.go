package engine

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

// refreshSkew refreshes a little before the access token expires, so a request that reads
// the session is not handed a token that dies on its way to the API.
const refreshSkew = 30 * time.Second

// refreshLockTTL is the store lock's lease. The holder renews it every refreshLockRenew
// while the provider answers, so a slow provider never lets a second replica in with the
// same refresh token, and a crashed holder blocks the account for at most this long.
const refreshLockTTL = 5 * time.Second

// refreshLockRenew is how often the holder renews the lease: well inside refreshLockTTL, so
// one slow store round trip does not lose it.
const refreshLockRenew = refreshLockTTL / 3

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
	// lease and renewEvery time the store lock: refreshLockTTL and refreshLockRenew, which
	// tests shorten to prove a renewed lease outlives a slow provider.
	lease, renewEvery time.Duration
}

type rotatedEntry struct {
	tokens map[string]any
	until  time.Time
}

func newRefresher() *refresher {
	return &refresher{locks: map[string]*accountLock{}, rotated: map[string]rotatedEntry{},
		lease: refreshLockTTL, renewEvery: refreshLockRenew}
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

// refreshClaim is what the session token keeps of an account's tokens.
func refreshClaim(providerID, providerAccountID string, tokens map[string]any) map[string]any {
	c := map[string]any{"provider": providerID, "providerAccountId": providerAccountID}
	for _, k := range []string{"access_token", "refresh_token", "expires_at", "token_type", "scope", "id_token"} {
		if v, ok := tokens[k]; ok {
			c[k] = v
		}
	}
	return c
}

// withOAuthClaim returns token with the refresh claim set, without touching the caller's map.
func withOAuthClaim(token, claim map[string]any) map[string]any {
	out := make(map[string]any, len(token)+1)
	for k, v := range token {
		out[k] = v
	}
	out[oauthClaim] = claim
	return out
}

// refreshOutcome is what a session read does after the refresh check.
type refreshOutcome struct {
	// token is the token to hand to jwt (with the new claim when refreshed).
	token map[string]any
	// jwtArg, when set, replaces the jwt callback's argument: {token, account, trigger:"refresh"}.
	jwtArg map[string]any
	// claim is the refresh claim to put back after jwt ran, nil when there is none.
	claim map[string]any
	// end is set when the session must end: the grant was revoked, or the access token is
	// past its grace period and cannot be refreshed.
	end    bool
	reason string
}

// refreshIfDue is the session read's refresh check. It costs a map lookup and a clock
// comparison unless the access token is about to expire.
func (e *Engine) refreshIfDue(a *authRequest, token map[string]any) (refreshOutcome, error) {
	out := refreshOutcome{token: token}
	claim, ok := token[oauthClaim].(map[string]any)
	if !ok {
		return out, nil
	}
	out.claim = claim
	providerID, _ := claim["provider"].(string)
	p, known := e.provider(a, providerID)
	if !known || p.OAuth == nil || !p.OAuth.Refresh {
		return out, nil
	}
	expiresAt, ok := claim["expires_at"].(float64)
	if !ok {
		return out, nil
	}
	now := e.now()
	expiry := time.Unix(int64(expiresAt), 0)
	if now.Add(refreshSkew).Before(expiry) {
		return out, nil
	}
	oldRefresh, _ := claim["refresh_token"].(string)
	pastGrace := !now.Before(expiry.Add(p.OAuth.RefreshGrace))
	if oldRefresh == "" {
		if pastGrace {
			return refreshOutcome{end: true, reason: "the access token expired and there is no refresh token"}, nil
		}
		return out, nil
	}
	providerAccountID, _ := claim["providerAccountId"].(string)
	tokens, err := e.refreshAccount(a.r.Context(), p, providerAccountID, oldRefresh)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "unauthorized_client") {
			return refreshOutcome{end: true, reason: "the provider refused the refresh token: " + re.ErrorCode}, nil
		}
		if errors.Is(err, ErrStoreUnavailable) && !pastGrace {
			return out, nil
		}
		e.log.WarnContext(a.r.Context(), "access token refresh failed", "code", "OAUTH_REFRESH_ERROR", "provider", p.ID, "error", err.Error())
		if pastGrace {
			return refreshOutcome{end: true, reason: "the access token expired and could not be refreshed"}, nil
		}
		return out, nil
	}
	newClaim := refreshClaim(p.ID, providerAccountID, tokens)
	newToken := withOAuthClaim(token, newClaim)
	account := map[string]any{"provider": p.ID, "type": p.Type, "providerAccountId": providerAccountID}
	for k, v := range tokens {
		account[k] = v
	}
	return refreshOutcome{
		token:  newToken,
		claim:  newClaim,
		jwtArg: map[string]any{"token": newToken, "account": account, "trigger": "refresh"},
	}, nil
}

// refreshAccount returns the tokens that replace oldRefresh: from this process's recent
// refreshes, from the store when another replica refreshed, or from the provider, in that
// order, under the account's lock.
func (e *Engine) refreshAccount(ctx context.Context, p script.Provider, providerAccountID, oldRefresh string) (map[string]any, error) {
	r := e.oauth.refresh
	oldHash := tokenHash(oldRefresh)
	if t, ok := r.lookup(oldHash, e.now()); ok {
		return t, nil
	}
	key := p.ID + "\x00" + providerAccountID
	unlock, err := r.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t, ok := r.lookup(oldHash, e.now()); ok {
		return t, nil
	}
	st := e.stored.st
	var stored *store.Account
	if st != nil {
		release, err := e.storeRefreshLock(ctx, "oauth-refresh:"+tokenHash(key))
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
				r.remember(oldHash, t, e.now())
				return t, nil
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, unavailable(fmt.Errorf("reload account: %w", err))
		}
	}
	ep, err := e.endpointsFor(ctx, p)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(e.oauth.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	tok, err := e.oauth2Config(p, ep).TokenSource(pctx, &oauth2.Token{RefreshToken: oldRefresh}).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh the access token: %w", err)
	}
	tokens := tokenSet(tok)
	if _, ok := tokens["refresh_token"]; !ok {
		tokens["refresh_token"] = oldRefresh // not rotated: keep using it
	}
	r.remember(oldHash, tokens, e.now())
	if stored != nil {
		saved := map[string]any{"refreshed_from": oldHash}
		for k, v := range tokens {
			saved[k] = v
		}
		acc := *stored
		acc.Tokens = saved
		if err := e.replaceAccount(ctx, acc); err != nil {
			// The new tokens are in hand and cached here; other replicas will find the old
			// refresh token rejected and end those sessions, which is safe.
			e.log.WarnContext(ctx, "could not store refreshed tokens", "code", "OAUTH_REFRESH_ERROR", "provider", p.ID, "error", err.Error())
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
func (e *Engine) storeRefreshLock(ctx context.Context, name string) (func(), error) {
	for {
		tok, ok, err := e.stored.st.AcquireLock(ctx, name, e.oauth.refresh.lease)
		if err != nil {
			return nil, unavailable(fmt.Errorf("take the refresh lock: %w", err))
		}
		if ok {
			stopRenewing := e.renewRefreshLock(ctx, name, tok)
			return func() {
				stopRenewing()
				// Released with a context of its own: the request may be over already.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				if err := e.stored.st.ReleaseLock(rctx, name, tok); err != nil {
					e.log.WarnContext(ctx, "release the refresh lock", "code", "OAUTH_REFRESH_ERROR", "error", err.Error())
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
func (e *Engine) renewRefreshLock(ctx context.Context, name, tok string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(e.oauth.refresh.renewEvery)
		defer tick.Stop()
		rctx := context.WithoutCancel(ctx)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				held, err := e.stored.st.RenewLock(rctx, name, tok, e.oauth.refresh.lease)
				if err != nil || !held {
					reason := "the lease was lost"
					if err != nil {
						reason = err.Error()
					}
					e.log.WarnContext(ctx, "renew the refresh lock", "code", "OAUTH_REFRESH_ERROR", "lock", name, "reason", reason)
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
