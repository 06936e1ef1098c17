package engine

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/engine/oauth"
	"github.com/callgate/callgate/engine/reqbody"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
)

// BackchannelLogoutPath is where a provider with `logout: {backchannel: true}` posts its
// logout tokens: BackchannelLogoutPath + "/<provider id>", the URL to register with the
// provider as the client's backchannel_logout_uri.
const BackchannelLogoutPath = BasePath + "/backchannel-logout"

// serveBackchannelLogout is POST /api/auth/backchannel-logout/<provider>: OpenID Connect
// Back-Channel Logout 1.0. The provider posts a logout_token form field; a valid one ends
// every gateway session started from the provider session it names, on every replica
// sharing the store, and answers 200. A token the gateway refuses is 400 with an error
// JSON (section 2.8); the gateway's own trouble (the store, the provider's metadata) is
// 503, which the provider may retry. Every answer has Cache-Control: no-store and no
// cookie: the request comes from the provider, not a browser, so NextAuth's init (CSRF,
// callback URL) does not run.
func (e *Engine) serveBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	reqbody.LimitTime(w, r, e.bodyTimeout)
	ctx := r.Context()
	answer := func(status int, code, description string) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if status == http.StatusOK {
			w.WriteHeader(status)
			return
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := marshalJSON(map[string]string{"error": code, "error_description": description})
		_, _ = w.Write(b)
	}
	defer func() {
		if v := recover(); v != nil {
			e.log.ErrorContext(ctx, "panic while serving a back-channel logout", "code", "INTERNAL_ERROR", "panic", fmt.Sprint(v))
			answer(http.StatusInternalServerError, "server_error", "internal error")
		}
	}()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		answer(http.StatusBadRequest, "invalid_request", "the logout token must be posted as application/x-www-form-urlencoded")
		return
	}
	body, err := parseBody(r, e.maxBodyBytes)
	if err != nil {
		switch err = bodyError(err); {
		case errors.Is(err, errBodyTooLarge):
			answer(http.StatusRequestEntityTooLarge, "invalid_request", "request body too large")
		case errors.Is(err, errBodyTimeout):
			answer(http.StatusRequestTimeout, "invalid_request", "the request body was not received in time")
		default:
			answer(http.StatusBadRequest, "invalid_request", err.Error())
		}
		return
	}
	gen, release := e.gen.pin()
	defer release()
	cfg := gen.Config()
	providerID := r.PathValue("provider")
	p, ok := providerByID(&cfg, providerID)
	if !ok || p.OAuth == nil || !p.OAuth.BackchannelLogout {
		answer(http.StatusNotFound, "invalid_request", fmt.Sprintf("no provider %q with back-channel logout (logout: {backchannel: true})", providerID))
		return
	}
	raw, _ := body["logout_token"].(string)
	tok, err := e.oauth.VerifyLogoutToken(ctx, p, raw)
	var invalid *oauth.InvalidLogoutTokenError
	switch {
	case errors.As(err, &invalid):
		e.log.WarnContext(ctx, "back-channel logout refused", "code", "BACKCHANNEL_LOGOUT_ERROR", "provider", p.ID, "reason", invalid.Reason)
		answer(http.StatusBadRequest, "invalid_request", invalid.Reason)
		return
	case err != nil:
		e.log.ErrorContext(ctx, "back-channel logout: the provider's metadata could not be read", "code", "BACKCHANNEL_LOGOUT_ERROR", "provider", p.ID, "error", err.Error())
		answer(http.StatusServiceUnavailable, "temporarily_unavailable", "the provider's metadata could not be read; try again")
		return
	}
	giveBack, err := e.guard.Logouts.Reserve(ctx, p.ID, tok.JTI, oauth.LogoutTokenJTITTL)
	switch {
	case errors.Is(err, guard.ErrReplayed):
		e.log.WarnContext(ctx, "back-channel logout refused", "code", "BACKCHANNEL_LOGOUT_ERROR", "provider", p.ID, "reason", err.Error())
		answer(http.StatusBadRequest, "invalid_request", err.Error())
		return
	case err != nil:
		e.backchannelFailed(ctx, answer, p, err)
		return
	}
	events, err := e.sessions.For(cfg).EndProvider(ctx, providerLogout(cfg, p, tok))
	if err != nil {
		// Nothing was ended: the provider may send the same token again.
		giveBack(context.WithoutCancel(ctx))
		e.backchannelFailed(ctx, answer, p, err)
		return
	}
	by := "sub"
	if tok.SID != "" {
		by = "sid"
	}
	e.log.InfoContext(ctx, "signed out by the provider", "code", "BACKCHANNEL_LOGOUT", "provider", p.ID, "by", by, "signout_events", len(events))
	if gen.Defines(script.EventSignOut) {
		for _, ev := range events {
			if err := gen.Emit(ctx, script.EventSignOut, ev); err != nil {
				logScriptFailure(ctx, e.log, "SIGNOUT_EVENT_ERROR", err)
			}
		}
	}
	answer(http.StatusOK, "", "")
}

// providerLogout is what the session strategy ends for tok, and what events.signOut is
// told of the ended sessions: the provider session claim they carry.
func providerLogout(cfg script.Config, p script.Provider, tok oauth.LogoutToken) session.ProviderLogout {
	claim := map[string]any{"provider": p.ID}
	if tok.Subject != "" {
		claim["sub"] = tok.Subject
	}
	if tok.SID != "" {
		claim["sid"] = tok.SID
	}
	return session.ProviderLogout{
		ProviderSession: session.ProviderSession{Provider: p.ID, Subject: tok.Subject, SID: tok.SID},
		Token:           map[string]any{oauth.SessionClaim: claim},
		TTL:             max(cfg.JWT.MaxAge, cfg.Session.MaxAge),
		Before:          tok.IssuedAt,
	}
}

// backchannelFailed answers a logout the gateway could not carry out.
func (e *Engine) backchannelFailed(ctx context.Context, answer func(int, string, string), p script.Provider, err error) {
	switch {
	case errors.Is(err, guard.ErrNoStore), errors.Is(err, session.ErrNoStore):
		e.log.ErrorContext(ctx, "back-channel logout: the gateway has no store", "code", "BACKCHANNEL_LOGOUT_ERROR", "provider", p.ID)
		answer(http.StatusNotImplemented, "unsupported", "back-channel logout needs the gateway's store")
	default:
		e.log.ErrorContext(ctx, "back-channel logout: store unavailable", "code", "BACKCHANNEL_LOGOUT_ERROR", "provider", p.ID, "error", err.Error())
		answer(http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable; try again")
	}
}

// revokeProviderSession is the jwt strategy's RevokeProvider hook: the revocation entries
// of the provider session (sid) or subject (sub) in the store, announced to every replica.
func (e *Engine) revokeProviderSession(ctx context.Context, l session.ProviderLogout) error {
	if l.SID != "" {
		if err := e.guard.Logouts.RevokeProviderSession(ctx, l.Provider, l.SID, l.TTL); err != nil {
			return err
		}
	}
	if l.Subject != "" && l.SID == "" {
		// A sub alone ends every session of that subject with this provider (section 2.7).
		return e.guard.Logouts.RevokeProviderSubject(ctx, l.Provider, l.Subject, l.Before, l.TTL)
	}
	return nil
}
