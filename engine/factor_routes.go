package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/callgate/callgate/engine/factor"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
	"github.com/callgate/callgate/store"
)

// The factor routes, beside NextAuth's under /api/auth:
//
//	GET  /challenge                              the challenge page (pending sign-in or step-up)
//	POST /challenge/{totp,recovery,passkey}      prove a factor
//	POST /webauthn/authentication-options        start a WebAuthn authentication
//	POST /webauthn/registration-options          start a passkey registration
//	POST /webauthn/register                      finish it
//	POST /totp/enroll, /totp/confirm             enrol an authenticator app
//	GET  /factors, /factors/list                 the manage page, and its data as JSON
//	POST /factors/remove, /factors/rename, /factors/recovery-codes
//	GET  /assets/factor.js                       the pages' script
//	POST /callback/passkey                       sign in with a passkey (signin.go routes it)
//
// Every POST needs the CSRF token. Every answer but the pages and the script is JSON.

// factorRoute serves the factor routes.
func (e *Engine) factorRoute(a *authRequest) response {
	get := a.r.Method == http.MethodGet
	if a.action == "assets" {
		if get && a.providerID == "factor.js" {
			return e.pages.factorScript(a)
		}
		return textResponse(http.StatusNotFound, "Not Found")
	}
	if !e.factors.on(&a.cfg) {
		return jsonError(http.StatusNotFound, "factors_off", errFactorsOff.Error())
	}
	if !get && !a.csrfVerified {
		return jsonError(http.StatusForbidden, "csrf", "the CSRF token is missing or does not match")
	}
	route, ok := factorRoutes[a.action+" "+a.r.Method+" "+a.providerID]
	if !ok {
		return textResponse(http.StatusBadRequest, fmt.Sprintf("Error: This action with HTTP %s is not supported by NextAuth.js", a.r.Method))
	}
	if route.passkeys && e.factors.passkeys == nil {
		return jsonError(http.StatusNotImplemented, "passkeys_unavailable",
			"passkeys need the gateway's public URL (or cookie_domain) to be a domain name, not an IP address")
	}
	res := route.serve(e, a)
	res.noCache = true
	return res
}

// factorRoutes are the factor routes by "action METHOD segment".
var factorRoutes = map[string]struct {
	serve    func(*Engine, *authRequest) response
	passkeys bool // needs WebAuthn
}{
	"challenge GET ":                       {serve: (*Engine).challengePage},
	"challenge POST totp":                  {serve: func(e *Engine, a *authRequest) response { return e.challengeVerify(a, kindTOTP) }},
	"challenge POST recovery":              {serve: func(e *Engine, a *authRequest) response { return e.challengeVerify(a, kindRecovery) }},
	"challenge POST passkey":               {serve: func(e *Engine, a *authRequest) response { return e.challengeVerify(a, kindPasskey) }, passkeys: true},
	"webauthn POST authentication-options": {serve: (*Engine).authenticationOptions, passkeys: true},
	"webauthn POST registration-options":   {serve: (*Engine).registrationOptions, passkeys: true},
	"webauthn POST register":               {serve: (*Engine).registerPasskey, passkeys: true},
	"totp POST enroll":                     {serve: (*Engine).totpEnrol},
	"totp POST confirm":                    {serve: (*Engine).totpConfirm},
	"factors GET ":                         {serve: (*Engine).factorsPage},
	"factors GET list":                     {serve: (*Engine).factorsList},
	"factors POST remove":                  {serve: (*Engine).removeFactor},
	"factors POST rename":                  {serve: (*Engine).renamePasskey},
	"factors POST recovery-codes":          {serve: (*Engine).regenerateRecoveryCodes},
}

// jsonError is a factor route's refusal: {error, message}.
func jsonError(status int, code, message string) response {
	return jsonResponse(status, map[string]string{"error": code, "message": message})
}

// storeFailed answers a store that could not be reached (503), logging what failed.
func (e *Engine) storeFailed(a *authRequest, what string, err error) response {
	e.log.ErrorContext(a.r.Context(), what, "code", "STORE_UNAVAILABLE", "error", err.Error())
	res := jsonError(http.StatusServiceUnavailable, "unavailable", "the store is unavailable; try again")
	res.header = map[string]string{"Retry-After": "5"}
	return res
}

