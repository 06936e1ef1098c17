// Package oauth is the gateway's OAuth 2 / OpenID Connect client: provider discovery
// (go-oidc), the authorization URL with its state, PKCE and nonce values, the callback's
// code exchange, ID token verification and userinfo read (with GitHub's e-mail lookup),
// linking the provider account to a store user, and the refresh of provider access tokens
// under a per-account lock (in process and in the store).
//
// It owns these because they are the parts of OAuth sign-in that are easy to get wrong and
// the same whatever HTTP surface drives them. It knows nothing of requests, responses or
// cookies: it returns the check values, the user, the account and the profile, and package
// engine (engine/oauth.go, engine/oauth_callback.go) keeps the checks in NextAuth's check
// cookies, runs the signIn, jwt and events callbacks and writes the NextAuth-shaped
// answers. Provider presets (the module sources in engine/oauth/presets) are run and
// read by engine/script (oauth_providers.go), which hands this package a script.Provider.
//
// Every expiry decided here (discovery retries, ID token times, refresh due, the memo of
// rotated tokens) reads Options.Now, so tests move a clock instead of sleeping. The store
// lock's lease is kept by the store, on the store's own clock.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/callgate/callgate/engine/jwk"
	"github.com/callgate/callgate/engine/script"
	"github.com/callgate/callgate/store"
)

// providerHTTPTimeout bounds each request to a provider (discovery, token, userinfo), so
// a provider that hangs cannot hold a sign-in, or a refresh lock, for long.
const providerHTTPTimeout = 10 * time.Second

// discoveryRetry is how long a failed discovery is remembered before it is tried again.
const discoveryRetry = 5 * time.Second

// ErrStoreUnavailable is returned (wrapped) when linking or refreshing needs the store and
// cannot reach it: the engine answers as it does for any store outage, never "not found".
var ErrStoreUnavailable = errors.New("the session store is unavailable")

// unavailable wraps a store failure in ErrStoreUnavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrStoreUnavailable) {
		return err
	}
	return errors.Join(ErrStoreUnavailable, err)
}

// Options configure a Client.
type Options struct {
	// HTTPClient makes every request to providers; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// Store links provider accounts to users and coordinates refreshes across replicas.
	// nil: no linking, and refreshes are coordinated in this process only.
	Store store.Store
	// Logger receives the failures that do not fail the request (OAUTH_REFRESH_ERROR, ...).
	Logger *slog.Logger
	// Now is the clock of every expiry decided here: discovery retries, ID token checks,
	// refresh due, the rotated-token memo. nil means time.Now.
	Now func() time.Time
	// CallbackURL is the redirect_uri prefix: the provider's id is appended
	// ("https://auth.example.com/api/auth/callback/").
	CallbackURL string
	// RefreshLockLease and RefreshLockRenew time the store's refresh lock; zero means 5 s
	// and a third of the lease (refresh.go).
	RefreshLockLease, RefreshLockRenew time.Duration
}

// Client holds what OAuth sign-in keeps between requests: discovered provider metadata and
// the refresh coordination (refresh.go). It is safe for concurrent use.
type Client struct {
	http        *http.Client
	st          store.Store
	log         *slog.Logger
	now         func() time.Time
	callbackURL string

	mu        sync.Mutex
	endpoints map[string]*endpointEntry // by discovery URL, issuer and client id

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
	// keys are the provider's published keys, behind both verifiers.
	keys     *jwk.RemoteSet
	verifier *oidc.IDTokenVerifier // nil without discovery
	// logoutVerifier checks Back-Channel Logout tokens: the same keys, issuer and
	// audience, but no exp required (logout tokens need not have one; logout.go checks
	// iat instead). nil without discovery.
	logoutVerifier *oidc.IDTokenVerifier
	// endSessionURL is the discovery document's end_session_endpoint, "" when it has none.
	endSessionURL string
}

// New returns a Client.
func New(o Options) *Client {
	c := &Client{http: o.HTTPClient, st: o.Store, log: o.Logger, now: o.Now, callbackURL: o.CallbackURL,
		endpoints: map[string]*endpointEntry{}}
	if c.http == nil {
		c.http = &http.Client{Timeout: providerHTTPTimeout}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.refresh = newRefresher(o.RefreshLockLease, o.RefreshLockRenew)
	return c
}

// ctx carries the provider HTTP client into go-oidc and x/oauth2.
func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, c.http), c.http)
}

