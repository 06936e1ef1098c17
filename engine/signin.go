package engine

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
)

// callback is GET|POST /callback/:provider: OAuth providers (oauth_callback.go), and
// credentials, which sign in by POST.
func (e *Engine) callback(a *authRequest) response {
	p, ok := providerByID(&a.cfg, a.providerID)
	if !ok {
		return textResponse(http.StatusBadRequest, fmt.Sprintf("Error: This action with HTTP %s is not supported by NextAuth.js", a.r.Method))
	}
	if p.Type == "oauth" || p.Type == "oidc" {
		return e.oauthCallback(a, p)
	}
	if p.Type == "email" {
		return e.emailCallback(a, p)
	}
	if p.Type == "passkey" {
		if a.r.Method != http.MethodPost {
			return textResponse(http.StatusBadRequest, "Error: sign-in with a passkey is a POST")
		}
		if !a.csrfVerified {
			return redirectTo(200, e.base+"/signin?csrf=true")
		}
		return e.passkeySignIn(a, p)
	}
	if p.Type != "credentials" {
		return redirectTo(200, e.urls.errorURL("error=Configuration"))
	}
	if a.r.Method != http.MethodPost {
		return textResponse(http.StatusInternalServerError, "Error: Callback for provider type credentials not supported")
	}
	if !a.csrfVerified {
		return redirectTo(200, e.base+"/signin?csrf=true")
	}
	return e.credentialsSignIn(a, p)
}

// credentialsSignIn is NextAuth's credentials flow (docs/wire.md §3.7): authorize, then the sign-in
// tail (signIn → session → events.signIn → redirect to the callback URL).
func (e *Engine) credentialsSignIn(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	if res, refused := e.limiter.refused(a); refused {
		return res
	}
	inspectSecrets(a, p)
	user, err := a.gen.Authorize(ctx, p.ID, a.body, authorizeRequest(a))
	if err != nil {
		if msg, ok := publicMessage(err); ok {
			a.limits.Failed(ctx)
			a.logScriptError("CREDENTIALS_AUTHORIZE_ERROR", err)
			return redirectTo(http.StatusUnauthorized, e.urls.errorURL("error="+cookie.EncodeValue(msg)))
		}
		a.logScriptError("CREDENTIALS_AUTHORIZE_ERROR", err)
		return redirectTo(http.StatusInternalServerError, e.urls.errorURL("error=Configuration"))
	}
	if user == nil {
		a.limits.Failed(ctx)
		return redirectTo(http.StatusUnauthorized, e.urls.errorURL("error=CredentialsSignin&provider="+cookie.EncodeValue(p.ID)))
	}
	a.limits.Succeeded(ctx)
	userID, hasID := script.IDString(user["id"])
	if !hasID {
		e.log.WarnContext(ctx, "authorize returned a user without an id; the token has no sub", "code", "CREDENTIALS_NO_ID", "provider", p.ID)
	}
	account := map[string]any{"providerAccountId": userID, "type": "credentials", "provider": p.ID}
	if !hasID {
		account["providerAccountId"] = script.Undefined
	}
	return e.signInTail(a, &signInAttempt{
		in:          session.SignIn{User: user, Account: account, UserID: userID, HasID: hasID},
		signInExtra: map[string]any{"credentials": a.body},
		amr:         []string{amrPassword},
	})
}