// offered are the kinds a subject may prove now: the pending sign-in's, or for a step-up
// those the request names (?factors=) among those the config turns on, else all of them.
func (e *Engine) offered(a *authRequest, s *factorSubject) []string {
	on := e.factors.kinds(&a.cfg)
	if s.pending != nil {
		return s.pending.Kinds
	}
	asked, _ := stringField(a.body, "factors")
	if asked == "" {
		asked = a.query.Get("factors")
	}
	if asked == "" {
		return on
	}
	var out []string
	for _, k := range strings.Split(asked, ",") {
		if slices.Contains(on, k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return on
	}
	return out
}

// challengePage is GET /challenge: the factors the subject can prove, or, for a sign-in
// whose user has none of the kinds asked for, their enrolment.
func (e *Engine) challengePage(a *authRequest) response {
	ctx := a.r.Context()
	if a.cfg.Pages.Challenge != "" {
		return redirectTo(http.StatusFound, appPage(a.cfg.Pages.Challenge, a.r.URL.RawQuery))
	}
	s, err := e.subject(a)
	if err != nil {
		return e.pages.serverError(a, err)
	}
	if s == nil {
		return redirectTo(200, e.base+"/signin?callbackUrl="+url.QueryEscape(a.callbackURL))
	}
	kinds := e.offered(a, s)
	has, err := e.enrolled(ctx, s.userID, kinds)
	if err != nil {
		return e.pages.serverError(a, unavailable(err))
	}
	remaining, err := e.factors.st.CountRecoveryCodes(ctx, s.userID)
	if err != nil {
		return e.pages.serverError(a, unavailable(err))
	}
	v := &factorView{StepUp: s.pending == nil, RecoveryRemaining: remaining}
	v.Passkey, v.TOTP = has[kindPasskey], has[kindTOTP]
	hasFactor, err := e.hasAnyFactor(ctx, s.userID)
	if err != nil {
		return e.pages.serverError(a, unavailable(err))
	}
	if s.pending != nil && !hasFactor {
		// Trust on first use: the user has just proved their password and has no factor
		// at all; enrolling one of the kinds the policy accepts completes the sign-in.
		v.Enrol = true
		v.Passkey, v.TOTP = slices.Contains(kinds, kindPasskey), slices.Contains(kinds, kindTOTP)
	}
	v.Recovery = !v.Enrol && remaining > 0
	callbackURL := a.callbackURL
	if s.pending != nil {
		callbackURL = s.pending.CallbackURL
	}
	errCode := a.query.Get("error")
	if !v.Enrol && !v.Passkey && !v.TOTP && !v.Recovery && errCode == "" {
		errCode = "SecondFactorNotEnrolled"
	}
	return e.pages.renderFactorPage(a, "challenge", "Verify it's you", callbackURL, errCode, v)
}

// factorFailure is why a factor was refused: said in the log, never to the client beyond
// "not accepted".
type factorFailure struct{ reason string }

func (f *factorFailure) Error() string { return f.reason }

func refused(format string, args ...any) error {
	return &factorFailure{reason: fmt.Sprintf(format, args...)}
}

// challengeVerify is POST /challenge/{kind}: prove one factor, then finish the pending
// sign-in or record the step-up.
func (e *Engine) challengeVerify(a *authRequest, kind string) response {
	ctx := a.r.Context()
	s, err := e.subject(a)
	if err != nil {
		return e.storeFailed(a, "find the session for a second factor", err)
	}
	if s == nil {
		return redirectTo(http.StatusUnauthorized, e.base+"/signin?error=SessionRequired")
	}
	kinds := e.offered(a, s)
	retry := func(code string, status int) response {
		target := e.base + "/challenge?error=" + code
		if s.pending == nil {
			target = e.challengeURL(a.callbackURL, kinds, code)
		}
		return redirectTo(status, target)
	}
	if kind != kindRecovery && !slices.Contains(kinds, kind) {
		return retry("SecondFactorFailed", http.StatusBadRequest)
	}
	held, refusedUntil, err := e.factors.limits.Reserve(ctx, []string{"factor:" + s.userID}, e.factors.addrs.ClientIP(a.r))
	if err != nil {
		e.log.WarnContext(ctx, "second factor limit not applied: store unavailable", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
	if !refusedUntil.IsZero() {
		e.log.WarnContext(ctx, "second factor refused: too many failed attempts", "code", "SECOND_FACTOR_RATE_LIMITED", "user", s.userID)
		res := retry("SecondFactorLimit", http.StatusTooManyRequests)
		res.header = map[string]string{"Retry-After": fmt.Sprint(int(e.factors.limits.RetryAfter(refusedUntil).Seconds()))}
		return res
	}
	var cookies []string
	method, err := "", error(nil)
	switch kind {
	case kindTOTP:
		method, err = amrOTP, e.verifyTOTP(ctx, a, s)
	case kindRecovery:
		method, err = amrOTP, e.verifyRecoveryCode(ctx, a, s)
	case kindPasskey:
		cookies = append(cookies, e.factors.clear(a, ceremonyCookieName))
		method, err = amrPasskey, e.verifyPasskey(ctx, a, s)
	}
	var failure *factorFailure
	switch {
	case errors.As(err, &failure):
		held.Failed(ctx)
		e.log.InfoContext(ctx, "second factor not accepted", "code", "SECOND_FACTOR_FAILED", "kind", kind, "reason", failure.reason)
		res := retry("SecondFactorFailed", http.StatusUnauthorized)
		res.cookies = cookies
		return res
	case err != nil:
		held.Refused(ctx)
		return e.storeFailed(a, "check a second factor", err)
	}
	held.Succeeded(ctx)
	res := e.completeAuthentication(a, s, method)
	res.cookies = append(cookies, res.cookies...)
	return res
}

// completeAuthentication ends a proved factor: the pending sign-in's session is issued
// (once: its marker is consumed), or the signed-in session records the step-up.
func (e *Engine) completeAuthentication(a *authRequest, s *factorSubject, method string) response {
	ctx := a.r.Context()
	if p := s.pending; p != nil {
		clear := e.factors.clear(a, pendingCookieName)
		if err := e.factors.use(ctx, pendingMarker, p.ID); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				return e.storeFailed(a, "complete the sign-in", err)
			}
			res := redirectTo(http.StatusUnauthorized, e.base+"/signin?error=SecondFactorExpired")
			res.cookies = []string{clear}
			return res
		}
		attempt := &signInAttempt{in: p.In, oauth: p.OAuth}
		attempt.in.AMR = withMethod(p.AMR, method)
		a.callbackURL = p.CallbackURL
		res := e.issueSignIn(a, attempt)
		res.cookies = append([]string{clear}, res.cookies...)
		return res
	}
	ck, err := e.sessions.For(a.cfg).Reauthenticate(ctx, a.gen, s.raw, []string{method})
	switch {
	case errors.Is(err, session.ErrNoSession):
		return redirectTo(http.StatusUnauthorized, e.base+"/signin?error=SessionRequired")
	case err != nil:
		return e.storeFailed(a, "record the step-up", err)
	}
	e.log.InfoContext(ctx, "session stepped up", "code", "STEP_UP", "user", s.userID, "amr", method)
	res := redirectTo(200, a.callbackURL)
	res.cookies = a.writeSessionCookies(ck.Value, ck.Expires)
	return res
}

func (e *Engine) verifyTOTP(ctx context.Context, a *authRequest, s *factorSubject) error {
	code, _ := stringField(a.body, "code")
	t, err := e.factors.st.TOTP(ctx, s.userID)
	if errors.Is(err, store.ErrNotFound) {
		return refused("no authenticator app enrolled")
	}
	if err != nil {
		return err
	}
	secret, err := e.factors.sealer.Open(t.Sealed, s.userID)
	if err != nil {
		// A secret sealed under a secret no longer configured: the user must enrol again.
		e.log.ErrorContext(ctx, "open a TOTP secret", "code", "SECOND_FACTOR_ERROR", "error", err.Error())
		return refused("the TOTP secret cannot be opened with the configured secrets")
	}
	step, ok := e.factors.totp(&a.cfg).Verify(string(secret), code)
	if !ok {
		return refused("wrong TOTP code")
	}
	if err := e.factors.st.UseTOTPStep(ctx, s.userID, step); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return refused("TOTP code already used")
		}
		return err
	}
	return nil
}

