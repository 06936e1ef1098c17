package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/factor"
	"github.com/callgate/callgate/engine/guard"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/session"
	"github.com/callgate/callgate/store"
)

// Second factors and passkeys (the config's `factors`, and a Passkey provider).
//
// The policy is the scripts': signIn may answer {secondFactor: true | [kinds]}, and
// authorized may answer {stepUp: {factors}}. The core runs the rest: a sign-in that needs a
// second factor waits in a sealed, single-use cookie (pendingSignIn) until the user proves
// one on the challenge page, and only then is its session issued, recording how the user
// authenticated (amr) and when (auth_time). A step-up re-records them on the session the
// user already has. engine/factor holds the primitives (TOTP, WebAuthn, sealing); the
// store keeps the factors, the single-use markers and the attempt counters, so replicas
// share all three.

// The factor kinds a policy may name, and the RFC 8176 methods a session records.
const (
	kindPasskey = "passkey"
	kindTOTP    = "totp"
	// kindRecovery is a one-time recovery code: it stands in for any kind when the
	// user's authenticator is lost.
	kindRecovery = "recovery"

	amrPassword  = "pwd"
	amrOTP       = "otp"
	amrPasskey   = "hwk"
	amrFederated = "fed" // signed in through an OAuth / OpenID Connect provider
	amrMulti     = "mfa"
)

// Lifetimes and names of the factor cookies. Each is a JWE under its own key (salted by
// its name, engine/token), so none can be passed off as another, or as a session token.
const (
	// pendingMaxAge is how long a sign-in may wait for its second factor.
	pendingMaxAge = 5 * time.Minute
	// ceremonyMaxAge is how long a WebAuthn ceremony or a TOTP enrolment may take.
	ceremonyMaxAge = 5 * time.Minute

	pendingCookieName  = "callgate.second-factor"
	ceremonyCookieName = "callgate.webauthn"
	enrolCookieName    = "callgate.totp-enrolment"

	// The single-use markers, as verification tokens (identifier, SHA-256 of the value).
	pendingMarker  = "callgate:second-factor"
	ceremonyMarker = "callgate:webauthn"

	// recoveryCodeCount is how many recovery codes an enrolment hands out.
	recoveryCodeCount = 10
)

// errFactorsOff answers factor routes when the config turns no factor on.
var errFactorsOff = errors.New("second factors are not enabled: set factors in the auth config")

// factors is the engine's part of second factors: the store, the primitives, the sealed
// cookies and the attempt limits. It is built once in New.
type factors struct {
	st       store.Store // nil: no factor works, whatever the config says
	sealer   *factor.Sealer
	passkeys *factor.Passkeys // nil when the public URL cannot be an RP ID (an IP address)
	rings    *checkCookies
	limits   *guard.Limits
	addrs    *clientaddr.Resolver
	host     string // the public host, the default TOTP issuer
	now      func() time.Time
	log      *slog.Logger
}

func newFactors(e *Engine, o Options) (*factors, error) {
	secrets := e.keys.Secrets()
	raw := make([][]byte, len(secrets))
	for i, s := range secrets {
		raw[i] = []byte(s)
	}
	sealer, err := factor.NewSealer(raw)
	if err != nil {
		return nil, fmt.Errorf("factor keys: %w", err)
	}
	// The RP ID is the registrable scope of the credentials: the cookie domain when the
	// sign-in is shared by subdomains, else the public host.
	rpID := o.URL.Hostname()
	if d := strings.TrimPrefix(o.CookieDomain, "."); d != "" {
		rpID = d
	}
	passkeys, err := factor.NewPasskeys(factor.PasskeyConfig{
		RPID: rpID, RPName: o.URL.Hostname(), Origins: append([]string{e.origin}, o.RedirectOrigins...), Timeout: ceremonyMaxAge,
	})
	if err != nil {
		// WebAuthn needs a domain (an IP address or a bare name cannot be an RP ID): the
		// other factors still work, and passkey routes say why they do not.
		passkeys = nil
		level := slog.LevelDebug
		if o.Generation.Config().Factors.Passkey {
			level = slog.LevelWarn
		}
		e.log.Log(context.Background(), level, "passkeys are off: WebAuthn needs the public URL (or cookie_domain) to be a domain name",
			"code", "PASSKEYS_UNAVAILABLE", "url", o.URL.String(), "error", err.Error())
	}
	return &factors{
		st: o.Store, sealer: sealer, passkeys: passkeys, rings: e.checks,
		limits: e.guard.Limits, addrs: o.Security.Addresses, host: o.URL.Hostname(), now: e.now, log: e.log,
	}, nil
}

