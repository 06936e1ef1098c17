package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/cookie"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/engine/token"
)

// OAuth 2 / OpenID Connect sign-in (spec §2.4, §3.6, §3.7). The engine owns every check:
// state, PKCE and nonce live in their own short-lived encrypted cookies bound to the
// provider; ID tokens are verified by go-oidc against the issuer's published keys; code
// exchange and refresh go through golang.org/x/oauth2. Scripts only map profiles and decide.

// checkMaxAge is NextAuth's lifetime of the state, PKCE and nonce cookies.
const checkMaxAge = 15 * time.Minute

// providerHTTPTimeout bounds each request to a provider (discovery, token, userinfo), so
// a provider that hangs cannot hold a sign-in, or a refresh lock, for long.
const providerHTTPTimeout = 10 * time.Second

// discoveryRetry is how long a failed discovery is remembered before it is tried again.
const discoveryRetry = 5 * time.Second

// oauthClient holds what OAuth sign-in keeps between requests: discovered provider
// metadata, the check-cookie key rings, and the refresh coordination (oauth_refresh.go).
type oauthClient struct {
	http *http.Client

	mu        sync.Mutex
	endpoints map[string]*endpointEntry // by discovery URL
	rings     map[string]*token.KeyRing // check-cookie rings by cookie name

	refresh *refresher
}

type endpointEntry struct {
	ready    chan struct{}
	ep       *providerEndpoints
	err      error
	failedAt time.Time
}

// providerEndpoints is a provider's resolved metadata.
type providerEndpoints struct {
	authURL, tokenURL, userinfoURL string
	verifier                       *oidc.IDTokenVerifier // nil without discovery
}

func newOAuthClient(client *http.Client) *oauthClient {
	if client == nil {
		client = &http.Client{Timeout: providerHTTPTimeout}
	}
	return &oauthClient{
		http:      client,
		endpoints: map[string]*endpointEntry{},
		rings:     map[string]*token.KeyRing{},
		refresh:   newRefresher(),
	}
}

// ctx carries the provider HTTP client into go-oidc and x/oauth2.
func (c *oauthClient) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, c.http), c.http)
}

// endpointsFor resolves p's endpoints: discovery (cached per generation's issuer; retried
// after discoveryRetry when it failed) overlaid with the explicit URLs.
func (e *Engine) endpointsFor(ctx context.Context, p script.Provider) (*providerEndpoints, error) {
	o := p.OAuth
	discoveryURL := o.WellKnown
	if discoveryURL == "" && o.Issuer != "" {
		discoveryURL = strings.TrimSuffix(o.Issuer, "/") + "/.well-known/openid-configuration"
	}
	base := &providerEndpoints{}
	if discoveryURL != "" {
		c := e.oauth
		key := discoveryURL + "\x00" + o.Issuer + "\x00" + o.ClientID
		c.mu.Lock()
		ent, ok := c.endpoints[key]
		if ok {
			select {
			case <-ent.ready:
				if ent.err != nil && e.now().Sub(ent.failedAt) > discoveryRetry {
					ok = false
				}
			default:
			}
		}
		if !ok {
			ent = &endpointEntry{ready: make(chan struct{})}
			c.endpoints[key] = ent
			c.mu.Unlock()
			ent.ep, ent.err = e.discover(ctx, o, discoveryURL)
			if ent.err != nil {
				ent.failedAt = e.now()
			}
			close(ent.ready)
		} else {
			c.mu.Unlock()
			select {
			case <-ent.ready:
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for discovery: %w", ctx.Err())
			}
		}
		if ent.err != nil {
			return nil, ent.err
		}
		base = ent.ep
	}
	ep := *base
	if o.AuthorizationURL != "" {
		ep.authURL = o.AuthorizationURL
	}
	if o.TokenURL != "" {
		ep.tokenURL = o.TokenURL
	}
	if o.UserinfoURL != "" {
		ep.userinfoURL = o.UserinfoURL
	}
	if ep.authURL == "" || ep.tokenURL == "" {
		return nil, errors.New("the provider has no authorization or token endpoint")
	}
	return &ep, nil
}

// discover reads the provider's metadata. With an issuer, go-oidc checks that the document
// names that issuer; with only wellKnown, the document's own issuer is used.
func (e *Engine) discover(ctx context.Context, o *script.OAuthProvider, discoveryURL string) (*providerEndpoints, error) {
	ctx, cancel := context.WithTimeout(e.oauth.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	var prov *oidc.Provider
	var err error
	if o.WellKnown == "" {
		prov, err = oidc.NewProvider(ctx, o.Issuer)
	} else {
		prov, err = e.providerFromWellKnown(ctx, o.WellKnown, o.Issuer)
	}
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", discoveryURL, err)
	}
	var claims struct {
		UserinfoURL string `json:"userinfo_endpoint"`
	}
	_ = prov.Claims(&claims)
	ep := prov.Endpoint()
	return &providerEndpoints{
		authURL: ep.AuthURL, tokenURL: ep.TokenURL, userinfoURL: claims.UserinfoURL,
		verifier: prov.Verifier(&oidc.Config{ClientID: o.ClientID, Now: e.now}),
	}, nil
}