func (e *Engine) verifyRecoveryCode(ctx context.Context, a *authRequest, s *factorSubject) error {
	code, _ := stringField(a.body, "code")
	if strings.TrimSpace(code) == "" {
		return refused("empty recovery code")
	}
	for _, h := range e.factors.sealer.RecoveryHashes(s.userID, code) {
		err := e.factors.st.UseRecoveryCode(ctx, s.userID, h)
		if err == nil {
			e.log.InfoContext(ctx, "recovery code used", "code", "RECOVERY_CODE_USED", "user", s.userID)
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return refused("unknown or used recovery code")
}

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

// mayChangeFactors decides whether the subject may enrol or remove a factor now: a pending
// sign-in whose user has none of the kinds asked for (enrolment completes it), or a session
// whose last authentication is recent. Else the answer sends the browser to prove itself.
func (e *Engine) mayChangeFactors(a *authRequest, s *factorSubject, kind string) (response, bool) {
	ctx := a.r.Context()
	if s.pending != nil {
		if kind == "" || !slices.Contains(s.pending.Kinds, kind) {
			return jsonError(http.StatusForbidden, "forbidden", "this sign-in does not accept that factor"), false
		}
		// Trust on first use is for users with no factor at all: one who has any (of any
		// kind, turned on or not) must prove it, never enrol another in its place.
		hasFactor, err := e.hasAnyFactor(ctx, s.userID)
		if err != nil {
			return e.storeFailed(a, "list factors", err), false
		}
		if hasFactor {
			return jsonError(http.StatusForbidden, "forbidden", "prove the factor you have enrolled first"), false
		}
		return response{}, true
	}
	hasFactor, err := e.hasAnyFactor(ctx, s.userID)
	if err != nil {
		return e.storeFailed(a, "list factors", err), false
	}
	if e.recentlyAuthenticated(a, s, hasFactor) {
		return response{}, true
	}
	back := e.base + "/factors"
	target := e.base + "/signin?callbackUrl=" + url.QueryEscape(back)
	if hasFactor {
		target = e.challengeURL(back, nil, "")
	}
	res := jsonResponse(http.StatusForbidden, map[string]string{
		"error": "reauthenticate", "message": "changing your factors needs a recent sign-in", "url": target,
	})
	return res, false
}

// hasAnyFactor reports whether the user has any passkey, TOTP enrolment or recovery code,
// whatever the config turns on now.
func (e *Engine) hasAnyFactor(ctx context.Context, userID string) (bool, error) {
	has, err := e.enrolled(ctx, userID, []string{kindPasskey, kindTOTP})
	if err != nil {
		return false, err
	}
	if has[kindPasskey] || has[kindTOTP] {
		return true, nil
	}
	n, err := e.factors.st.CountRecoveryCodes(ctx, userID)
	return n > 0, err
}

// recentlyAuthenticated reports whether the session's last authentication is recent
// enough to change factors: within factors.recentAuthentication, not in the future (a
// claim no clock of ours wrote), and, for a user who has a factor, one that proved a factor
// (a password alone cannot remove the factor that guards it).
func (e *Engine) recentlyAuthenticated(a *authRequest, s *factorSubject, hasFactor bool) bool {
	now := e.factors.now()
	at := s.authTime(now)
	if at.IsZero() || at.After(now.Add(time.Minute)) || now.Sub(at) > a.cfg.Factors.RecentAuthentication {
		return false
	}
	if !hasFactor || s.pending != nil {
		return true
	}
	for _, m := range s.amr() {
		if m == amrOTP || m == amrPasskey {
			return true
		}
	}
	return false
}

// changingSubject is the subject of a request that enrols a factor of kind: it must be
// signed in (or in a pending sign-in) and allowed to change its factors now.
func (e *Engine) changingSubject(a *authRequest, kind string) (*factorSubject, response, bool) {
	s, err := e.subject(a)
	if err != nil {
		return nil, e.storeFailed(a, "find the session", err), false
	}
	if s == nil {
		return nil, jsonError(http.StatusUnauthorized, "no_session", "sign in first"), false
	}
	if res, ok := e.mayChangeFactors(a, s, kind); !ok {
		return nil, res, false
	}
	return s, response{}, true
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

// enrolmentDone answers a finished enrolment: for a pending sign-in the enrolment completes it
// (the answer carries the URL to go on to), for a session it is just recorded.
func (e *Engine) enrolmentDone(a *authRequest, s *factorSubject, method string, out map[string]any, cookies ...string) response {
	if s.pending == nil {
		res := jsonResponse(200, out)
		res.cookies = cookies
		return res
	}
	done := e.completeAuthentication(a, s, method)
	if done.redirect == "" || (done.status != 0 && done.status != http.StatusOK) {
		done.cookies = append(cookies, done.cookies...)
		return done
	}
	out["url"] = done.redirect
	res := jsonResponse(200, out)
	res.cookies = append(cookies, done.cookies...)
	return res
}

// factorEvent fires events.enrollFactor or events.removeFactor.
func (e *Engine) factorEvent(a *authRequest, ev script.Event, s *factorSubject, f map[string]any) {
	user := map[string]any{"id": s.userID, "name": nullable(s.name), "email": nullable(s.email)}
	a.emit(ev, map[string]any{"user": user, "factor": f})
	e.log.InfoContext(a.r.Context(), ev.Key(), "code", strings.ToUpper(ev.Key()), "user", s.userID, "type", f["type"])
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// totpEnrolment is a TOTP enrolment waiting for its first code, sealed in its cookie.
type totpEnrolment struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Secret string `json:"secret"`
}

// totpEnrol is POST /totp/enroll: a new secret, shown once (text, otpauth URI and QR code),
// stored only when a code from it is confirmed.
func (e *Engine) totpEnrol(a *authRequest) response {
	ctx := a.r.Context()
	if !a.cfg.Factors.TOTP {
		return jsonError(http.StatusBadRequest, "totp_off", "authenticator apps are not enabled")
	}
	s, res, ok := e.changingSubject(a, kindTOTP)
	if !ok {
		return res
	}
	account := s.email
	if account == "" {
		account = s.name
	}
	if account == "" {
		account = s.userID
	}
	en, err := e.factors.totp(&a.cfg).Enrol(account)
	if err != nil {
		e.log.ErrorContext(ctx, "generate a TOTP secret", "code", "SECOND_FACTOR_ERROR", "error", err.Error())
		return jsonError(http.StatusInternalServerError, "totp", "the enrolment could not be started")
	}
	pending := totpEnrolment{ID: rand.Text(), UserID: s.userID, Secret: en.Secret}
	if err := e.factors.mark(ctx, ceremonyMarker, pending.ID, e.factors.now().Add(ceremonyMaxAge)); err != nil {
		return e.storeFailed(a, "start a TOTP enrolment", err)
	}
	set, err := e.factors.seal(a, enrolCookieName, pending, ceremonyMaxAge)
	if err != nil {
		e.log.ErrorContext(ctx, "seal a TOTP enrolment", "code", "SECOND_FACTOR_ERROR", "error", err.Error())
		return jsonError(http.StatusInternalServerError, "totp", "the enrolment could not be started")
	}
	out := jsonResponse(200, map[string]string{
		"secret": en.Secret, "uri": en.URI, "qr": "data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRCodePNG),
	})
	out.cookies = []string{set}
	return out
}

// totpConfirm is POST /totp/confirm: the first code proves the app holds the secret; the
// secret is stored sealed, and fresh recovery codes are shown once.
func (e *Engine) totpConfirm(a *authRequest) response {
	ctx := a.r.Context()
	s, res, ok := e.changingSubject(a, kindTOTP)
	if !ok {
		return res
	}
	var en totpEnrolment
	if err := e.factors.open(a, enrolCookieName, &en); err != nil || en.UserID != s.userID {
		return jsonError(http.StatusBadRequest, "enrolment", "no enrolment in progress: start again")
	}
	code, _ := stringField(a.body, "code")
	step, ok := e.factors.totp(&a.cfg).Verify(en.Secret, code)
	if !ok {
		return jsonError(http.StatusBadRequest, "code", "that code is not right: check the time on your device and try the next one")
	}
	clear := e.factors.clear(a, enrolCookieName)
	if err := e.factors.use(ctx, ceremonyMarker, en.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			res := jsonError(http.StatusBadRequest, "enrolment", "this enrolment was already confirmed or has expired: start again")
			res.cookies = []string{clear}
			return res
		}
		return e.storeFailed(a, "confirm a TOTP enrolment", err)
	}
	sealed, err := e.factors.sealer.Seal([]byte(en.Secret), s.userID)
	if err != nil {
		e.log.ErrorContext(ctx, "seal a TOTP secret", "code", "SECOND_FACTOR_ERROR", "error", err.Error())
		return jsonError(http.StatusInternalServerError, "totp", "the enrolment could not be stored")
	}
	if err := e.factors.st.SetTOTP(ctx, store.TOTPSecret{UserID: s.userID, Sealed: sealed, LastStep: step, CreatedAt: e.factors.now()}); err != nil {
		return e.storeFailed(a, "store a TOTP secret", err)
	}
	codes, err := e.newRecoveryCodes(ctx, s.userID)
	if err != nil {
		return e.storeFailed(a, "store recovery codes", err)
	}
	e.factorEvent(a, script.EventEnrollFactor, s, map[string]any{"type": kindTOTP})
	return e.enrolmentDone(a, s, amrOTP, map[string]any{"recoveryCodes": codes}, clear)
}

// newRecoveryCodes replaces the user's recovery codes and returns the new ones, which are
// never shown again: only their keyed hashes are stored.
func (e *Engine) newRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes, err := factor.NewRecoveryCodes(recoveryCodeCount)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = e.factors.sealer.RecoveryHashes(userID, c)[0]
	}
	if err := e.factors.st.SetRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// signedInSubject is the session's subject for the manage routes, which a pending sign-in
// may not use.
func (e *Engine) signedInSubject(a *authRequest) (*factorSubject, response, bool) {
	s, err := e.subject(a)
	if err != nil {
		return nil, e.storeFailed(a, "find the session", err), false
	}
	if s == nil || s.pending != nil {
		return nil, jsonError(http.StatusUnauthorized, "no_session", "sign in first"), false
	}
	return s, response{}, true
}

// removeFactor is POST /factors/remove {type, id}.
func (e *Engine) removeFactor(a *authRequest) response {
	ctx := a.r.Context()
	s, res, ok := e.signedInSubject(a)
	if !ok {
		return res
	}
	if res, ok := e.mayChangeFactors(a, s, ""); !ok {
		return res
	}
	typ, _ := stringField(a.body, "type")
	switch typ {
	case kindPasskey:
		idText, _ := stringField(a.body, "id")
		id, err := base64.RawURLEncoding.DecodeString(idText)
		if err != nil || len(id) == 0 {
			return jsonError(http.StatusBadRequest, "id", "id must be the passkey's id (base64url)")
		}
		if err := e.factors.st.DeletePasskey(ctx, s.userID, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return jsonError(http.StatusNotFound, "not_found", "no such passkey")
			}
			return e.storeFailed(a, "remove a passkey", err)
		}
		e.factorEvent(a, script.EventRemoveFactor, s, map[string]any{"type": kindPasskey, "id": idText})
	case kindTOTP:
		if err := e.factors.st.DeleteTOTP(ctx, s.userID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return jsonError(http.StatusNotFound, "not_found", "no authenticator app is enrolled")
			}
			return e.storeFailed(a, "remove an authenticator app", err)
		}
		e.factorEvent(a, script.EventRemoveFactor, s, map[string]any{"type": kindTOTP})
	default:
		return jsonError(http.StatusBadRequest, "type", `type must be "passkey" or "totp"`)
	}
	return jsonResponse(200, map[string]bool{"ok": true})
}