// on reports whether factors work for this request's config.
func (f *factors) on(cfg *script.Config) bool { return f.st != nil && cfg.Factors.Enabled() }

// kinds are the factor kinds the config turns on, in the order pages offer them.
func (f *factors) kinds(cfg *script.Config) []string {
	var out []string
	if cfg.Factors.Passkey && f.passkeys != nil {
		out = append(out, kindPasskey)
	}
	if cfg.Factors.TOTP {
		out = append(out, kindTOTP)
	}
	return out
}

func (f *factors) totp(cfg *script.Config) *factor.TOTP {
	issuer := cfg.Factors.TOTPIssuer
	if issuer == "" {
		issuer = f.host
	}
	return &factor.TOTP{Issuer: issuer, Now: f.now}
}

// cookieDef is a factor cookie's definition: HttpOnly, SameSite=Lax, scoped to the auth
// routes, Secure with the __Secure- prefix on https.
func (f *factors) cookieDef(a *authRequest, name string) cookie.Definition {
	o := cookie.Options{Path: BasePath, HttpOnly: true, Secure: a.secure, SameSite: "Lax"}
	if a.secure {
		name = "__Secure-" + name
	}
	return cookie.Definition{Name: name, Options: o}
}

// seal is the Set-Cookie of v (JSON) sealed under the cookie's own key for maxAge.
func (f *factors) seal(a *authRequest, name string, v any, maxAge time.Duration) (string, error) {
	ring, err := f.rings.ring(name)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", name, err)
	}
	tok, err := ring.EncodeJSON(payload, maxAge)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", name, err)
	}
	def := f.cookieDef(a, name)
	o := def.Options
	o.MaxAge = cookie.MaxAge(int(maxAge / time.Second))
	o.Expires = f.now().Add(maxAge)
	return cookie.Cookie{Name: def.Name, Value: tok, Options: o}.String(), nil
}

// open reads the sealed cookie into v. A missing, forged or expired cookie is an error.
func (f *factors) open(a *authRequest, name string, v any) error {
	def := f.cookieDef(a, name)
	raw, ok := a.jar.Get(def.Name)
	if !ok || raw == "" {
		return fmt.Errorf("%s cookie missing", name)
	}
	ring, err := f.rings.ring(name)
	if err != nil {
		return err
	}
	_, payload, err := ring.DecodePayload(raw)
	if err != nil {
		return fmt.Errorf("%s cookie: %w", name, err)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%s cookie: %w", name, err)
	}
	return nil
}

// clear is the Set-Cookie deleting a factor cookie.
func (f *factors) clear(a *authRequest, name string) string {
	def := f.cookieDef(a, name)
	o := def.Options
	o.MaxAge = cookie.MaxAge(0)
	o.Expires = time.Unix(0, 0)
	return cookie.Cookie{Name: def.Name, Value: "", Options: o}.String()
}

// mark records a single-use value (a pending sign-in's or a ceremony's) in the store until
// it expires; use consumes it: a second use, on any replica, is refused.
func (f *factors) mark(ctx context.Context, identifier, value string, until time.Time) error {
	return f.st.CreateVerificationToken(ctx, store.VerificationToken{Identifier: identifier, Token: store.SessionID(value), Expires: until})
}

func (f *factors) use(ctx context.Context, identifier, value string) error {
	t, err := f.st.UseVerificationToken(ctx, identifier, store.SessionID(value))
	if err != nil {
		return err
	}
	if !t.Expires.After(f.now()) {
		return store.ErrNotFound
	}
	return nil
}

