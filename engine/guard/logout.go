package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/callgate/callgate/store"
)

// Single logout from an OpenID Connect provider (Back-Channel Logout) ends jwt sessions the
// store never held, and database sessions the store cannot find by provider session, so it
// goes through the revocation list like "sign out everywhere", under keys of their own:
//
//   - a provider session (the logout token's sid) is a token revocation keyed by
//     ProviderSessionKey: every token started from that provider session is revoked, for
//     good, since a provider never reuses a session id;
//   - a provider subject (the logout token's sub alone) is a user revocation keyed by
//     ProviderSubjectKey with the logout's time as its cut-off: the user's sessions started
//     with that provider before it end, a later sign-in is not touched.
//
// The engine checks a token's provider session (its oidc_session claim), and a database
// session's recorded one, against both on every read, in memory, as it checks sub and jti
// (CheckProviderSession). The keys are
// hashes: fixed length whatever the provider sends, and they cannot collide with a user id
// or a token id, which are never 64 hex characters behind a prefix.
//
// Each logout token's jti is reserved in the store (Logouts.Reserve) before anything is
// revoked, so a captured token replayed to any replica is refused, and cannot end a session
// started after the logout it carried.

// ProviderSessionKey is the revocation key (a store.Revocation's TokenID) of the provider
// session sid of provider.
func ProviderSessionKey(provider, sid string) string { return "oidc-sid:" + pairHash(provider, sid) }

// ProviderSubjectKey is the revocation key (a store.Revocation's UserID) of the provider
// subject sub of provider.
func ProviderSubjectKey(provider, sub string) string {
	return "oidc-sub:" + pairHash(provider, sub)
}

func pairHash(a, b string) string {
	sum := sha256.Sum256([]byte(a + "\x00" + b))
	return hex.EncodeToString(sum[:])
}

// CheckProviderSession reports whether a token started from the provider session sid (or
// by the provider subject sub) of provider, issued at iat, was revoked by a back-channel
// logout; the stale-list policy is Check's.
func (v *Revocations) CheckProviderSession(ctx context.Context, provider, sub, sid string, iat time.Time) (bool, error) {
	if v == nil {
		return false, nil
	}
	var subKey, sidKey string
	if sub != "" {
		subKey = ProviderSubjectKey(provider, sub)
	}
	if sid != "" {
		sidKey = ProviderSessionKey(provider, sid)
	}
	return v.Check(ctx, subKey, sidKey, iat)
}

// ErrReplayed is a logout token whose jti was seen before.
var ErrReplayed = errors.New("the logout token was used before (jti)")

// Logouts is the store's half of back-channel logout: replay protection and the
// revocations. nil when the gateway has no store; its methods then fail with ErrNoStore.
type Logouts struct {
	st  store.Store
	now func() time.Time
}

// ErrNoStore is a back-channel logout on a gateway without a store: nothing could revoke
// the sessions or remember the token.
var ErrNoStore = errors.New("back-channel logout needs a store: the revocations and the logout token's jti are kept there")

// Reserve records the logout token jti of provider for ttl, on every replica sharing the
// store. It fails with ErrReplayed when the jti was reserved before, and returns release,
// which gives the reservation back when the logout could not be carried out, so that the
// provider's retry of the same token is not refused as a replay.
func (l *Logouts) Reserve(ctx context.Context, provider, jti string, ttl time.Duration) (release func(context.Context), err error) {
	if l == nil {
		return nil, ErrNoStore
	}
	// A lease that nobody renews: taken once, it holds the jti for ttl; a replay finds it
	// held and changes nothing, so giving it back after a failure always frees it.
	name := "logout-jti:" + pairHash(provider, jti)
	token, ok, err := l.st.AcquireLock(ctx, name, ttl)
	if err != nil {
		return nil, fmt.Errorf("reserve the logout token's jti: %w", err)
	}
	if !ok {
		return nil, ErrReplayed
	}
	return func(ctx context.Context) { _ = l.st.ReleaseLock(ctx, name, token) }, nil
}

// RevokeProviderSession revokes every token started from the provider session sid, for
// ttl (the longest a session token lives).
func (l *Logouts) RevokeProviderSession(ctx context.Context, provider, sid string, ttl time.Duration) error {
	if l == nil {
		return ErrNoStore
	}
	err := l.st.Revoke(ctx, store.Revocation{TokenID: ProviderSessionKey(provider, sid), Expires: l.now().Add(ttl)})
	if err != nil {
		return fmt.Errorf("revoke the provider session: %w", err)
	}
	return nil
}

// RevokeProviderSubject revokes the tokens of the provider subject sub issued up to
// before (now when zero or later: never a session not yet started), for ttl.
func (l *Logouts) RevokeProviderSubject(ctx context.Context, provider, sub string, before time.Time, ttl time.Duration) error {
	if l == nil {
		return ErrNoStore
	}
	now := l.now()
	if before.IsZero() || before.After(now) {
		before = now
	}
	err := l.st.Revoke(ctx, store.Revocation{UserID: ProviderSubjectKey(provider, sub), Before: before, Expires: now.Add(ttl)})
	if err != nil {
		return fmt.Errorf("revoke the provider subject: %w", err)
	}
	return nil
}
