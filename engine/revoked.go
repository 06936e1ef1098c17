package engine

import (
	"context"
	"time"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/engine/oauth"
	"github.com/callgate/callgate/engine/session"
)

// revokedHook applies the revocation list to decoded jwt claims. It is the session
// strategies' Revoked hook (engine/session): the jwt strategy calls it on every read, the
// proxy's cached ones included; the check is in memory (engine/guard). A nil list (no
// store) revokes nothing.
func revokedHook(list *guard.Revocations) func(ctx context.Context, claims map[string]any) (bool, error) {
	return func(ctx context.Context, claims map[string]any) (bool, error) {
		if list == nil {
			return false, nil
		}
		sub, _ := claims["sub"].(string)
		jti, _ := claims["jti"].(string)
		var iat time.Time
		if v, ok := claims["iat"].(float64); ok {
			iat = time.Unix(int64(v), 0)
		}
		if revoked, err := list.Check(ctx, sub, jti, iat); revoked || err != nil {
			return revoked, err
		}
		// A session started with a provider that has back-channel logout on carries the
		// provider session: a logout at the provider revokes it (engine/guard/logout.go).
		if ps, ok := oauth.ProviderSessionOf(claims); ok {
			return list.CheckProviderSession(ctx, ps.Provider, ps.Subject, ps.SID, iat)
		}
		return false, nil
	}
}

// providerRevokedHook is the database strategy's ProviderRevoked hook: the same check as
// the jwt token's provider session claim gets in revokedHook, for a store session that
// records its provider session.
func providerRevokedHook(list *guard.Revocations) func(ctx context.Context, ps session.ProviderSession, issuedAt time.Time) (bool, error) {
	return func(ctx context.Context, ps session.ProviderSession, issuedAt time.Time) (bool, error) {
		return list.CheckProviderSession(ctx, ps.Provider, ps.Subject, ps.SID, issuedAt)
	}
}
