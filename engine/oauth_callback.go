package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// oauthClaim is the session-token claim where the gateway keeps the provider tokens it
// refreshes itself (providers with `refresh` on). The cookie is encrypted, and the jwt
// callback may read it but the gateway rewrites it after every jwt call.
const oauthClaim = "oauth"

// errAccountNotLinked is NextAuth's AccountNotLinkedError: the profile's e-mail belongs to
// another user and the provider does not allow linking by e-mail.
var errAccountNotLinked = errors.New("the e-mail address belongs to another user")

// errCreateUser is NextAuth's CreateUserError.
var errCreateUser = errors.New("create user")

// oauthCallback is GET|POST /callback/:provider for OAuth providers (§3.7).
func (e *Engine) oauthCallback(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	param := func(k string) string {
		if v, ok := a.body[k].(string); ok && v != "" {
			return v
		}
		return a.query.Get(k)
	}
	if msg := param("error"); msg != "" {
		e.log.ErrorContext(ctx, "the provider returned an error", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "provider", p.ID,
			"error", msg, "error_description", param("error_description"))
		return redirectTo(200, e.errorURL("error=Callback"))
	}
	fail := func(cookies []string, err error) response {
		e.log.ErrorContext(ctx, "OAuth callback refused", "code", "OAUTH_CALLBACK_ERROR", "provider", p.ID, "error", err.Error())
		res := redirectTo(200, e.errorURL("error=OAuthCallback"))
		res.cookies = cookies
		return res
	}

	// The checks: each cookie must be present, decrypt, belong to this provider, match.
	var cookies []string
	var verifier, nonce string
	if p.OAuth.HasCheck("state") {
		state, del, err := e.useCheck(a, a.cookies.State, p.ID)
		if err != nil {
			return fail(cookies, fmt.Errorf("state: %w", err))
		}
		cookies = append(cookies, del)
		if got := param("state"); got != state {
			return fail(cookies, errors.New("state: the state parameter does not match the state cookie"))
		}
	}
	if p.OAuth.HasCheck("pkce") {
		v, del, err := e.useCheck(a, a.cookies.PKCECodeVerifier, p.ID)
		if err != nil {
			return fail(cookies, fmt.Errorf("pkce: %w", err))
		}
		cookies = append(cookies, del)
		verifier = v
	}
	if p.OAuth.HasCheck("nonce") {
		v, del, err := e.useCheck(a, a.cookies.Nonce, p.ID)
		if err != nil {
			return fail(cookies, fmt.Errorf("nonce: %w", err))
		}
		cookies = append(cookies, del)
		nonce = v
	}
	code := param("code")
	if code == "" {
		return fail(cookies, errors.New("the callback has no code"))
	}

	ep, err := e.endpointsFor(ctx, p)
	if err != nil {
		return fail(cookies, err)
	}
	tokens, rawProfile, err := e.exchange(ctx, p, ep, code, verifier, nonce)
	if err != nil {
		return fail(cookies, err)
	}

	user, err := e.profileUser(ctx, a.gen, p, rawProfile, tokens)
	if err != nil {
		e.logScriptError(a, "OAUTH_PARSE_PROFILE_ERROR", err)
		res := redirectTo(200, e.base+"/signin")
		res.cookies = cookies
		return res
	}
	providerAccountID, _ := idString(user["id"])
	account := map[string]any{"provider": p.ID, "type": p.Type, "providerAccountId": providerAccountID}
	for k, v := range tokens {
		account[k] = v
	}

	// With a store, the user is the one linked to this provider account, if any (NextAuth's
	// getUserByAccount); the signIn callback sees that user rather than the profile's.
	var linked *store.User
	if e.stored.st != nil {
		acc, err := e.stored.st.FindAccount(ctx, p.ID, providerAccountID)
		switch {
		case err == nil:
			u, err := e.stored.st.FindUser(ctx, store.UserQuery{ID: acc.UserID})
			if err == nil {
				linked = &u
				user = oauthAdapterUser(u)
			} else if !errors.Is(err, store.ErrNotFound) {
				return e.oauthHandlerFailed(a, cookies, unavailable(err))
			}
		case !errors.Is(err, store.ErrNotFound):
			return e.oauthHandlerFailed(a, cookies, unavailable(err))
		}
	}

	if a.gen.Has("callbacks.signIn") {
		allowed, err := a.gen.Call(ctx, "callbacks.signIn", map[string]any{"user": user, "account": account, "profile": rawProfile})
		if err != nil {
			e.logScriptError(a, "SIGNIN_CALLBACK_ERROR", err)
			msg, ok := publicMessage(err)
			if !ok {
				msg = "Configuration"
			}
			res := redirectTo(200, e.errorURL("error="+cookie.EncodeValue(msg)))
			res.cookies = cookies
			return res
		}
		if target, ok := allowed.(string); ok && target != "" {
			res := redirectTo(200, e.checkedRedirect(a, "callbacks.signIn", target))
			res.cookies = cookies
			return res
		}
		if !truthy(allowed) {
			res := redirectTo(200, e.errorURL("error=AccessDenied"))
			res.cookies = cookies
			return res
		}
	}

	isNewUser := false
	if e.stored.st != nil && linked == nil {
		u, created, err := e.linkOrCreate(a, p, user, account, rawProfile)
		if err != nil {
			return e.oauthHandlerFailed(a, cookies, err)
		}
		linked, isNewUser = &u, created
		user = oauthAdapterUser(u)
	} else if linked != nil {
		e.saveAccountTokens(ctx, p, *linked, providerAccountID, tokens)
	}

	var sessionCookies []string
	if a.cfg.Session.Strategy == "database" {
		if linked == nil {
			e.log.ErrorContext(ctx, errNoStore.Error(), "code", "SESSION_ERROR")
			return redirectTo(200, e.errorURL("error=Configuration"))
		}
		sc, res, ok := e.newDatabaseSession(a, linked.ID)
		if !ok {
			return res
		}
		sessionCookies = sc
	} else {
		tokenIn := map[string]any{}
		for claim, field := range map[string]string{"name": "name", "email": "email", "picture": "image"} {
			if v, ok := user[field]; ok {
				tokenIn[claim] = v
			}
		}
		if id, ok := idString(user["id"]); ok {
			tokenIn["sub"] = id
		}
		tokenOut := tokenIn
		if a.gen.Has("callbacks.jwt") {
			trigger := "signIn"
			if isNewUser {
				trigger = "signUp"
			}
			res, err := a.gen.Call(ctx, "callbacks.jwt", map[string]any{
				"token": tokenIn, "user": user, "account": account, "profile": rawProfile, "isNewUser": isNewUser, "trigger": trigger,
			})
			if err != nil {
				e.logScriptError(a, "JWT_CALLBACK_ERROR", err)
				return redirectTo(200, e.errorURL("error=Configuration"))
			}
			if res == nil {
				return redirectTo(200, e.errorURL("error=AccessDenied"))
			}
			tokenOut, _ = res.(map[string]any)
		}
		if p.OAuth.Refresh {
			tokenOut = withOAuthClaim(tokenOut, refreshClaim(p.ID, providerAccountID, tokens))
		}
		tok, err := e.keys.Encode(tokenOut, a.cfg.JWT.MaxAge)
		if err != nil {
			e.log.ErrorContext(ctx, "encode session token", "code", "JWT_ENCODE_ERROR", "error", err.Error())
			return redirectTo(200, e.errorURL("error=Configuration"))
		}
		sessionCookies = e.writeSessionCookies(a, tok, e.now().Add(a.cfg.Session.MaxAge))
	}

	e.event(a, "events.signIn", map[string]any{"user": user, "account": account, "profile": rawProfile, "isNewUser": isNewUser})
	target := a.callbackURL
	if isNewUser && a.cfg.Pages.NewUser != "" {
		target = withQuery(a.cfg.Pages.NewUser, "callbackUrl="+cookie.EncodeValue(a.callbackURL))
	}
	res := redirectTo(200, target)
	res.cookies = append(cookies, sessionCookies...)
	return res
}