// renamePasskey is POST /factors/rename {id, name}: the store has the names, and this is
// how a user changes one. Like every change to factors it needs a recent authentication.
func (e *Engine) renamePasskey(a *authRequest) response {
	s, res, ok := e.signedInSubject(a)
	if !ok {
		return res
	}
	if res, ok := e.mayChangeFactors(a, s, ""); !ok {
		return res
	}
	idText, _ := stringField(a.body, "id")
	id, err := base64.RawURLEncoding.DecodeString(idText)
	if err != nil || len(id) == 0 {
		return jsonError(http.StatusBadRequest, "id", "id must be the passkey's id (base64url)")
	}
	name, ok := passkeyName(a)
	if !ok {
		return badPasskeyName()
	}
	if err := e.factors.st.RenamePasskey(a.r.Context(), s.userID, id, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return jsonError(http.StatusNotFound, "not_found", "no such passkey")
		}
		return e.storeFailed(a, "rename a passkey", err)
	}
	return jsonResponse(200, map[string]any{"passkey": map[string]any{"id": idText, "name": name}})
}

// regenerateRecoveryCodes is POST /factors/recovery-codes.
func (e *Engine) regenerateRecoveryCodes(a *authRequest) response {
	s, res, ok := e.signedInSubject(a)
	if !ok {
		return res
	}
	if res, ok := e.mayChangeFactors(a, s, ""); !ok {
		return res
	}
	codes, err := e.newRecoveryCodes(a.r.Context(), s.userID)
	if err != nil {
		return e.storeFailed(a, "store recovery codes", err)
	}
	return jsonResponse(200, map[string]any{"recoveryCodes": codes})
}