// signInAttempt is a user whom a provider has vouched for (authorize, or the OAuth
// callback), on the way through the sign-in tail.
type signInAttempt struct {
	// in is the user, the account and how the session is to be issued.
	in session.SignIn
	// signInExtra joins {user, account} in the signIn callback's argument: the credentials,
	// or the OAuth profile.
	signInExtra map[string]any
	// oauth answers every refusal with 200, as NextAuth's OAuth callback does; the
	// credentials flow answers 403 and 500.
	oauth bool
	// cookies go out before the session's: the deletions of the OAuth check cookies. The
	// answers of the signIn and link steps carry them too.
	cookies []string
	// link, when set, runs once signIn has allowed the user (OAuth account linking). It may
	// replace in.User, in.UserID and in.IsNewUser; a response ends the sign-in.
	link func(*signInAttempt) (response, bool)
	// eventsIsNewUser gives events.signIn isNewUser without a profile, as NextAuth's
	// e-mail sign-in does.
	eventsIsNewUser bool
	// relinked is set by link when it attached the sign-in to an existing store user the
	// signIn callback did not see (linking by e-mail).
	relinked bool
	// amr is how the provider authenticated the user (RFC 8176: "pwd" for credentials,
	// "hwk" for a passkey, "fed" for OAuth): the session records it when factors are on.
	amr []string
}

// status is the answer's status for a refusal: 200 for OAuth, as NextAuth does.
func (s *signInAttempt) status(code int) int {
	if s.oauth {
		return http.StatusOK
	}
	return code
}

// signInTail is the one end of every sign-in, credentials and OAuth alike: the signIn
// callback (false → AccessDenied, a string → that redirect, a thrown message → the error
// page with it), the link step, the session the configured strategy issues
// (engine/session: jwt runs the jwt callback and encodes the token, database creates a
// store session), its cookies, events.signIn, and the redirect to the callback URL (or
// pages.newUser for a user the sign-in created).
func (e *Engine) signInTail(a *authRequest, s *signInAttempt) response {
	ctx := a.r.Context()
	withCookies := func(res response) response {
		res.cookies = s.cookies
		return res
	}
	allowed, res, done := e.runSignIn(a, s)
	if done {
		return withCookies(res)
	}
	if s.link != nil {
		if res, done := s.link(s); done {
			return res
		}
		if s.relinked && e.factors.on(&a.cfg) {
			// The sign-in landed on an existing store user by e-mail (account linking), whom
			// signIn did not see: its second-factor policy is asked again about that user,
			// so a provider account cannot stand in for the factors the user's role needs.
			if allowed, res, done = e.runSignIn(a, s); done {
				return withCookies(res)
			}
		}
	}
	if e.factors.on(&a.cfg) {
		kinds, asked, err := secondFactorKinds(allowed, e.factors.kinds(&a.cfg))
		if err != nil {
			e.log.ErrorContext(ctx, "signIn's second factor answer refused", "code", "SIGNIN_CALLBACK_ERROR", "error", err.Error())
			return withCookies(redirectTo(s.status(http.StatusInternalServerError), e.urls.errorURL("error=Configuration")))
		}
		if asked && len(unproved(kinds, s.amr)) > 0 {
			return e.requireSecondFactor(a, s, unproved(kinds, s.amr))
		}
		s.in.AMR = s.amr
	} else if _, asked, _ := secondFactorKinds(allowed, nil); asked {
		// A policy that asks for a factor the gateway cannot run must not sign the user in
		// with less.
		e.log.ErrorContext(ctx, "signIn asked for a second factor, but the auth config turns none on (factors) or the gateway has no store",
			"code", "SIGNIN_CALLBACK_ERROR")
		return withCookies(redirectTo(s.status(http.StatusInternalServerError), e.urls.errorURL("error=Configuration")))
	}
	return e.issueSignIn(a, s)
}

