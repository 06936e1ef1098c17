package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// SignIn is what a callback established: the provider's user and account as the signIn,
// jwt and events callbacks receive them, and the store user already linked to that
// account, if any.
type SignIn struct {
	// User is the provider's profile mapped by the provider's profile() (or NextAuth's OIDC
	// default): id, name, email, image.
	User map[string]any
	// Account is NextAuth's account: provider, type, providerAccountId and the token set.
	Account map[string]any
	// Profile is the raw profile: the ID token's claims, or the userinfo response.
	Profile map[string]any
	// Tokens is the token set alone (access_token, refresh_token, expires_at, ...).
	Tokens map[string]any
	// ProviderAccountID is String(User.id).
	ProviderAccountID string
	// Linked is the store user linked to this provider account (NextAuth's
	// getUserByAccount); nil without a store or when the account is new.
	Linked *store.User
	// Session is the provider session the ID token names, for providers with `logout` on
	// (logout.go); nil otherwise.
	Session *ProviderSession
}

// ProfileError is a failure of the provider's profile() callback, or a profile without an
// id; NextAuth answers it differently from a failed exchange (OAUTH_PARSE_PROFILE_ERROR).
type ProfileError struct{ Err error }

func (e *ProfileError) Error() string { return "profile: " + e.Err.Error() }
func (e *ProfileError) Unwrap() error { return e.Err }

// Callback completes a sign-in with p: it trades code for tokens (with the PKCE verifier
// of checks), verifies the ID token (signature, iss, aud, exp, and the nonce of checks),
// reads the profile, maps it with gen's profile() and looks up the store user linked to
// the account. The state check is the caller's: it compares the state it kept with the
// callback's parameter before calling.
//
// Errors: *ProfileError when the profile could not be mapped, ErrStoreUnavailable
// (wrapped) when the linked user could not be read, anything else when the exchange failed.
func (c *Client) Callback(ctx context.Context, gen *script.Generation, p script.Provider, code string, checks Checks) (*SignIn, error) {
	ep, err := c.endpointsFor(ctx, p)
	if err != nil {
		return nil, err
	}
	tokens, profile, err := c.exchange(ctx, p, ep, code, checks.PKCEVerifier, checks.Nonce)
	if err != nil {
		return nil, err
	}
	user, err := profileUser(ctx, gen, p, profile, tokens)
	if err != nil {
		return nil, &ProfileError{Err: err}
	}
	s := &SignIn{User: user, Profile: profile, Tokens: tokens}
	if rawID, _ := tokens["id_token"].(string); rawID != "" && p.OAuth.IDToken {
		// With IDToken set, profile is the verified ID token's claims (exchange).
		s.Session = sessionOf(p, profile, rawID)
	}
	s.ProviderAccountID, _ = script.IDString(user["id"])
	s.Account = map[string]any{"provider": p.ID, "type": p.Type, "providerAccountId": s.ProviderAccountID}
	for k, v := range tokens {
		s.Account[k] = v
	}
	if c.st != nil {
		acc, err := c.st.FindAccount(ctx, p.ID, s.ProviderAccountID)
		switch {
		case err == nil:
			u, err := c.st.FindUser(ctx, store.UserQuery{ID: acc.UserID})
			if err == nil {
				s.Linked = &u
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, unavailable(err)
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, unavailable(err)
		}
	}
	return s, nil
}

// exchange trades the code for tokens, verifies the ID token when the provider has one
// (signature, iss, aud, exp, nonce) and returns the token set as NextAuth's account
// carries it plus the raw profile: the ID token's claims, or the userinfo response.
func (c *Client) exchange(ctx context.Context, p script.Provider, ep *providerEndpoints, code, verifier, nonce string) (map[string]any, map[string]any, error) {
	pctx, cancel := context.WithTimeout(c.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := c.oauth2Config(p, ep).Exchange(pctx, code, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("exchange the code: %w", err)
	}
	tokens := tokenSet(tok, c.now())
	var profile map[string]any
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" && ep.verifier != nil {
		idt, err := ep.verifier.Verify(pctx, rawID)
		if err != nil {
			return nil, nil, fmt.Errorf("verify the ID token: %w", err)
		}
		if p.OAuth.HasCheck("nonce") && idt.Nonce != nonce {
			return nil, nil, errors.New("verify the ID token: nonce does not match the nonce cookie")
		}
		if err := idt.Claims(&profile); err != nil {
			return nil, nil, fmt.Errorf("read the ID token claims: %w", err)
		}
	} else if p.OAuth.IDToken {
		return nil, nil, errors.New("the provider returned no ID token")
	}
	if profile == nil {
		if ep.userinfoURL == "" {
			return nil, nil, errors.New("the provider has no userinfo endpoint")
		}
		profile, err = c.userinfo(pctx, ep.userinfoURL, tok)
		if err != nil {
			return nil, nil, err
		}
		c.fillProfileEmail(pctx, p, tok, profile)
	}
	return tokens, profile, nil
}

// tokenSet is the token response as NextAuth's account holds it: expires_in becomes
// expires_at (seconds since the epoch).
func tokenSet(tok *oauth2.Token, now time.Time) map[string]any {
	out := map[string]any{"access_token": tok.AccessToken, "token_type": strings.ToLower(tok.TokenType)}
	if tok.TokenType == "" {
		delete(out, "token_type")
	}
	if tok.RefreshToken != "" {
		out["refresh_token"] = tok.RefreshToken
	}
	switch {
	case tok.ExpiresIn > 0:
		// By the gateway's clock, which decides when the token is refreshed (x/oauth2's
		// Expiry is by the wall clock).
		out["expires_at"] = float64(now.Add(time.Duration(tok.ExpiresIn) * time.Second).Unix())
	case !tok.Expiry.IsZero():
		out["expires_at"] = float64(tok.Expiry.Unix())
	}
	for _, k := range []string{"id_token", "scope", "session_state"} {
		if v, ok := tok.Extra(k).(string); ok && v != "" {
			out[k] = v
		}
	}
	return out
}

// userinfo reads the profile with the access token.
func (c *Client) userinfo(ctx context.Context, u string, tok *oauth2.Token) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	// GitHub's API refuses requests without a User-Agent.
	req.Header.Set("User-Agent", "callgate")
	tok.SetAuthHeader(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read userinfo: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: HTTP %d", resp.StatusCode)
	}
	var profile map[string]any
	if err := json.Unmarshal(body, &profile); err != nil || profile == nil {
		return nil, fmt.Errorf("userinfo is not a JSON object: %w", err)
	}
	return profile, nil
}

// profileUser runs the provider's profile() or, without one, NextAuth's OIDC default.
func profileUser(ctx context.Context, gen *script.Generation, p script.Provider, profile, tokens map[string]any) (map[string]any, error) {
	var user map[string]any
	if p.OAuth.HasProfile {
		u, err := gen.Profile(ctx, p.ID, profile, tokens)
		if err != nil {
			return nil, err
		}
		user = u
	} else {
		user = map[string]any{"id": profile["sub"], "name": firstOf(profile, "name", "preferred_username"),
			"email": profile["email"], "image": profile["picture"]}
		if user["id"] == nil {
			user["id"] = profile["id"]
		}
	}
	if id, ok := script.IDString(user["id"]); !ok || id == "" {
		return nil, errors.New("the profile has no id")
	}
	return user, nil
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			return v
		}
	}
	return nil
}
