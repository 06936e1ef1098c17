package bearer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/sync/singleflight"

	"github.com/callgate/callgate/engine/jwk"
	"github.com/callgate/callgate/engine/memo"
)

// Options describe one provider whose access tokens a route accepts.
type Options struct {
	// ID names the provider (the OAuth provider's id in the scripts), for request.auth and
	// the log.
	ID string
	// Issuer is the provider's OpenID Connect issuer. Its discovery document gives the
	// JWKS and, when it lists one, the introspection endpoint; a JWT's iss must be it.
	Issuer string
	// Audience lists the values of which a token's aud must hold one. Required: a token
	// the provider issued for another API is not a token for this one.
	Audience []string
	// IntrospectionURL overrides the discovery document's introspection_endpoint (Ory
	// Hydra serves introspection on its admin port, which discovery does not name).
	IntrospectionURL string
	// Introspect turns on opaque tokens: without it only JWT access tokens are accepted.
	Introspect bool
	// ClientID and ClientSecret authenticate the gateway at the introspection endpoint
	// (client_secret_basic).
	ClientID, ClientSecret string
	// Algorithms are the JWS algorithms accepted; default RS256, RS384, RS512, PS256,
	// ES256, ES384, EdDSA. Symmetric algorithms are never accepted: a JWKS key must not be
	// usable as an HMAC secret.
	Algorithms []string
	// CacheTTL is how long an answer is reused (never past the token's exp); default 30
	// seconds. A refusal is reused for a fifth of it, so a client that retries a dead token
	// does not reach the provider (or the CPU) on every request. A token revoked at the
	// provider is refused at most CacheTTL later.
	CacheTTL time.Duration
	// CacheSize bounds the introspection cache; default 10,000 tokens.
	CacheSize int
	// HTTPClient reaches the provider; default one with a 10-second timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verified is what a valid token says.
type Verified struct {
	// Provider is Options.ID.
	Provider string
	// Kind is "jwt" (verified against the JWKS) or "introspection".
	Kind string
	// Claims are the JWT's claims, or the introspection response's fields.
	Claims map[string]any
	// Expires is the token's exp (zero when an introspection answer has none).
	Expires time.Time
	// Memo keeps what the proxy derives from the token (identity headers, the assertion)
	// while the answer is cached.
	memo.Memo
}

// defaultAlgorithms are the asymmetric algorithms go-oidc verifies.
var defaultAlgorithms = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.ES256, oidc.ES384, oidc.EdDSA}

// Provider verifies one provider's access tokens. Discovery happens on first use and is
// retried after a failure, so a provider that is down when the gateway starts is picked
// up when it comes back.
type Provider struct {
	o      Options
	client *http.Client

	mu         sync.Mutex
	discovered *discovered
	retryAt    time.Time // after a failed discovery, when to try again

	cache    *cache
	inflight singleflight.Group // verifications under way, by token hash
}

type discovered struct {
	keys          *jwk.RemoteSet
	verifier      *oidc.IDTokenVerifier
	introspection string
}

