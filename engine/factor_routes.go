package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

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
