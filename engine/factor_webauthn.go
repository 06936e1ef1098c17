package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/callgate/callgate/engine/factor"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
	"github.com/callgate/callgate/store"
)

// The WebAuthn ceremonies of the factor routes (factor_routes.go): options, the sealed,
// single-use ceremony state, registration, the passkey second factor and passwordless
// sign-in.

// ceremony is a WebAuthn ceremony in progress, sealed in its cookie: bound to its purpose,
// its user and the browser that started it (its CSRF token), used once.
type ceremony struct {
	ID      string `json:"id"`
	Purpose string `json:"purpose"` // "signin", "challenge" or "register"
	UserID  string `json:"userId,omitempty"`
	Browser string `json:"browser"` // SHA-256 of the CSRF token
	State   []byte `json:"state"`
}

// takeCeremony opens the ceremony cookie for purpose and userID and consumes its marker.
func (e *Engine) takeCeremony(ctx context.Context, a *authRequest, purpose, userID string) (ceremony, error) {
	var c ceremony
	if err := e.factors.open(a, ceremonyCookieName, &c); err != nil {
		return c, refused("no WebAuthn ceremony: %v", err)
	}
	if c.Purpose != purpose || c.UserID != userID {
		return c, refused("the WebAuthn ceremony belongs to another purpose or user")
	}
	if c.Browser != store.SessionID(a.csrfToken) {
		return c, refused("the WebAuthn ceremony was started by another browser")
	}
	if err := e.factors.use(ctx, ceremonyMarker, c.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return c, refused("the WebAuthn ceremony was used or has expired")
		}
		return c, err
	}
	return c, nil
}

// startCeremony seals a ceremony's state in its cookie and records its marker.
func (e *Engine) startCeremony(ctx context.Context, a *authRequest, purpose, userID string, c factor.Ceremony) (response, error) {
	cer := ceremony{ID: rand.Text(), Purpose: purpose, UserID: userID, Browser: store.SessionID(a.csrfToken), State: c.State}
	if err := e.factors.mark(ctx, ceremonyMarker, cer.ID, e.factors.now().Add(ceremonyMaxAge)); err != nil {
		return response{}, err
	}
	set, err := e.factors.seal(a, ceremonyCookieName, cer, ceremonyMaxAge)
	if err != nil {
		return response{}, err
	}
	res := rawJSONResponse(200, c.Options)
	res.cookies = []string{set}
	return res, nil
}

func (e *Engine) verifyPasskey(ctx context.Context, a *authRequest, s *factorSubject) error {
	c, err := e.takeCeremony(ctx, a, "challenge", s.userID)
	if err != nil {
		return err
	}
	user, err := e.webauthnUser(ctx, s)
	if err != nil {
		return err
	}
	body, _ := stringField(a.body, "response")
	res, err := e.factors.passkeys.FinishLogin(c.State, []byte(body), func(_, _ []byte) (factor.User, error) { return user, nil })
	if err != nil {
		return refused("passkey: %v", err)
	}
	return e.usePasskey(ctx, res)
}

// usePasskey records an authentication's counter; a counter that did not increase is a
// cloned authenticator or a replay.
func (e *Engine) usePasskey(ctx context.Context, res factor.LoginResult) error {
	err := e.factors.st.UsePasskey(ctx, res.CredentialID, res.SignCount, e.factors.now())
	switch {
	case errors.Is(err, store.ErrConflict):
		return refused("passkey signature counter did not increase")
	case errors.Is(err, store.ErrNotFound):
		return refused("passkey removed")
	}
	return err
}