// New checks o and returns its Provider.
func New(o Options) (*Provider, error) {
	if o.ID == "" {
		return nil, errors.New("bearer provider: no id")
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("bearer provider %s: issuer %q is not an http(s) URL", o.ID, o.Issuer)
	}
	if len(o.Audience) == 0 || slices.Contains(o.Audience, "") {
		return nil, fmt.Errorf("bearer provider %s: audience is required (the aud a token must carry for this gateway's APIs)", o.ID)
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = defaultAlgorithms
	}
	for _, alg := range o.Algorithms {
		if !slices.Contains(defaultAlgorithms, alg) {
			return nil, fmt.Errorf("bearer provider %s: algorithm %q is not accepted (one of %s)", o.ID, alg, strings.Join(defaultAlgorithms, ", "))
		}
	}
	if o.Introspect && o.ClientID == "" {
		return nil, fmt.Errorf("bearer provider %s: introspection needs the client id and secret", o.ID)
	}
	if o.IntrospectionURL != "" {
		if u, err := url.Parse(o.IntrospectionURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("bearer provider %s: introspection URL %q is not an http(s) URL", o.ID, o.IntrospectionURL)
		}
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 30 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{o: o, client: client, cache: newCache(o.CacheSize)}, nil
}

// ID is the provider's id.
func (p *Provider) ID() string { return p.o.ID }

// discoverRetry is how long a failed discovery is remembered before the next try.
const discoverRetry = 5 * time.Second

func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.discovered != nil {
		return p.discovered, nil
	}
	if p.o.Now().Before(p.retryAt) {
		return nil, &reasonError{reason: "provider " + p.o.ID + " discovery failed recently", kind: ErrUnavailable}
	}
	// Discovery is the provider's, not the request's: a client that hangs up must not fail
	// it (and start the retry wait) for every other request.
	dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), p.client), 10*time.Second)
	defer cancel()
	op, err := oidc.NewProvider(dctx, p.o.Issuer)
	if err != nil {
		p.retryAt = p.o.Now().Add(discoverRetry)
		return nil, &reasonError{reason: "discover provider " + p.o.ID, kind: ErrUnavailable, cause: err}
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		JWKS          string `json:"jwks_uri"`
		Introspection string `json:"introspection_endpoint"`
	}
	_ = op.Claims(&doc) // the document has already parsed as JSON
	// The provider's keys, refetched for an unknown kid at most every 30 s: the kid is the
	// client's to choose.
	keys := jwk.NewRemoteSet(doc.JWKS, p.client, jwk.RemoteOptions{Now: p.o.Now})
	if err := keys.Prefetch(dctx); err != nil {
		p.retryAt = p.o.Now().Add(discoverRetry)
		return nil, &reasonError{reason: "fetch the keys of provider " + p.o.ID, kind: ErrUnavailable, cause: err}
	}
	d := &discovered{
		keys: keys,
		verifier: oidc.NewVerifier(doc.Issuer, keys, &oidc.Config{
			SkipClientIDCheck:    true, // aud is checked against Audience below
			SupportedSigningAlgs: p.o.Algorithms,
			Now:                  p.o.Now,
		}),
		introspection: doc.Introspection,
	}
	if p.o.IntrospectionURL != "" {
		d.introspection = p.o.IntrospectionURL
	}
	p.discovered = d
	return d, nil
}

// Verify checks tok: as a JWT when it has the shape of one, else by introspection when
// the provider allows opaque tokens. Answers are cached by the token's SHA-256 for
// CacheTTL (a valid token never past its exp; a refusal for a fifth of it): the same token
// on the next request is neither verified nor introspected again, and gets the same
// *Verified, whose memo keeps what the proxy derived from it.
func (p *Provider) Verify(ctx context.Context, tok string) (*Verified, error) {
	if len(tok) > MaxTokenBytes {
		return nil, invalid("bearer token too long")
	}
	key := sha256.Sum256([]byte(tok))
	if e, ok := p.cache.get(key, p.o.Now()); ok {
		return e.v, e.err
	}
	// The requests of a client that has just got a token arrive together: one of them asks
	// the provider (or checks the signature), the others share its answer. The work is the
	// token's, not the first request's, so it does not end when that request does.
	done := p.inflight.DoChan(string(key[:]), func() (any, error) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout)
		defer cancel()
		return p.verify(wctx, key, tok)
	})
	select {
	case r := <-done:
		v, _ := r.Val.(*Verified)
		return v, r.Err
	case <-ctx.Done():
		return nil, &reasonError{reason: "the request ended before the token was checked", kind: ErrUnavailable, cause: ctx.Err()}
	}
}

// verifyTimeout bounds the provider's part of a verification (discovery, keys,
// introspection), whatever the HTTP client's own timeout.
const verifyTimeout = 15 * time.Second

// verify is Verify past the cache: it checks tok and caches the answer.
func (p *Provider) verify(ctx context.Context, key [32]byte, tok string) (*Verified, error) {
	now := p.o.Now()
	if e, ok := p.cache.get(key, now); ok {
		return e.v, e.err // answered while this call waited its turn
	}
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	var v *Verified
	switch {
	case LooksLikeJWT(tok):
		v, err = p.verifyJWT(ctx, d, tok)
	case !p.o.Introspect:
		err = invalid("not a JWT, and provider " + p.o.ID + " does not introspect opaque tokens")
	default:
		v, err = p.introspect(ctx, d, tok)
	}
	if errors.Is(err, ErrUnavailable) {
		return nil, err // not cached: the next request asks again
	}
	until := now.Add(p.o.CacheTTL)
	if err != nil {
		until = now.Add(p.o.CacheTTL / 5)
	} else if !v.Expires.IsZero() && v.Expires.Before(until) {
		until = v.Expires
	}
	p.cache.put(key, entry{v: v, err: err, until: until})
	return v, err
}

