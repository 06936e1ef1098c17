package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/factor"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// Enrolling and managing factors (factor_routes.go): who may change them and when, TOTP
// enrolment, recovery codes, removal, and the manage page and its JSON.

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