// oauthHandlerFailed maps a failure of the account handler to NextAuth's codes.
func (e *Engine) oauthHandlerFailed(a *authRequest, cookies []string, err error) response {
	code := "Callback"
	switch {
	case errors.Is(err, errAccountNotLinked):
		code = "OAuthAccountNotLinked"
	case errors.Is(err, errCreateUser):
		code = "OAuthCreateAccount"
	case errors.Is(err, ErrStoreUnavailable):
		res := storeUnavailableRedirect(e)
		res.cookies = cookies
		e.log.ErrorContext(a.r.Context(), "OAuth sign-in: store unavailable", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "error", err.Error())
		return res
	}
	e.log.ErrorContext(a.r.Context(), "OAuth sign-in refused", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "error", err.Error())
	res := redirectTo(200, e.errorURL("error="+code))
	res.cookies = cookies
	return res
}

// exchange trades the code for tokens, verifies the ID token when the provider has one
// (signature, iss, aud, exp, nonce) and returns the token set as NextAuth's account
// carries it plus the raw profile: the ID token's claims, or the userinfo response.
func (e *Engine) exchange(ctx context.Context, p script.Provider, ep *providerEndpoints, code, verifier, nonce string) (map[string]any, map[string]any, error) {
	pctx, cancel := context.WithTimeout(e.oauth.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := e.oauth2Config(p, ep).Exchange(pctx, code, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("exchange the code: %w", err)
	}
	tokens := tokenSet(tok)
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
		profile, err = e.userinfo(pctx, ep.userinfoURL, tok)
		if err != nil {
			return nil, nil, err
		}
		e.fillProfileEmail(pctx, p, tok, profile)
	}
	return tokens, profile, nil
}

