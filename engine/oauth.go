package engine

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/oauth"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
	"github.com/callgate/callgate/store"
)

// OAuth 2 / OpenID Connect sign-in, the engine's half: the OAuth client itself (discovery,
// the authorization URL, code exchange, ID token, account linking, refresh) is package
// engine/oauth; here are the check cookies that carry its state, PKCE and nonce values
// between sign-in and callback, the signIn, jwt and events callbacks, the session it
// starts, and NextAuth's answers and error codes.

// checkMaxAge is NextAuth's lifetime of the state, PKCE and nonce cookies.
const checkMaxAge = 15 * time.Minute

// oauthOptions is the OAuth client's configuration for this engine.
func (e *Engine) oauthOptions(st store.Store) oauth.Options {
	return oauth.Options{Store: st, Logger: e.log, Now: e.now, CallbackURL: e.base + "/callback/"}
}

// checkCookies writes, reads and verifies the OAuth check cookies (state, PKCE, nonce),
// each encrypted under a key ring of its own derived from the session secrets, which it
// owns. Safe for concurrent use.
type checkCookies struct {
	keys *token.KeyRing // the session ring: its secrets key every check ring
	now  func() time.Time

	mu    sync.Mutex
	rings map[string]*token.KeyRing // by cookie name
}

func newCheckCookies(keys *token.KeyRing, now func() time.Time) *checkCookies {
	return &checkCookies{keys: keys, now: now, rings: map[string]*token.KeyRing{}}
}

// oauthSignin is POST /signin/:provider for "oauth" and "oidc" providers: the provider's
// authorization URL, the check cookies, and a redirect to the provider.
func (e *Engine) oauthSignin(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	target, checks, err := e.oauth.AuthorizationURL(ctx, p, a.query)
	if err != nil {
		e.log.ErrorContext(ctx, "build the authorization URL", "code", "SIGNIN_OAUTH_ERROR", "provider", p.ID, "error", err.Error())
		return redirectTo(200, e.urls.errorURL("error=OAuthSignin"))
	}
	var cookies []string
	for _, check := range []struct {
		name, value string
		def         cookie.Definition
	}{{"state", checks.State, a.cookies.State}, {"pkce", checks.PKCEVerifier, a.cookies.PKCECodeVerifier}, {"nonce", checks.Nonce, a.cookies.Nonce}} {
		if check.value == "" {
			continue
		}
		c, err := e.checks.set(check.def, p.ID, check.value)
		if err != nil {
			e.log.ErrorContext(ctx, "create a check cookie", "code", "SIGNIN_OAUTH_ERROR", "provider", p.ID, "check", check.name, "error", err.Error())
			return redirectTo(200, e.urls.errorURL("error=OAuthSignin"))
		}
		cookies = append(cookies, c)
	}
	res := redirectTo(200, target)
	res.cookies = cookies
	return res
}

// ring returns the key ring of a check cookie: NextAuth encrypts each with the default
// encoder and salt = the cookie's own name, so a state cookie cannot be replayed as a
// nonce cookie.
func (c *checkCookies) ring(name string) (*token.KeyRing, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.rings[name]; ok {
		return k, nil
	}
	k, err := token.NewKeyRing(c.keys.Secrets(), name, token.WithClock(c.now))
	if err != nil {
		return nil, fmt.Errorf("check cookie keys: %w", err)
	}
	c.rings[name] = k
	return k, nil
}

// set is the Set-Cookie of one check: a JWE of {value, provider} for 900 s.
func (c *checkCookies) set(def cookie.Definition, providerID, value string) (string, error) {
	ring, err := c.ring(def.Name)
	if err != nil {
		return "", err
	}
	tok, err := ring.Encode(map[string]any{"value": value, "provider": providerID}, checkMaxAge)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", def.Name, err)
	}
	o := def.Options
	o.MaxAge = cookie.MaxAge(int(checkMaxAge / time.Second))
	o.Expires = c.now().Add(checkMaxAge)
	return cookie.Cookie{Name: def.Name, Value: tok, Options: o}.String(), nil
}

// use reads and validates one check cookie of jar and returns its value and the cookie
// that deletes it. Missing, undecryptable, expired or other-provider cookies are errors.
func (c *checkCookies) use(jar cookie.Jar, def cookie.Definition, providerID string) (string, string, error) {
	raw, ok := jar.Get(def.Name)
	if !ok || raw == "" {
		return "", "", fmt.Errorf("%s cookie was missing", def.Name)
	}
	ring, err := c.ring(def.Name)
	if err != nil {
		return "", "", err
	}
	claims, err := ring.Decode(raw)
	if err != nil {
		return "", "", fmt.Errorf("%s cookie: %w", def.Name, err)
	}
	if p, _ := claims["provider"].(string); p != providerID {
		return "", "", fmt.Errorf("%s cookie belongs to provider %q, not %q", def.Name, p, providerID)
	}
	value, _ := claims["value"].(string)
	if value == "" {
		return "", "", fmt.Errorf("%s cookie has no value", def.Name)
	}
	o := def.Options
	o.MaxAge = cookie.MaxAge(0)
	o.Expires = time.Time{}
	return value, cookie.Cookie{Name: def.Name, Value: "", Options: o}.String(), nil
}

// verify reads the check cookies of p's checks and compares the state with the
// callback's parameter. It returns the checks for the OAuth client and the cookies that
// delete those it read, also when it fails.
func (c *checkCookies) verify(a *authRequest, p script.Provider, state string) (oauth.Checks, []string, error) {
	var checks oauth.Checks
	var cookies []string
	for _, check := range []struct {
		name  string
		def   cookie.Definition
		value *string
	}{{"state", a.cookies.State, &checks.State}, {"pkce", a.cookies.PKCECodeVerifier, &checks.PKCEVerifier}, {"nonce", a.cookies.Nonce, &checks.Nonce}} {
		if !p.OAuth.HasCheck(check.name) {
			continue
		}
		v, del, err := c.use(a.jar, check.def, p.ID)
		if err != nil {
			return checks, cookies, fmt.Errorf("%s: %w", check.name, err)
		}
		cookies = append(cookies, del)
		*check.value = v
		if check.name == "state" && state != v {
			return checks, cookies, errors.New("state: the state parameter does not match the state cookie")
		}
	}
	return checks, cookies, nil
}