// factorList is the signed-in user's factors: GET /factors/list, and the manage page.
type factorList struct {
	Passkeys      []passkeyView `json:"passkeys"`
	TOTP          bool          `json:"totp"`
	RecoveryCodes int           `json:"recoveryCodes"`
}

func (e *Engine) listFactors(ctx context.Context, userID string) (factorList, error) {
	keys, err := e.factors.st.ListPasskeys(ctx, userID)
	if err != nil {
		return factorList{}, err
	}
	out := factorList{Passkeys: make([]passkeyView, 0, len(keys))}
	for _, k := range keys {
		v := passkeyView{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339)}
		if !k.LastUsedAt.IsZero() {
			v.LastUsedAt = k.LastUsedAt.UTC().Format(time.RFC3339)
		}
		out.Passkeys = append(out.Passkeys, v)
	}
	if _, err := e.factors.st.TOTP(ctx, userID); err == nil {
		out.TOTP = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return factorList{}, err
	}
	if out.RecoveryCodes, err = e.factors.st.CountRecoveryCodes(ctx, userID); err != nil {
		return factorList{}, err
	}
	return out, nil
}

func (e *Engine) factorsList(a *authRequest) response {
	s, res, ok := e.signedInSubject(a)
	if !ok {
		return res
	}
	l, err := e.listFactors(a.r.Context(), s.userID)
	if err != nil {
		return e.storeFailed(a, "list factors", err)
	}
	return jsonResponse(200, l)
}