// tokenSet is the token response as NextAuth's account holds it: expires_in becomes
// expires_at (seconds since the epoch).
func tokenSet(tok *oauth2.Token) map[string]any {
	out := map[string]any{"access_token": tok.AccessToken, "token_type": strings.ToLower(tok.TokenType)}
	if tok.TokenType == "" {
		delete(out, "token_type")
	}
	if tok.RefreshToken != "" {
		out["refresh_token"] = tok.RefreshToken
	}
	if !tok.Expiry.IsZero() {
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
func (e *Engine) userinfo(ctx context.Context, u string, tok *oauth2.Token) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	// GitHub's API refuses requests without a User-Agent.
	req.Header.Set("User-Agent", "callgate")
	tok.SetAuthHeader(req)
	resp, err := e.oauth.http.Do(req)
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
func (e *Engine) profileUser(ctx context.Context, gen *script.Generation, p script.Provider, profile, tokens map[string]any) (map[string]any, error) {
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
	if id, ok := idString(user["id"]); !ok || id == "" {
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

// oauthAdapterUser is the store user as callbacks see it after an OAuth sign-in: the
// adapter user with its image.
func oauthAdapterUser(u store.User) map[string]any {
	m := adapterUser(u)
	if _, ok := m["image"]; !ok {
		m["image"] = nil
	}
	return m
}

// linkOrCreate is NextAuth's callback handler for a provider account the store does not
// know yet: link it to the user with the profile's e-mail when the provider allows that,
// refuse when that e-mail belongs to someone else, otherwise create the user.
func (e *Engine) linkOrCreate(a *authRequest, p script.Provider, user, account, profile map[string]any) (store.User, bool, error) {
	ctx := a.r.Context()
	st := e.stored.st
	email, _ := user["email"].(string)
	providerAccountID, _ := account["providerAccountId"].(string)
	var u store.User
	created := false
	if email != "" {
		found, err := st.FindUser(ctx, store.UserQuery{Email: email})
		switch {
		case err == nil:
			if !p.OAuth.AllowDangerousEmailAccountLinking {
				return store.User{}, false, fmt.Errorf("%w (provider %s)", errAccountNotLinked, p.ID)
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
			return store.User{}, false, fmt.Errorf("%w: %w", errCreateUser, err)
		}
		created = true
		e.event(a, "events.createUser", map[string]any{"user": oauthAdapterUser(u)})
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
	e.event(a, "events.linkAccount", map[string]any{"user": oauthAdapterUser(u), "account": linkedAccount, "profile": user})
	return u, created, nil
}

// saveAccountTokens keeps the store's copy of a returning user's tokens current, as
// NextAuth does not but a gateway refreshing tokens must (oauth_refresh.go reads it). A
// failure is logged: the sign-in itself does not depend on it.
func (e *Engine) saveAccountTokens(ctx context.Context, p script.Provider, u store.User, providerAccountID string, tokens map[string]any) {
	if !p.OAuth.Refresh {
		return
	}
	if err := e.replaceAccount(ctx, store.Account{UserID: u.ID, Type: p.Type, Provider: p.ID, ProviderAccountID: providerAccountID, Tokens: tokens}); err != nil {
		e.log.WarnContext(ctx, "could not store the provider tokens", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "provider", p.ID, "error", err.Error())
	}
}

// replaceAccount rewrites an account's tokens. The store has no update, so it unlinks and
// links again; callers hold the account's refresh lock, so no other refresh interleaves.
func (e *Engine) replaceAccount(ctx context.Context, acc store.Account) error {
	st := e.stored.st
	if err := st.UnlinkAccount(ctx, acc.Provider, acc.ProviderAccountID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("unlink account: %w", err)
	}
	if err := st.LinkAccount(ctx, acc); err != nil {
		return fmt.Errorf("link account: %w", err)
	}
	return nil
}

// newDatabaseSession creates a store session for userID and returns its cookies.
func (e *Engine) newDatabaseSession(a *authRequest, userID string) ([]string, response, bool) {
	ctx := a.r.Context()
	tok, err := newSessionToken()
	if err != nil {
		e.log.ErrorContext(ctx, "create session", "code", "SESSION_ERROR", "error", err.Error())
		return nil, redirectTo(200, e.errorURL("error=Configuration")), false
	}
	now := e.now()
	expires := now.Add(a.cfg.Session.MaxAge)
	if err := e.stored.st.CreateSession(ctx, store.Session{ID: store.SessionID(tok), UserID: userID, Expires: expires, CreatedAt: now}); err != nil {
		e.log.ErrorContext(ctx, "create session", "code", "SESSION_ERROR", "error", err.Error())
		return nil, storeUnavailableRedirect(e), false
	}
	return e.writeSessionCookies(a, tok, expires), response{}, true
}
