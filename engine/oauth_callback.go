package engine

import (
	"errors"

	"github.com/callgate/callgate/engine/oauth"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
	"github.com/callgate/callgate/store"
)

// oauthCallback is GET|POST /callback/:provider for OAuth providers: the checks, the OAuth
// client's callback (engine/oauth), then the sign-in tail (signin.go) with account linking
// as its link step.
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
		return redirectTo(200, e.urls.errorURL("error=Callback"))
	}
	fail := func(cookies []string, err error) response {
		e.log.ErrorContext(ctx, "OAuth callback refused", "code", "OAUTH_CALLBACK_ERROR", "provider", p.ID, "error", err.Error())
		res := redirectTo(200, e.urls.errorURL("error=OAuthCallback"))
		res.cookies = cookies
		return res
	}
	withCookies := func(res response, cookies []string) response {
		res.cookies = cookies
		return res
	}

	// The checks: each cookie must be present, decrypt, belong to this provider, match.
	checks, cookies, err := e.checks.verify(a, p, param("state"))
	if err != nil {
		return fail(cookies, err)
	}
	code := param("code")
	if code == "" {
		return fail(cookies, errors.New("the callback has no code"))
	}

	signin, err := e.oauth.Callback(ctx, a.gen, p, code, checks)
	var profileErr *oauth.ProfileError
	switch {
	case errors.As(err, &profileErr):
		a.logScriptError("OAUTH_PARSE_PROFILE_ERROR", profileErr.Err)
		return withCookies(redirectTo(200, e.base+"/signin"), cookies)
	case errors.Is(err, oauth.ErrStoreUnavailable):
		return e.oauthHandlerFailed(a, cookies, err)
	case err != nil:
		return fail(cookies, err)
	}
	user, account, rawProfile := signin.User, signin.Account, signin.Profile
	// With a store, the user is the one linked to this provider account, if any (NextAuth's
	// getUserByAccount); the signIn callback sees that user rather than the profile's.
	linked := signin.Linked
	if linked != nil {
		user = oauthAdapterUser(*linked)
	}

	attempt := &signInAttempt{
		in: session.SignIn{
			User: user, Account: account, Profile: rawProfile, WithProfile: true,
		},
		signInExtra: map[string]any{"profile": rawProfile},
		oauth:       true,
		cookies:     cookies,
		amr:         []string{amrFederated},
		link: func(s *signInAttempt) (response, bool) {
			if e.stored.st != nil && linked == nil {
				u, created, err := e.oauth.LinkOrCreate(ctx, p, s.in.User, s.in.Account, oauth.LinkEvents{
					CreateUser: func(u store.User) {
						a.emit(script.EventCreateUser, map[string]any{"user": oauthAdapterUser(u)})
					},
					LinkAccount: func(u store.User, account, profile map[string]any) {
						a.emit(script.EventLinkAccount, map[string]any{"user": oauthAdapterUser(u), "account": account, "profile": profile})
					},
				})
				if err != nil {
					return e.oauthHandlerFailed(a, cookies, err), true
				}
				linked, s.in.IsNewUser = &u, created
				s.in.User = oauthAdapterUser(u)
				s.relinked = !created
			} else if linked != nil {
				e.oauth.SaveAccountTokens(ctx, p, signin)
			}
			if linked == nil {
				// No store: only a jwt session can be issued (a database one fails with
				// session.ErrNoStore).
				s.in.UserID, s.in.HasID = script.IDString(s.in.User["id"])
			} else {
				s.in.UserID, s.in.HasID = linked.ID, true
			}
			return response{}, false
		},
	}
	if p.OAuth.Refresh || signin.Session != nil {
		attempt.in.Claims = map[string]any{}
	}
	if p.OAuth.Refresh {
		attempt.in.Claims[oauth.Claim] = oauth.RefreshClaim(p.ID, signin.ProviderAccountID, signin.Tokens)
	}
	if signin.Session != nil {
		// The provider session, for single logout: a back-channel logout revokes by it and
		// a sign-out sends its ID token to the provider's end_session_endpoint.
		attempt.in.Claims[oauth.SessionClaim] = signin.Session.Claim()
		attempt.in.ProviderSession = &session.ProviderSession{Provider: p.ID, Subject: signin.Session.Subject, SID: signin.Session.SID}
	}
	return e.signInTail(a, attempt)
}

// oauthHandlerFailed maps a failure of the account handler to NextAuth's codes.
func (e *Engine) oauthHandlerFailed(a *authRequest, cookies []string, err error) response {
	code := "Callback"
	switch {
	case errors.Is(err, oauth.ErrAccountNotLinked):
		code = "OAuthAccountNotLinked"
	case errors.Is(err, oauth.ErrCreateUser):
		code = "OAuthCreateAccount"
	case errors.Is(err, oauth.ErrStoreUnavailable), errors.Is(err, ErrStoreUnavailable):
		res := storeUnavailableRedirect(e)
		res.cookies = cookies
		e.log.ErrorContext(a.r.Context(), "OAuth sign-in: store unavailable", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "error", err.Error())
		return res
	}
	e.log.ErrorContext(a.r.Context(), "OAuth sign-in refused", "code", "OAUTH_CALLBACK_HANDLER_ERROR", "error", err.Error())
	res := redirectTo(200, e.urls.errorURL("error="+code))
	res.cookies = cookies
	return res
}

// oauthAdapterUser is the store user as callbacks see it after an OAuth sign-in: the
// adapter user with its image.
func oauthAdapterUser(u store.User) map[string]any {
	m := u.AdapterUser()
	if _, ok := m["image"]; !ok {
		m["image"] = nil
	}
	return m
}
