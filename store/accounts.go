package store

import (
	"context"
	"time"
)

// Account links a user to a sign-in provider account (NextAuth's adapter Account): one
// user may have several, one provider account belongs to one user.
type Account struct {
	UserID            string
	Type              string // "oauth", "oidc", "email", "credentials"
	Provider          string // provider id, e.g. "github"
	ProviderAccountID string
	// Tokens holds the provider's token set (access_token, refresh_token, expires_at, ...),
	// JSON-shaped values as in User.Extra.
	Tokens map[string]any
}

// Accounts is NextAuth's linkAccount / getUserByAccount / unlinkAccount.
type Accounts interface {
	// LinkAccount stores a. The (Provider, ProviderAccountID) pair is unique: a taken pair
	// gives an error wrapping ErrDuplicate.
	LinkAccount(ctx context.Context, a Account) error
	// FindAccount returns the account of this provider account, or ErrNotFound.
	FindAccount(ctx context.Context, provider, providerAccountID string) (Account, error)
	// UnlinkAccount removes the account, or returns ErrNotFound.
	UnlinkAccount(ctx context.Context, provider, providerAccountID string) error
}

// VerificationToken is a one-time e-mail sign-in token (NextAuth's VerificationToken). Like
// sessions, only the token's hash should be stored: Token holds what the caller passes, and
// the caller passes SessionID(token).
type VerificationToken struct {
	Identifier string // usually the e-mail address
	Token      string
	Expires    time.Time
}

// VerificationTokens is NextAuth's createVerificationToken / useVerificationToken.
type VerificationTokens interface {
	// CreateVerificationToken stores t, replacing one with the same identifier and token.
	CreateVerificationToken(ctx context.Context, t VerificationToken) error
	// UseVerificationToken deletes and returns the token: it can be used once. A missing
	// token is ErrNotFound; an expired one is returned (and deleted) for the caller to refuse.
	UseVerificationToken(ctx context.Context, identifier, token string) (VerificationToken, error)
}