// runSignIn runs the signIn callback, when the script defines it, and returns what it
// answered; done is a refusal (false, a redirect, a thrown message), whose answer is res.
func (e *Engine) runSignIn(a *authRequest, s *signInAttempt) (allowed any, res response, done bool) {
	if !a.gen.Defines(script.CallbackSignIn) {
		return nil, response{}, false
	}
	// A key absent from signInExtra is nil here, which leaves it out of the argument.
	allowed, err := a.gen.SignIn(a.r.Context(), script.SignInArgs{
		User: s.in.User, Account: s.in.Account,
		Profile: s.signInExtra["profile"], Credentials: s.signInExtra["credentials"],
		Email: s.signInExtra["email"],
	})
	if err != nil {
		a.logScriptError("SIGNIN_CALLBACK_ERROR", err)
		if msg, ok := publicMessage(err); ok {
			return nil, redirectTo(200, e.urls.errorURL("error="+cookie.EncodeValue(msg))), true
		}
		return nil, redirectTo(s.status(http.StatusInternalServerError), e.urls.errorURL("error=Configuration")), true
	}
	if target, ok := allowed.(string); ok && target != "" {
		return nil, redirectTo(200, e.urls.checkedRedirect(a, script.CallbackSignIn.String(), target)), true
	}
	if !truthy(allowed) {
		return nil, redirectTo(s.status(http.StatusForbidden), e.urls.errorURL("error=AccessDenied")), true
	}
	return allowed, response{}, false
}

// issueSignIn is the end of the sign-in tail, once every check has passed: the session,
// its cookies, events.signIn and the redirect to the callback URL.
func (e *Engine) issueSignIn(a *authRequest, s *signInAttempt) response {
	ctx := a.r.Context()
	issued, err := e.sessions.For(a.cfg).Issue(ctx, a.gen, s.in)
	if err != nil {
		return e.issueFailed(a, s, err)
	}
	sessionCookies := a.writeSessionCookies(issued.Value, issued.Expires)
	event := map[string]any{"user": s.in.User, "account": s.in.Account}
	if s.in.WithProfile {
		event["profile"], event["isNewUser"] = s.in.Profile, s.in.IsNewUser
	} else if s.eventsIsNewUser {
		event["isNewUser"] = s.in.IsNewUser
	}
	a.emit(script.EventSignIn, event)
	target := a.callbackURL
	if s.in.IsNewUser && a.cfg.Pages.NewUser != "" {
		target = withQuery(a.cfg.Pages.NewUser, "callbackUrl="+cookie.EncodeValue(a.callbackURL))
	}
	res := redirectTo(200, target)
	res.cookies = append(s.cookies, sessionCookies...)
	return res
}

// issueFailed answers a session that could not be issued: the jwt callback refused
// (AccessDenied) or failed, the store is down (503) or missing, or the user cannot have a
// database session.
func (e *Engine) issueFailed(a *authRequest, s *signInAttempt, err error) response {
	ctx := a.r.Context()
	configuration := redirectTo(s.status(http.StatusInternalServerError), e.urls.errorURL("error=Configuration"))
	var cbErr *session.CallbackError
	switch {
	case errors.Is(err, session.ErrDenied):
		return redirectTo(s.status(http.StatusForbidden), e.urls.errorURL("error=AccessDenied"))
	case errors.As(err, &cbErr):
		a.logScriptError("JWT_CALLBACK_ERROR", cbErr.Err)
	case errors.Is(err, session.ErrEncode):
		e.log.ErrorContext(ctx, "encode session token", "code", "JWT_ENCODE_ERROR", "error", err.Error())
	case errors.Is(err, session.ErrNoStore), errors.Is(err, session.ErrNoUserID):
		e.log.ErrorContext(ctx, err.Error(), "code", "SESSION_ERROR")
	case errors.Is(err, session.ErrStoreUnavailable):
		e.log.ErrorContext(ctx, "create session", "code", "SESSION_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	default:
		e.log.ErrorContext(ctx, "create session", "code", "SESSION_ERROR", "error", err.Error())
	}
	return configuration
}

// authorizeRequest is authorize's second argument: {query, body, headers, method}, with
// header names lower-cased as Node gives them.
func authorizeRequest(a *authRequest) map[string]any {
	query := map[string]any{}
	for k, v := range a.query {
		if len(v) > 0 {
			query[k] = v[0]
		}
	}
	headers := map[string]any{}
	for k, v := range a.r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if a.r.Host != "" {
		headers["host"] = a.r.Host
	}
	return map[string]any{"query": query, "body": a.body, "headers": headers, "method": a.r.Method}
}