// pendingSignIn is a sign-in the signIn callback allowed on condition of a second factor:
// everything the sign-in tail needs to issue the session once a factor is proved.
type pendingSignIn struct {
	// ID is the single-use marker: completing the sign-in consumes it.
	ID          string         `json:"id"`
	In          session.SignIn `json:"in"`
	Kinds       []string       `json:"kinds"`
	AMR         []string       `json:"amr"`
	CallbackURL string         `json:"callbackUrl"`
	OAuth       bool           `json:"oauth,omitempty"`
}

// secondFactorKinds reads signIn's {secondFactor: true | [kinds]}: the kinds it accepts
// (of those the config turns on), and whether it asked at all. A malformed answer is an
// error: a policy that cannot be read must not let the user through with less.
func secondFactorKinds(res any, on []string) (kinds []string, asked bool, err error) {
	m, ok := res.(map[string]any)
	if !ok {
		return nil, false, nil
	}
	v, ok := m["secondFactor"]
	if !ok || v == nil || v == false {
		return nil, false, nil
	}
	switch x := v.(type) {
	case bool:
		kinds = on
	case []any:
		for _, k := range x {
			s, _ := k.(string)
			if s != kindPasskey && s != kindTOTP {
				return nil, true, fmt.Errorf(`signIn: secondFactor lists %v; the kinds are "passkey" and "totp"`, k)
			}
			if slices.Contains(on, s) && !slices.Contains(kinds, s) {
				kinds = append(kinds, s)
			}
		}
	default:
		return nil, true, fmt.Errorf("signIn: secondFactor must be true or an array of kinds, got %T", v)
	}
	if len(kinds) == 0 {
		return nil, true, errors.New("signIn asked for a second factor, but none of the kinds it accepts is on in factors")
	}
	return kinds, true, nil
}

// requireSecondFactor parks the sign-in in the pending cookie and sends the browser to the
// challenge page.
func (e *Engine) requireSecondFactor(a *authRequest, s *signInAttempt, kinds []string) response {
	ctx := a.r.Context()
	f := e.factors
	fail := func(msg string, err error) response {
		args := []any{"code", "SECOND_FACTOR_ERROR"}
		if err != nil {
			args = append(args, "error", err.Error())
		}
		e.log.ErrorContext(ctx, msg, args...)
		res := redirectTo(s.status(http.StatusInternalServerError), e.urls.errorURL("error=Configuration"))
		res.cookies = s.cookies
		return res
	}
	if !s.in.HasID {
		return fail("signIn asked for a second factor for a user without an id", nil)
	}
	p := pendingSignIn{ID: rand.Text(), In: s.in, Kinds: kinds, AMR: s.amr, CallbackURL: a.callbackURL, OAuth: s.oauth}
	c, err := f.seal(a, pendingCookieName, p, pendingMaxAge)
	if err != nil {
		return fail("park the sign-in for its second factor", err)
	}
	if err := f.mark(ctx, pendingMarker, p.ID, f.now().Add(pendingMaxAge)); err != nil {
		return fail("park the sign-in for its second factor", err)
	}
	e.log.InfoContext(ctx, "sign-in waits for a second factor", "code", "SECOND_FACTOR_REQUIRED", "kinds", strings.Join(kinds, ","))
	res := redirectTo(200, e.base+"/challenge")
	res.cookies = append(append([]string(nil), s.cookies...), c)
	return res
}

// factorSubject is who proves or manages a factor: a sign-in waiting for its second factor
// (pending), or the signed-in user of the session cookie.
type factorSubject struct {
	userID      string
	name, email string // for the WebAuthn user entity and the TOTP account name
	pending     *pendingSignIn
	// session is the session cookie's value and token when the subject is signed in.
	raw   string
	token map[string]any
}

// authTime is when the subject last authenticated: the pending sign-in's now, the session's
// auth_time claim, or zero when the session recorded none.
func (s *factorSubject) authTime(now time.Time) time.Time {
	if s.pending != nil {
		return now
	}
	if at, ok := s.token[session.AuthTimeClaim].(float64); ok {
		return time.Unix(int64(at), 0)
	}
	return time.Time{}
}

