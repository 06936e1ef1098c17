package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
	"github.com/callgate/callgate/store"
)

// Sign-in by e-mail, NextAuth v4's Email provider (docs/wire.md §3.6, §3.7): POST
// /signin/email stores a one-time token (hashed, with its expiry) and sends a link to
// /callback/email; opening the link uses the token up, finds or creates the store user by
// that address and signs them in through the same tail as every other provider.
//
// Nothing in the answer to POST /signin/email depends on the address: an unknown one, a
// known one and one past a sending limit all get the redirect to /verify-request, and only
// the log says which (no way to learn who has an account, or who is being limited).

// amrEmail is the method of a sign-in by e-mail link. RFC 8176 has no name for it, and
// "otp" would let a link pass for a second factor.
const amrEmail = "email"

// errInvalidEmail is a normaliser refusal: the address is not one a link can go to.
var errInvalidEmail = errors.New("invalid email address format")

// normalizeEmail is NextAuth v4's default normalizeIdentifier: NFKC, trimmed, exactly one
// "@", no quotes, lower-cased, anything after a comma in the domain dropped (a list of
// addresses is not one), and a domain with a dot. It also refuses whitespace and control
// characters inside the address, which NextAuth leaves to its mailer: the address goes
// into mail headers and into sendVerificationRequest, where a line break would be a header
// of the sender's choosing.
func normalizeEmail(raw string) (string, error) {
	s := strings.TrimSpace(norm.NFKC.String(raw))
	if strings.Count(s, "@") != 1 || strings.Contains(s, `"`) {
		return "", errInvalidEmail
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", errInvalidEmail
	}
	local, domain, _ := strings.Cut(strings.ToLower(s), "@")
	if local == "" || domain == "" {
		return "", errInvalidEmail
	}
	domain, _, _ = strings.Cut(domain, ",")
	if !strings.Contains(domain, ".") {
		return "", errInvalidEmail
	}
	return local + "@" + domain, nil
}

// verificationTokenHash is what the store keeps of a sign-in token: NextAuth's hashToken,
// sha256 hex of the token followed by the provider's secret, or the auth secret.
func (e *Engine) verificationTokenHash(p script.Provider, token string) string {
	secret := p.Email.Secret
	if secret == "" {
		secret = e.keys.Secret()
	}
	return store.SessionID(token + secret)
}