// authenticationOptions is POST /webauthn/authentication-options: purpose "signin"
// (passwordless, with a Passkey provider: any discoverable credential) or "challenge" (the
// subject's own passkeys).
func (e *Engine) authenticationOptions(a *authRequest) response {
	ctx := a.r.Context()
	purpose, _ := stringField(a.body, "purpose")
	var c factor.Ceremony
	var userID string
	var err error
	switch purpose {
	case "signin":
		if _, ok := providerByType(&a.cfg, "passkey"); !ok {
			return jsonError(http.StatusBadRequest, "no_passkey_provider", "sign-in with a passkey needs a Passkey provider in the auth config")
		}
		c, err = e.factors.passkeys.BeginLogin(nil)
	case "challenge":
		s, serr := e.subject(a)
		if serr != nil {
			return e.storeFailed(a, "find the session for a passkey", serr)
		}
		if s == nil {
			return jsonError(http.StatusUnauthorized, "no_session", "sign in first")
		}
		user, uerr := e.webauthnUser(ctx, s)
		if uerr != nil {
			return e.storeFailed(a, "list passkeys", uerr)
		}
		if len(user.Passkeys) == 0 {
			return jsonError(http.StatusBadRequest, "no_passkey", "no passkey is registered for this user")
		}
		userID = s.userID
		c, err = e.factors.passkeys.BeginLogin(&user)
	default:
		return jsonError(http.StatusBadRequest, "purpose", `purpose must be "signin" or "challenge"`)
	}
	if err != nil {
		e.log.ErrorContext(ctx, "begin a WebAuthn authentication", "code", "SECOND_FACTOR_ERROR", "error", err.Error())
		return jsonError(http.StatusInternalServerError, "webauthn", "the authentication could not be started")
	}
	res, err := e.startCeremony(ctx, a, purpose, userID, c)
	if err != nil {
		return e.storeFailed(a, "start a WebAuthn authentication", err)
	}
	return res
}

// registrationOptions is POST /webauthn/registration-options.
func (e *Engine) registrationOptions(a *authRequest) response {
	ctx := a.r.Context()
	if !a.cfg.Factors.Passkey {
		return jsonError(http.StatusBadRequest, "passkeys_off", "passkeys are not enabled")
	}
	s, res, ok := e.changingSubject(a, kindPasskey)
	if !ok {
		return res
	}
	user, err := e.webauthnUser(ctx, s)
	if err != nil {
		return e.storeFailed(a, "list passkeys", err)
	}
	c, err := e.factors.passkeys.BeginRegistration(user)
	if err != nil {
		e.log.ErrorContext(ctx, "begin a passkey registration", "code", "SECOND_FACTOR_ERROR", "error", err.Error())
		return jsonError(http.StatusInternalServerError, "webauthn", "the registration could not be started")
	}
	started, err := e.startCeremony(ctx, a, "register", s.userID, c)
	if err != nil {
		return e.storeFailed(a, "start a passkey registration", err)
	}
	return started
}

// maxFactorName bounds a passkey's name.
const maxFactorName = 64

// passkeyName is the body's name for a passkey, trimmed; false when it is too long or
// holds control characters.
func passkeyName(a *authRequest) (string, bool) {
	name, _ := stringField(a.body, "name")
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > maxFactorName || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", false
	}
	return name, true
}

func badPasskeyName() response {
	return jsonError(http.StatusBadRequest, "name", fmt.Sprintf("a passkey's name is at most %d printable characters", maxFactorName))
}

// registerPasskey is POST /webauthn/register.
func (e *Engine) registerPasskey(a *authRequest) response {
	ctx := a.r.Context()
	s, res, ok := e.changingSubject(a, kindPasskey)
	if !ok {
		return res
	}
	name, ok := passkeyName(a)
	if !ok {
		return badPasskeyName()
	}
	clear := e.factors.clear(a, ceremonyCookieName)
	fail := func(status int, code, msg string) response {
		res := jsonError(status, code, msg)
		res.cookies = []string{clear}
		return res
	}
	c, err := e.takeCeremony(ctx, a, "register", s.userID)
	var failure *factorFailure
	if errors.As(err, &failure) {
		return fail(http.StatusBadRequest, "ceremony", failure.reason)
	}
	if err != nil {
		return e.storeFailed(a, "finish a passkey registration", err)
	}
	user, err := e.webauthnUser(ctx, s)
	if err != nil {
		return e.storeFailed(a, "list passkeys", err)
	}
	body, _ := stringField(a.body, "response")
	pk, err := e.factors.passkeys.FinishRegistration(user, c.State, []byte(body), name, e.factors.now())
	if err != nil {
		e.log.InfoContext(ctx, "passkey registration refused", "code", "SECOND_FACTOR_FAILED", "reason", err.Error())
		return fail(http.StatusBadRequest, "registration", "the passkey was not accepted: "+err.Error())
	}
	if err := e.factors.st.CreatePasskey(ctx, pk); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			return fail(http.StatusConflict, "duplicate", "this passkey is already registered")
		}
		return e.storeFailed(a, "store a passkey", err)
	}
	id := base64.RawURLEncoding.EncodeToString(pk.ID)
	e.factorEvent(a, script.EventEnrollFactor, s, map[string]any{"type": kindPasskey, "id": id, "name": pk.Name})
	out := map[string]any{"passkey": map[string]any{"id": id, "name": pk.Name}}
	return e.enrolmentDone(a, s, amrPasskey, out, clear)
}

