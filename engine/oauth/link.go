package oauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// ErrAccountNotLinked is NextAuth's AccountNotLinkedError: the profile's e-mail belongs to
// another user and the provider does not allow linking by e-mail.
var ErrAccountNotLinked = errors.New("the e-mail address belongs to another user")

// ErrCreateUser is NextAuth's CreateUserError.
var ErrCreateUser = errors.New("create user")

// LinkEvents are told what LinkOrCreate did, as it happens, so the caller can run
// events.createUser and events.linkAccount in NextAuth's order. Either may be nil.
type LinkEvents struct {
	// CreateUser follows the creation of u.
	CreateUser func(u store.User)
	// LinkAccount follows the link: account is the SignIn's with userId set, profile the
	// SignIn's user (NextAuth passes the mapped profile).
	LinkAccount func(u store.User, account, profile map[string]any)
}

// LinkOrCreate is NextAuth's callback handler for a provider account the store does not
// know yet (s.Linked is nil): link it to the user with the profile's e-mail when the
// provider allows that, refuse when that e-mail belongs to someone else
// (ErrAccountNotLinked), otherwise create the user (ErrCreateUser when that fails). user
// is the user the signIn callback saw. It returns the linked user and whether it was
// created. It needs a store.
func (c *Client) LinkOrCreate(ctx context.Context, p script.Provider, user, account map[string]any, ev LinkEvents) (store.User, bool, error) {
	st := c.st
	if st == nil {
		return store.User{}, false, errors.New("link account: no store")
	}
	email, _ := user["email"].(string)
	providerAccountID, _ := account["providerAccountId"].(string)
	var u store.User
	created := false
	if email != "" {
		found, err := st.FindUser(ctx, store.UserQuery{Email: email})
		switch {
		case err == nil:
			if !p.OAuth.AllowDangerousEmailAccountLinking {
				return store.User{}, false, fmt.Errorf("%w (provider %s)", ErrAccountNotLinked, p.ID)
			}
			u = found
		case !errors.Is(err, store.ErrNotFound):
			return store.User{}, false, unavailable(err)
		}
	}
	if u.ID == "" {
		name, _ := user["name"].(string)
		nu := store.User{Username: p.ID + ":" + providerAccountID, Name: name, Email: email}
		if img, ok := user["image"].(string); ok && img != "" {
			nu.Extra = map[string]any{"image": img}
		}
		var err error
		u, err = st.CreateUser(ctx, nu)
		if err != nil {
			if errors.Is(err, store.ErrUnavailable) {
				return store.User{}, false, unavailable(err)
			}
			return store.User{}, false, fmt.Errorf("%w: %w", ErrCreateUser, err)
		}
		created = true
		if ev.CreateUser != nil {
			ev.CreateUser(u)
		}
	}
	tokens := map[string]any{}
	for k, v := range account {
		if k != "provider" && k != "type" && k != "providerAccountId" {
			tokens[k] = v
		}
	}
	if err := st.LinkAccount(ctx, store.Account{UserID: u.ID, Type: p.Type, Provider: p.ID, ProviderAccountID: providerAccountID, Tokens: tokens}); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			return store.User{}, false, fmt.Errorf("link account: %w", err)
		}
		return store.User{}, false, unavailable(fmt.Errorf("link account: %w", err))
	}
	linkedAccount := map[string]any{}
	for k, v := range account {
		linkedAccount[k] = v
	}
	linkedAccount["userId"] = u.ID
	if ev.LinkAccount != nil {
		ev.LinkAccount(u, linkedAccount, user)
	}
	return u, created, nil
}

// SaveAccountTokens keeps the store's copy of a returning user's tokens current, as
// NextAuth does not but a gateway refreshing tokens must (refresh.go reads it). It does
// nothing for providers without refresh or without a store. A failure is logged: the
// sign-in itself does not depend on it.
func (c *Client) SaveAccountTokens(ctx context.Context, p script.Provider, s *SignIn) {
	if !p.OAuth.Refresh || c.st == nil || s.Linked == nil {
		return
	}
	if err := c.replaceAccount(ctx, store.Account{UserID: s.Linked.ID, Type: p.Type, Provider: p.ID, ProviderAccountID: s.ProviderAccountID, Tokens: s.Tokens}); err != nil {
		c.log.WarnContext(ctx, "could not store the provider tokens", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "provider", p.ID, "error", err.Error())
	}
}

// replaceAccount rewrites an account's tokens. The store has no update, so it unlinks and
// links again; callers hold the account's refresh lock, so no other refresh interleaves.
func (c *Client) replaceAccount(ctx context.Context, acc store.Account) error {
	if err := c.st.UnlinkAccount(ctx, acc.Provider, acc.ProviderAccountID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("unlink account: %w", err)
	}
	if err := c.st.LinkAccount(ctx, acc); err != nil {
		return fmt.Errorf("link account: %w", err)
	}
	return nil
}