func (p *Provider) verifyJWT(ctx context.Context, d *discovered, tok string) (*Verified, error) {
	// go-oidc reports a key set's errors as text: whether the provider's keys can be had
	// (503) or the token names none of them (401) is asked first.
	switch err := d.keys.Check(ctx, tok); {
	case errors.Is(err, jwk.ErrKeysUnavailable):
		return nil, &reasonError{reason: "the keys of provider " + p.o.ID + " cannot be fetched", kind: ErrUnavailable, cause: err}
	case errors.Is(err, jwk.ErrUnknownKey):
		return nil, invalid("token signed with a key the provider does not publish")
	case err != nil:
		return nil, &reasonError{reason: "token not verified", kind: ErrInvalid, cause: err}
	}
	idt, err := d.verifier.Verify(ctx, tok)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, invalid("token expired")
		}
		// go-oidc fails the same way for a bad signature, an unknown kid whose key set
		// cannot be fetched, a wrong issuer or a malformed token; the log has the detail.
		return nil, &reasonError{reason: "token not verified", kind: ErrInvalid, cause: err}
	}
	if !p.audienceOK(idt.Audience) {
		return nil, invalid("token is for another audience")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, &reasonError{reason: "token claims unreadable", kind: ErrInvalid, cause: err}
	}
	return &Verified{Provider: p.o.ID, Kind: "jwt", Claims: claims, Expires: idt.Expiry}, nil
}

func (p *Provider) audienceOK(aud []string) bool {
	for _, a := range aud {
		if slices.Contains(p.o.Audience, a) {
			return true
		}
	}
	return false
}

// clockSkew is how far ahead of the gateway's clock the provider's may be: a token issued
// just now carries an nbf that may be a little in the gateway's future.
const clockSkew = time.Minute

// maxIntrospectionBytes bounds an introspection response.
const maxIntrospectionBytes = 64 << 10

func (p *Provider) introspect(ctx context.Context, d *discovered, tok string) (*Verified, error) {
	if d.introspection == "" {
		return nil, &reasonError{reason: "provider " + p.o.ID + " has no introspection endpoint (set introspection url)", kind: ErrUnavailable}
	}
	return p.askIntrospection(ctx, d.introspection, tok)
}

// introspection is RFC 7662's response, the fields the gateway checks.
type introspection struct {
	Active    bool            `json:"active"`
	Exp       *float64        `json:"exp"`
	Nbf       *float64        `json:"nbf"`
	Iss       string          `json:"iss"`
	Aud       json.RawMessage `json:"aud"`
	TokenType string          `json:"token_type"`
	TokenUse  string          `json:"token_use"` // Ory Hydra: access_token or refresh_token
}

func (p *Provider) askIntrospection(ctx context.Context, endpoint, tok string) (*Verified, error) {
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &reasonError{reason: "introspection request", kind: ErrUnavailable, cause: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(p.o.ClientID), url.QueryEscape(p.o.ClientSecret)) // RFC 6749 §2.3.1
	res, err := p.client.Do(req)
	if err != nil {
		return nil, &reasonError{reason: "introspection at " + p.o.ID, kind: ErrUnavailable, cause: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxIntrospectionBytes+1))
	if err != nil {
		return nil, &reasonError{reason: "introspection at " + p.o.ID, kind: ErrUnavailable, cause: err}
	}
	if res.StatusCode != http.StatusOK {
		return nil, &reasonError{reason: fmt.Sprintf("introspection at %s answered %d", p.o.ID, res.StatusCode), kind: ErrUnavailable}
	}
	if len(body) > maxIntrospectionBytes {
		return nil, &reasonError{reason: "introspection response too large", kind: ErrUnavailable}
	}
	var in introspection
	var claims map[string]any
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(body, &claims) != nil {
		return nil, &reasonError{reason: "introspection response is not JSON", kind: ErrUnavailable}
	}
	if !in.Active {
		return nil, invalid("token not active")
	}
	now := p.o.Now()
	v := &Verified{Provider: p.o.ID, Kind: "introspection", Claims: claims}
	if in.Exp != nil {
		v.Expires = time.Unix(int64(*in.Exp), 0)
		if !now.Before(v.Expires) {
			return nil, invalid("token expired")
		}
	}
	if in.Nbf != nil && now.Add(clockSkew).Before(time.Unix(int64(*in.Nbf), 0)) {
		return nil, invalid("token not valid yet")
	}
	if in.Iss != "" && strings.TrimSuffix(in.Iss, "/") != strings.TrimSuffix(p.o.Issuer, "/") {
		return nil, invalid("token from another issuer")
	}
	if in.TokenType != "" && !strings.EqualFold(in.TokenType, "access_token") && !strings.EqualFold(in.TokenType, "bearer") {
		return nil, invalid("not an access token")
	}
	if in.TokenUse != "" && in.TokenUse != "access_token" {
		return nil, invalid("not an access token")
	}
	if !p.audienceOK(audiences(in.Aud)) {
		return nil, invalid("token is for another audience")
	}
	return v, nil
}

// audiences reads aud, a string or an array of strings.
func audiences(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}