// passkeySignIn is POST /callback/passkey: sign in with a discoverable passkey, no
// password. The credential's user handle names the store user.
func (e *Engine) passkeySignIn(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	failed := redirectTo(http.StatusUnauthorized, e.urls.errorURL("error=CredentialsSignin&provider="+p.ID))
	if !e.factors.on(&a.cfg) || e.factors.passkeys == nil {
		e.log.ErrorContext(ctx, "passkey sign-in needs a store and a public URL that is a domain name", "code", "SIGNIN_ERROR")
		return redirectTo(http.StatusInternalServerError, e.urls.errorURL("error=Configuration"))
	}
	held, refusedUntil, err := e.factors.limits.Reserve(ctx, nil, e.factors.addrs.ClientIP(a.r))
	if err != nil {
		e.log.WarnContext(ctx, "sign-in limit not applied: store unavailable", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
	if !refusedUntil.IsZero() {
		res := redirectTo(http.StatusTooManyRequests, e.urls.errorURL("error=TooManyRequests"))
		res.header = map[string]string{"Retry-After": fmt.Sprint(int(e.factors.limits.RetryAfter(refusedUntil).Seconds()))}
		return res
	}
	clear := e.factors.clear(a, ceremonyCookieName)
	var user store.User
	err = func() error {
		c, err := e.takeCeremony(ctx, a, "signin", "")
		if err != nil {
			return err
		}
		body, _ := stringField(a.body, "response")
		res, err := e.factors.passkeys.FinishLogin(c.State, []byte(body), func(_, handle []byte) (factor.User, error) {
			u, err := e.factors.st.FindUser(ctx, store.UserQuery{ID: string(handle)})
			if err != nil {
				return factor.User{}, err
			}
			keys, err := e.factors.st.ListPasskeys(ctx, u.ID)
			if err != nil {
				return factor.User{}, err
			}
			user = u
			return factor.User{ID: u.ID, Name: u.Username, DisplayName: u.Name, Passkeys: keys}, nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return refused("passkey of an unknown user")
		case errors.Is(err, factor.ErrMalformed), errors.Is(err, factor.ErrRefused):
			return refused("passkey: %v", err)
		case err != nil:
			return err
		case !res.UserVerified:
			return refused("passkey sign-in without user verification")
		}
		return e.usePasskey(ctx, res)
	}()
	var failure *factorFailure
	switch {
	case errors.As(err, &failure):
		held.Failed(ctx)
		e.log.InfoContext(ctx, "passkey sign-in refused", "code", "PASSKEY_SIGNIN_FAILED", "reason", failure.reason)
		failed.cookies = []string{clear}
		return failed
	case err != nil:
		held.Refused(ctx)
		return e.storeFailed(a, "sign in with a passkey", err)
	}
	held.Succeeded(ctx)
	account := map[string]any{"providerAccountId": user.ID, "type": "passkey", "provider": p.ID}
	res := e.signInTail(a, &signInAttempt{
		in:          session.SignIn{User: user.AdapterUser(), Account: account, UserID: user.ID, HasID: true},
		signInExtra: map[string]any{},
		// A verified passkey is two factors at once: the key, and the PIN or biometric
		// that unlocked it.
		amr: []string{amrPasskey, amrMulti},
	})
	res.cookies = append([]string{clear}, res.cookies...)
	return res
}