func (e *Engine) providerFromWellKnown(ctx context.Context, wellKnown, issuer string) (*oidc.Provider, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return nil, fmt.Errorf("build discovery request: %w", err)
	}
	resp, err := e.oauth.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch discovery document: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read discovery document: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery document: HTTP %d", resp.StatusCode)
	}
	var doc struct {
		Issuer      string   `json:"issuer"`
		AuthURL     string   `json:"authorization_endpoint"`
		TokenURL    string   `json:"token_endpoint"`
		UserinfoURL string   `json:"userinfo_endpoint"`
		JWKSURL     string   `json:"jwks_uri"`
		Algorithms  []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode discovery document: %w", err)
	}
	if issuer != "" && doc.Issuer != issuer {
		return nil, fmt.Errorf("discovery document names issuer %q, want %q", doc.Issuer, issuer)
	}
	cfg := oidc.ProviderConfig{IssuerURL: doc.Issuer, AuthURL: doc.AuthURL, TokenURL: doc.TokenURL,
		UserInfoURL: doc.UserinfoURL, JWKSURL: doc.JWKSURL, Algorithms: doc.Algorithms}
	return cfg.NewProvider(ctx), nil
}

// oauth2Config is the x/oauth2 view of p. Scope travels in the authorization params, as
// NextAuth sends it, not in Scopes.
func (e *Engine) oauth2Config(p script.Provider, ep *providerEndpoints) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if p.OAuth.TokenAuthMethod == "client_secret_post" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.OAuth.ClientID,
		ClientSecret: p.OAuth.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.authURL, TokenURL: ep.tokenURL, AuthStyle: style},
		RedirectURL:  e.base + "/callback/" + p.ID,
	}
}

// reservedAuthParams are set by the engine and never taken from the request's query: a
// sign-in link must not be able to switch a check off or send the code elsewhere.
var reservedAuthParams = map[string]bool{
	"state": true, "nonce": true, "code_challenge": true, "code_challenge_method": true,
	"redirect_uri": true, "client_id": true, "response_type": true,
}

// oauthSignin is POST /signin/:provider for "oauth" and "oidc" providers (§3.6): the
// provider's authorization params overlaid with the request's query, the check cookies,
// and a redirect to the provider.
func (e *Engine) oauthSignin(a *authRequest, p script.Provider) response {
	ctx := a.r.Context()
	ep, err := e.endpointsFor(ctx, p)
	if err != nil {
		e.log.ErrorContext(ctx, "build the authorization URL", "code", "SIGNIN_OAUTH_ERROR", "provider", p.ID, "error", err.Error())
		return redirectTo(200, e.errorURL("error=OAuthSignin"))
	}
	conf := e.oauth2Config(p, ep)
	var opts []oauth2.AuthCodeOption
	for k, v := range p.OAuth.AuthorizationParams {
		if !reservedAuthParams[k] {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	for k, vs := range a.query {
		if len(vs) > 0 && !reservedAuthParams[k] {
			opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
		}
	}
	var cookies []string
	state := ""
	for _, check := range []struct {
		name string
		def  cookie.Definition
	}{{"state", a.cookies.State}, {"pkce", a.cookies.PKCECodeVerifier}, {"nonce", a.cookies.Nonce}} {
		if !p.OAuth.HasCheck(check.name) {
			continue
		}
		value := ""
		switch check.name {
		case "state":
			value, err = randomToken()
			state = value
		case "pkce":
			value = oauth2.GenerateVerifier()
			opts = append(opts, oauth2.S256ChallengeOption(value))
		case "nonce":
			value, err = randomToken()
			opts = append(opts, oidc.Nonce(value))
		}
		if err == nil {
			var c string
			c, err = e.checkCookie(check.def, p.ID, value)
			cookies = append(cookies, c)
		}
		if err != nil {
			e.log.ErrorContext(ctx, "create a check cookie", "code", "SIGNIN_OAUTH_ERROR", "provider", p.ID, "check", check.name, "error", err.Error())
			return redirectTo(200, e.errorURL("error=OAuthSignin"))
		}
	}
	target := conf.AuthCodeURL(state, opts...)
	if state == "" {
		// AuthCodeURL always writes state; without the check there is none to send.
		target = dropParam(target, "state")
	}
	res := redirectTo(200, target)
	res.cookies = cookies
	return res
}

func dropParam(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Del(name)
	u.RawQuery = q.Encode()
	return u.String()
}

// randomToken is 32 random bytes, base64url: state and nonce values.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random value: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// checkRing returns the key ring of a check cookie: NextAuth encrypts each with the
// default encoder and salt = the cookie's own name, so a state cookie cannot be replayed
// as a nonce cookie.
func (e *Engine) checkRing(name string) (*token.KeyRing, error) {
	c := e.oauth
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.rings[name]; ok {
		return k, nil
	}
	k, err := token.NewKeyRing(e.keys.Secrets(), name, token.WithClock(e.now))
	if err != nil {
		return nil, fmt.Errorf("check cookie keys: %w", err)
	}
	c.rings[name] = k
	return k, nil
}

// checkCookie is the Set-Cookie of one check: a JWE of {value, provider} for 900 s.
func (e *Engine) checkCookie(def cookie.Definition, providerID, value string) (string, error) {
	ring, err := e.checkRing(def.Name)
	if err != nil {
		return "", err
	}
	tok, err := ring.Encode(map[string]any{"value": value, "provider": providerID}, checkMaxAge)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", def.Name, err)
	}
	o := def.Options
	o.MaxAge = cookie.MaxAge(int(checkMaxAge / time.Second))
	o.Expires = e.now().Add(checkMaxAge)
	return cookie.Cookie{Name: def.Name, Value: tok, Options: o}.String(), nil
}

// useCheck reads and validates one check cookie and returns its value and the cookie that
// deletes it. Missing, undecryptable, expired or other-provider cookies are errors.
func (e *Engine) useCheck(a *authRequest, def cookie.Definition, providerID string) (string, string, error) {
	raw, ok := a.jar.Get(def.Name)
	if !ok || raw == "" {
		return "", "", fmt.Errorf("%s cookie was missing", def.Name)
	}
	ring, err := e.checkRing(def.Name)
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