// factorsPage is GET /factors: the signed-in user's passkeys, authenticator app and
// recovery codes, with their controls.
func (e *Engine) factorsPage(a *authRequest) response {
	if a.cfg.Pages.Factors != "" {
		return redirectTo(http.StatusFound, appPage(a.cfg.Pages.Factors, a.r.URL.RawQuery))
	}
	s, err := e.subject(a)
	if err != nil {
		return e.pages.serverError(a, err)
	}
	if s == nil || s.pending != nil {
		return redirectTo(200, e.base+"/signin?callbackUrl="+url.QueryEscape(e.base+"/factors"))
	}
	l, err := e.listFactors(a.r.Context(), s.userID)
	if err != nil {
		return e.pages.serverError(a, unavailable(err))
	}
	v := &factorView{
		Passkey: a.cfg.Factors.Passkey, TOTP: a.cfg.Factors.TOTP,
		Passkeys: l.Passkeys, TOTPEnrolled: l.TOTP, RecoveryRemaining: l.RecoveryCodes,
	}
	return e.pages.renderFactorPage(a, "factors", "Sign-in methods", a.callbackURL, a.query.Get("error"), v)
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

// appPage is the app's own page (pages.challenge, pages.factors) with the request's query.
func appPage(page, query string) string {
	if query == "" {
		return page
	}
	return withQuery(page, query)
}

// providerByType finds the config's provider of a type.
func providerByType(cfg *script.Config, typ string) (script.Provider, bool) {
	for _, p := range cfg.Providers {
		if p.Type == typ {
			return p, true
		}
	}
	return script.Provider{}, false
}
