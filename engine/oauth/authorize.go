package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/script"
)

// Checks are the values that bind a callback to the sign-in that started it. Each is
// empty when the provider does not use that check. The caller keeps them (the engine, in
// NextAuth's encrypted check cookies) and hands them back to Callback.
type Checks struct {
	State        string
	PKCEVerifier string
	Nonce        string
}

// reservedAuthParams are set here and never taken from the request's query: a sign-in
// link must not be able to switch a check off or send the code elsewhere.
var reservedAuthParams = map[string]bool{
	"state": true, "nonce": true, "code_challenge": true, "code_challenge_method": true,
	"redirect_uri": true, "client_id": true, "response_type": true,
}

// AuthorizationURL is where the browser goes to sign in with p: the provider's
// authorization params overlaid with query (the sign-in request's own), and fresh state,
// PKCE and nonce values for the checks p uses, which it returns for the caller to keep.
func (c *Client) AuthorizationURL(ctx context.Context, p script.Provider, query url.Values) (string, Checks, error) {
	ep, err := c.endpointsFor(ctx, p)
	if err != nil {
		return "", Checks{}, err
	}
	conf := c.oauth2Config(p, ep)
	var opts []oauth2.AuthCodeOption
	for k, v := range p.OAuth.AuthorizationParams {
		if !reservedAuthParams[k] {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	for k, vs := range query {
		if len(vs) > 0 && !reservedAuthParams[k] {
			opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
		}
	}
	var checks Checks
	if p.OAuth.HasCheck("state") {
		if checks.State, err = randomToken(); err != nil {
			return "", Checks{}, err
		}
	}
	if p.OAuth.HasCheck("pkce") {
		checks.PKCEVerifier = oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(checks.PKCEVerifier))
	}
	if p.OAuth.HasCheck("nonce") {
		if checks.Nonce, err = randomToken(); err != nil {
			return "", Checks{}, err
		}
		opts = append(opts, oidc.Nonce(checks.Nonce))
	}
	target := conf.AuthCodeURL(checks.State, opts...)
	if checks.State == "" {
		// AuthCodeURL always writes state; without the check there is none to send.
		target = dropParam(target, "state")
	}
	return target, checks, nil
}

// oauth2Config is the x/oauth2 view of p. Scope travels in the authorization params, as
// NextAuth sends it, not in Scopes.
func (c *Client) oauth2Config(p script.Provider, ep *providerEndpoints) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if p.OAuth.TokenAuthMethod == "client_secret_post" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.OAuth.ClientID,
		ClientSecret: p.OAuth.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: ep.authURL, TokenURL: ep.tokenURL, AuthStyle: style},
		RedirectURL:  c.callbackURL + p.ID,
	}
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