// emailSignin is POST /signin/:provider for an e-mail provider (CSRF already verified).
func (e *Engine) emailSignin(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	signinError := redirectTo(200, e.urls.errorURL("error=EmailSignin"))
	raw, _ := a.body["email"].(string)
	if raw == "" {
		return signinError
	}
	email, err := normalizeEmail(raw)
	if err != nil {
		e.log.ErrorContext(ctx, "e-mail sign-in refused", "code", "SIGNIN_EMAIL_ERROR", "provider", p.ID, "error", err.Error())
		return signinError
	}
	st := e.stored.st
	if st == nil {
		e.log.ErrorContext(ctx, "e-mail sign-in needs a store for its tokens and users", "code", "SIGNIN_EMAIL_ERROR", "provider", p.ID)
		return redirectTo(200, e.urls.errorURL("error=Configuration"))
	}
	user, err := emailAdapterUser(a, st, email)
	if err != nil {
		e.log.ErrorContext(ctx, "e-mail sign-in: store unavailable", "code", "SIGNIN_EMAIL_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	}
	if a.gen.Defines(script.CallbackSignIn) {
		account := map[string]any{"providerAccountId": email, "userId": email, "type": "email", "provider": p.ID}
		allowed, err := a.gen.SignIn(ctx, script.SignInArgs{User: user, Account: account, Email: map[string]any{"verificationRequest": true}})
		if err != nil {
			a.logScriptError("SIGNIN_CALLBACK_ERROR", err)
			if msg, ok := publicMessage(err); ok {
				return redirectTo(200, e.urls.errorURL("error="+cookie.EncodeValue(msg)))
			}
			return redirectTo(200, e.urls.errorURL("error=Configuration"))
		}
		if target, ok := allowed.(string); ok && target != "" {
			return redirectTo(200, e.urls.checkedRedirect(a, script.CallbackSignIn.String(), target))
		}
		if !truthy(allowed) {
			// 200, as NextAuth's sign-in route answers every redirect.
			return redirectTo(200, e.urls.errorURL("error=AccessDenied"))
		}
	}
	sent := redirectTo(200, e.base+"/verify-request?provider="+url.QueryEscape(p.ID)+"&type=email")

	address := e.limiter.addrs.ClientIP(a.r)
	held, refusedUntil, err := e.guard.EmailSends.Reserve(ctx, []string{email}, address)
	if err != nil {
		e.log.WarnContext(ctx, "e-mail sending limit not applied: store unavailable", "code", "STORE_UNAVAILABLE", "error", err.Error())
	}
	if !refusedUntil.IsZero() {
		e.log.WarnContext(ctx, "sign-in e-mail not sent: sending limit reached", "code", "EMAIL_SEND_LIMITED",
			"provider", p.ID, "address", address, "until", refusedUntil.UTC().Format("2006-01-02T15:04:05Z"))
		return sent
	}
	// A send that was tried keeps its slots, whatever came of it.
	defer held.Failed(ctx)

	token, err := randomToken()
	if err != nil {
		e.log.ErrorContext(ctx, "sign-in token", "code", "SIGNIN_EMAIL_ERROR", "error", err.Error())
		return signinError
	}
	expires := e.now().Add(p.Email.MaxAge)
	if err := st.CreateVerificationToken(ctx, store.VerificationToken{
		Identifier: email, Token: e.verificationTokenHash(p, token), Expires: expires,
	}); err != nil {
		e.log.ErrorContext(ctx, "store the sign-in token", "code", "SIGNIN_EMAIL_ERROR", "provider", p.ID, "error", err.Error())
		return signinError
	}
	// URLSearchParams order, as NextAuth builds the link: callbackUrl, token, email.
	link := e.base + "/callback/" + url.PathEscape(p.ID) + "?callbackUrl=" + url.QueryEscape(a.callbackURL) +
		"&token=" + token + "&email=" + url.QueryEscape(email)
	req := script.VerificationRequest{
		Identifier: email, URL: link, Expires: expires, Token: token,
		Provider: emailProviderArg(p), Theme: themeArg(a.cfg.Theme),
	}
	if p.Email.Send {
		err = a.gen.SendVerificationRequest(ctx, p.ID, req)
		if err != nil {
			a.logScriptError("SIGNIN_EMAIL_ERROR", err)
			return signinError
		}
	} else if err = sendSignInMail(ctx, p.Email, req, a.cfg.Theme); err != nil {
		e.log.ErrorContext(ctx, "the sign-in e-mail could not be sent", "code", "SIGNIN_EMAIL_ERROR", "provider", p.ID, "error", err.Error())
		return signinError
	}
	e.log.InfoContext(ctx, "sign-in e-mail sent", "code", "EMAIL_SENT", "provider", p.ID, "address", address)
	return sent
}

// emailAdapterUser is NextAuth's getAdapterUserFromEmail: the store user with that address,
// or {id: email, email, emailVerified: null}. err is a store failure.
func emailAdapterUser(a *authRequest, st store.Store, email string) (map[string]any, error) {
	u, err := st.FindUser(a.r.Context(), store.UserQuery{Email: email})
	switch {
	case err == nil:
		return emailUser(u), nil
	case errors.Is(err, store.ErrNotFound):
		return map[string]any{"id": email, "email": email, "emailVerified": nil}, nil
	}
	return nil, err
}

// emailUser is a store user as the callbacks see it after an e-mail sign-in.
func emailUser(u store.User) map[string]any {
	m := u.AdapterUser()
	if _, ok := m["emailVerified"]; !ok {
		m["emailVerified"] = nil
	}
	return m
}

// emailCallback is GET|POST /callback/:provider for an e-mail provider: the link.
func (e *Engine) emailCallback(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	token, identifier := a.query.Get("token"), a.query.Get("email")
	if token == "" {
		return redirectTo(200, e.urls.errorURL("error=configuration"))
	}
	st := e.stored.st
	if st == nil {
		e.log.ErrorContext(ctx, "e-mail sign-in needs a store for its tokens and users", "code", "CALLBACK_EMAIL_ERROR", "provider", p.ID)
		return redirectTo(200, e.urls.errorURL("error=Configuration"))
	}
	verification := redirectTo(200, e.urls.errorURL("error=Verification"))
	if identifier == "" {
		return verification
	}
	vt, err := st.UseVerificationToken(ctx, identifier, e.verificationTokenHash(p, token))
	switch {
	case errors.Is(err, store.ErrNotFound):
		e.log.WarnContext(ctx, "e-mail sign-in link unknown or already used", "code", "CALLBACK_EMAIL_ERROR", "provider", p.ID)
		return verification
	case err != nil:
		e.log.ErrorContext(ctx, "e-mail sign-in: use the token", "code", "CALLBACK_EMAIL_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	case !e.now().Before(vt.Expires) || vt.Identifier != identifier:
		e.log.WarnContext(ctx, "e-mail sign-in link expired", "code", "CALLBACK_EMAIL_ERROR", "provider", p.ID)
		return verification
	}
	email := vt.Identifier
	user, err := emailAdapterUser(a, st, email)
	if err != nil {
		e.log.ErrorContext(ctx, "e-mail sign-in: store unavailable", "code", "CALLBACK_EMAIL_ERROR", "error", err.Error())
		return storeUnavailableRedirect(e)
	}
	account := map[string]any{"providerAccountId": email, "type": "email", "provider": p.ID}
	return e.signInTail(a, &signInAttempt{
		in:              session.SignIn{User: user, Account: account},
		signInExtra:     map[string]any{"email": map[string]any{"verificationRequest": false}},
		eventsIsNewUser: true,
		amr:             []string{amrEmail},
		link: func(s *signInAttempt) (response, bool) {
			u, created, err := e.emailUserFor(a, st, p, email)
			if err != nil {
				if errors.Is(err, store.ErrUnavailable) {
					e.log.ErrorContext(ctx, "e-mail sign-in: store unavailable", "code", "CALLBACK_EMAIL_ERROR", "error", err.Error())
					return storeUnavailableRedirect(e), true
				}
				e.log.ErrorContext(ctx, "e-mail sign-in: create the user", "code", "CALLBACK_EMAIL_ERROR", "error", err.Error())
				return redirectTo(200, e.urls.errorURL("error=EmailCreateAccount")), true
			}
			s.in.User, s.in.IsNewUser = u, created
			s.in.UserID, s.in.HasID = u["id"].(string), true
			return response{}, false
		},
	})
}

// emailUserFor is NextAuth's callbackHandler for e-mail: the store user with that address,
// else a new one, verified now (events.createUser). The user's emailVerified is now in
// both cases, and stored (events.updateUser for an existing user).
func (e *Engine) emailUserFor(a *authRequest, st store.Store, p script.Provider, email string) (map[string]any, bool, error) {
	ctx := a.r.Context()
	verified := e.now().UTC().Format("2006-01-02T15:04:05.000Z")
	u, err := st.FindUser(ctx, store.UserQuery{Email: email})
	if err == nil {
		// NextAuth's updateUser({id, emailVerified}): the link proved the address.
		u, err = st.UpdateUser(ctx, u.ID, store.UserPatch{SetExtra: map[string]any{"emailVerified": verified}})
		if err != nil {
			return nil, false, fmt.Errorf("mark the e-mail verified: %w", err)
		}
		m := emailUser(u)
		a.emit(script.EventUpdateUser, map[string]any{"user": m})
		return m, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	u, err = st.CreateUser(ctx, store.User{
		Username: p.ID + ":" + email, Email: email,
		Extra: map[string]any{"emailVerified": verified},
	})
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("create user: %w", err)
	}
	m := emailUser(u)
	a.emit(script.EventCreateUser, map[string]any{"user": m})
	return m, true, nil
}

// randomToken is NextAuth's token: 32 random bytes, hex.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// emailProviderArg is the provider as sendVerificationRequest sees it.
func emailProviderArg(p script.Provider) map[string]any {
	s := p.Email.Server
	return map[string]any{
		"id": p.ID, "type": p.Type, "name": p.Name, "from": p.Email.From, "maxAge": p.Email.MaxAge.Seconds(),
		"server": map[string]any{"host": s.Host, "port": s.Port, "secure": s.Secure,
			"auth": map[string]any{"user": s.User, "pass": s.Password}},
	}
}

// themeArg is the theme as sendVerificationRequest sees it.
func themeArg(t script.Theme) map[string]any {
	m := map[string]any{"colorScheme": t.ColorScheme}
	for k, v := range map[string]string{"brandColor": t.BrandColor, "logo": t.Logo, "buttonText": t.ButtonText} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}