// amr is the session's recorded authentication methods (a jwt token's decoded array, or a
// database session's list); none for a pending sign-in.
func (s *factorSubject) amr() []string {
	switch v := s.token[session.AMRClaim].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, m := range v {
			if str, ok := m.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

// subject finds who the request is for: a valid pending sign-in first (the user is in the
// middle of one), else the session.
func (e *Engine) subject(a *authRequest) (*factorSubject, error) {
	var p pendingSignIn
	if err := e.factors.open(a, pendingCookieName, &p); err == nil && p.ID != "" {
		s := &factorSubject{userID: p.In.UserID, pending: &p}
		s.name, _ = p.In.User["name"].(string)
		s.email, _ = p.In.User["email"].(string)
		return s, nil
	}
	raw := a.sessionToken()
	if raw == "" {
		return nil, nil
	}
	sess, err := e.sessions.For(a.cfg).Lookup(a.r.Context(), raw)
	if err != nil {
		return nil, sessionError(err)
	}
	if sess == nil {
		return nil, nil
	}
	tok := sess.Token()
	sub, _ := tok["sub"].(string)
	if sub == "" {
		return nil, nil
	}
	s := &factorSubject{userID: sub, raw: raw, token: tok}
	s.name, _ = tok["name"].(string)
	s.email, _ = tok["email"].(string)
	return s, nil
}

// webauthnUser is the subject as the WebAuthn ceremonies see it, with its passkeys.
func (e *Engine) webauthnUser(ctx context.Context, s *factorSubject) (factor.User, error) {
	keys, err := e.factors.st.ListPasskeys(ctx, s.userID)
	if err != nil {
		return factor.User{}, fmt.Errorf("list passkeys: %w", err)
	}
	name := s.email
	if name == "" {
		name = s.name
	}
	if name == "" {
		name = s.userID
	}
	display := s.name
	if display == "" {
		display = name
	}
	return factor.User{ID: s.userID, Name: name, DisplayName: display, Passkeys: keys}, nil
}

// enrolled reports which of kinds the user has.
func (e *Engine) enrolled(ctx context.Context, userID string, kinds []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, k := range kinds {
		switch k {
		case kindPasskey:
			keys, err := e.factors.st.ListPasskeys(ctx, userID)
			if err != nil {
				return nil, err
			}
			out[k] = len(keys) > 0
		case kindTOTP:
			_, err := e.factors.st.TOTP(ctx, userID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			out[k] = err == nil
		}
	}
	return out, nil
}

// withMethod is the amr of an authentication: the methods already proved (the password of
// a pending sign-in) and this one, each once, with "mfa" once there are two distinct ones.
func withMethod(before []string, method string) []string {
	amr := slices.Clone(before)
	if !slices.Contains(amr, method) {
		amr = append(amr, method)
	}
	methods := 0
	for _, m := range amr {
		if m != amrMulti {
			methods++
		}
	}
	if methods > 1 && !slices.Contains(amr, amrMulti) {
		amr = append(amr, amrMulti)
	}
	return amr
}

// kindMethods are the amr methods each factor kind proves.
var kindMethods = map[string]string{kindPasskey: amrPasskey, kindTOTP: amrOTP}

// unproved are the kinds whose method the sign-in has not proved already: a passkey
// sign-in asked for a passkey second factor has it.
func unproved(kinds, amr []string) []string {
	var out []string
	for _, k := range kinds {
		if !slices.Contains(amr, kindMethods[k]) {
			out = append(out, k)
		}
	}
	return out
}

// challengeURL is the challenge page for a step-up back to target, offering kinds.
func (e *Engine) challengeURL(target string, kinds []string, errCode string) string {
	q := url.Values{}
	if target != "" {
		q.Set("callbackUrl", target)
	}
	if len(kinds) > 0 {
		q.Set("factors", strings.Join(kinds, ","))
	}
	if errCode != "" {
		q.Set("error", errCode)
	}
	if len(q) == 0 {
		return e.base + "/challenge"
	}
	return e.base + "/challenge?" + q.Encode()
}