// endpointsFor resolves p's endpoints: discovery (cached per issuer; retried after
// discoveryRetry when it failed) overlaid with the explicit URLs.
func (c *Client) endpointsFor(ctx context.Context, p script.Provider) (*providerEndpoints, error) {
	o := p.OAuth
	discoveryURL := o.WellKnown
	if discoveryURL == "" && o.Issuer != "" {
		discoveryURL = strings.TrimSuffix(o.Issuer, "/") + "/.well-known/openid-configuration"
	}
	base := &providerEndpoints{}
	if discoveryURL != "" {
		key := discoveryURL + "\x00" + o.Issuer + "\x00" + o.ClientID
		c.mu.Lock()
		ent, ok := c.endpoints[key]
		if ok {
			select {
			case <-ent.ready:
				if ent.err != nil && c.now().Sub(ent.failedAt) > discoveryRetry {
					ok = false
				}
			default:
			}
		}
		if !ok {
			ent = &endpointEntry{ready: make(chan struct{})}
			c.endpoints[key] = ent
			c.mu.Unlock()
			ent.ep, ent.err = c.discover(ctx, o, discoveryURL)
			if ent.err != nil {
				ent.failedAt = c.now()
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

// providerMeta is what the gateway reads of a provider's discovery document.
type providerMeta struct {
	Issuer        string   `json:"issuer"`
	AuthURL       string   `json:"authorization_endpoint"`
	TokenURL      string   `json:"token_endpoint"`
	UserinfoURL   string   `json:"userinfo_endpoint"`
	JWKSURL       string   `json:"jwks_uri"`
	Algorithms    []string `json:"id_token_signing_alg_values_supported"`
	EndSessionURL string   `json:"end_session_endpoint"`
}

// discover reads the provider's metadata. With an issuer, go-oidc checks that the document
// names that issuer; with only wellKnown, the document's own issuer is used.
func (c *Client) discover(ctx context.Context, o *script.OAuthProvider, discoveryURL string) (*providerEndpoints, error) {
	ctx, cancel := context.WithTimeout(c.ctx(ctx), providerHTTPTimeout)
	defer cancel()
	var meta providerMeta
	var err error
	if o.WellKnown == "" {
		var prov *oidc.Provider
		if prov, err = oidc.NewProvider(ctx, o.Issuer); err == nil {
			err = prov.Claims(&meta)
		}
	} else {
		meta, err = c.metaFromWellKnown(ctx, o.WellKnown, o.Issuer)
	}
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", discoveryURL, err)
	}
	if meta.EndSessionURL != "" && !strings.HasPrefix(meta.EndSessionURL, "https://") && !strings.HasPrefix(meta.EndSessionURL, "http://") {
		return nil, fmt.Errorf("discover %s: end_session_endpoint %q is not an http(s) URL", discoveryURL, meta.EndSessionURL)
	}
	// One key set for ID and logout tokens. A logout token comes from whoever posts it, and
	// its kid is theirs to choose: the set refetches for an unknown kid at most every 30 s.
	keys := jwk.NewRemoteSet(meta.JWKSURL, c.http, jwk.RemoteOptions{Now: c.now})
	algs := signingAlgorithms(meta.Algorithms)
	return &providerEndpoints{
		authURL: meta.AuthURL, tokenURL: meta.TokenURL, userinfoURL: meta.UserinfoURL, keys: keys,
		verifier: oidc.NewVerifier(meta.Issuer, keys, &oidc.Config{ClientID: o.ClientID, Now: c.now, SupportedSigningAlgs: algs}),
		logoutVerifier: oidc.NewVerifier(meta.Issuer, keys, &oidc.Config{ClientID: o.ClientID, Now: c.now, SupportedSigningAlgs: algs,
			SkipExpiryCheck: true}),
		endSessionURL: meta.EndSessionURL,
	}, nil
}

// signingAlgorithms are the asymmetric algorithms of the provider's
// id_token_signing_alg_values_supported: never "none" nor HMAC, whose key would be the
// client secret. Empty means RS256, the one OpenID Connect requires.
func signingAlgorithms(advertised []string) []string {
	var out []string
	for _, a := range advertised {
		switch a {
		case oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.EdDSA:
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []string{oidc.RS256}
	}
	return out
}

func (c *Client) metaFromWellKnown(ctx context.Context, wellKnown, issuer string) (providerMeta, error) {
	var meta providerMeta
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return meta, fmt.Errorf("build discovery request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return meta, fmt.Errorf("fetch discovery document: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return meta, fmt.Errorf("read discovery document: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return meta, fmt.Errorf("discovery document: HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return meta, fmt.Errorf("decode discovery document: %w", err)
	}
	if issuer != "" && meta.Issuer != issuer {
		return meta, fmt.Errorf("discovery document names issuer %q, want %q", meta.Issuer, issuer)
	}
	return meta, nil
}
