package jwk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// RemoteSet is an identity provider's published JWK Set (its jwks_uri), for verifying the
// JWTs it signs: ID tokens, access tokens, logout tokens. It implements go-oidc's KeySet.
//
// Keys are fetched on first use and again when a token names a key the set does not hold
// (the provider rotated its keys), but at most once per MinRefresh: a token's kid is the
// sender's to choose, and without that bound every request with a made-up kid would make
// the gateway fetch the provider's keys again. A token signed with a key newer than the
// last fetch is refused until the next fetch is allowed.
type RemoteSet struct {
	url    string
	client *http.Client
	now    func() time.Time
	// minRefresh is the least time between two fetches after a success, retry after a
	// failure.
	minRefresh, retry time.Duration

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetched   bool
	nextFetch time.Time     // no fetch before it
	inflight  chan struct{} // closed when the fetch under way ends; nil when none is
}

// RemoteOptions tune a RemoteSet; zero values take the defaults.
type RemoteOptions struct {
	// MinRefresh is the least time between fetches: default 30 seconds.
	MinRefresh time.Duration
	// Retry is the wait after a failed fetch: default 5 seconds.
	Retry time.Duration
	// Now is the clock: default time.Now.
	Now func() time.Time
}

// maxSetBytes bounds a fetched JWK Set.
const maxSetBytes = 1 << 20

// signatureAlgorithms are those a provider's token may be signed with: asymmetric only, so a
// published key can never serve as an HMAC secret, and never "none".
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// NewRemoteSet returns the set at url, fetched with client.
func NewRemoteSet(url string, client *http.Client, o RemoteOptions) *RemoteSet {
	if o.MinRefresh <= 0 {
		o.MinRefresh = 30 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &RemoteSet{url: url, client: client, now: o.Now, minRefresh: o.MinRefresh, retry: o.Retry}
}

// Prefetch fetches the keys now unless the set holds some: a caller that has just learnt
// the jwks_uri (at discovery) finds out at once whether the keys can be had, and every
// later fetch failure leaves keys in hand.
func (s *RemoteSet) Prefetch(ctx context.Context) error {
	_, err := s.current(ctx, false)
	return err
}

// ErrNoKey is a token no key of the set verifies, once the set is as fresh as it may be.
var ErrNoKey = errors.New("no key of the provider's JWK Set verifies the token")

// ErrUnknownKey is a token whose kid the set does not hold, even after the refetch it was
// allowed: a made-up kid, or a key the provider published since the last fetch (which
// the next allowed fetch will find).
var ErrUnknownKey = errors.New("the token names a key the provider's JWK Set does not hold")

// ErrKeysUnavailable is a set whose keys could not be fetched: the provider's trouble (or
// the network's), not the token's.
var ErrKeysUnavailable = errors.New("the provider's JWK Set cannot be fetched")

// Check says whether the set holds the key the token raw names, fetching or refetching as
// VerifySignature would: nil, ErrUnknownKey, ErrKeysUnavailable (wrapped), or a malformed
// token. go-oidc wraps a KeySet's errors as text, so a caller that must tell the
// provider's trouble from a bad token (503 from 401 or 400) asks here first; the
// signature is still checked by VerifySignature.
func (s *RemoteSet) Check(ctx context.Context, raw string) error {
	jws, err := parse(raw)
	if err != nil {
		return err
	}
	kid := jws.Signatures[0].Header.KeyID
	for _, refresh := range []bool{false, true} {
		keys, err := s.current(ctx, refresh)
		if err != nil {
			return err
		}
		if kid == "" || slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid }) {
			return nil
		}
	}
	return ErrUnknownKey
}

func parse(raw string) (*jose.JSONWebSignature, error) {
	jws, err := jose.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("malformed JWS: %d signatures, want one", len(jws.Signatures))
	}
	return jws, nil
}

// VerifySignature implements oidc.KeySet: it returns the payload of the compact JWS raw
// once one of the set's keys verifies it.
func (s *RemoteSet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := parse(raw)
	if err != nil {
		return nil, err
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := s.current(ctx, false)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	// Perhaps the provider rotated: look again, if the last look is old enough.
	keys, err = s.current(ctx, true)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, ErrNoKey
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, k := range keys {
		if (kid != "" && k.KeyID != kid) || k.Use == "enc" || !k.Valid() {
			continue
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// fetchTimeout bounds one fetch, whatever the client's own timeout.
const fetchTimeout = 10 * time.Second

// current returns the keys, fetching them first when there are none yet or, with
// refresh, when the last fetch is at least MinRefresh old. One fetch runs at a time; while
// it runs, callers with keys in hand go on with them, and callers with none wait for it.
// A fetch is not the request's: it does not end when the request that started it does, so
// a client that hangs up cannot fail it (and start the retry wait) for everyone. A fetch
// that fails leaves the previous keys in place; with none, the failure is the caller's.
func (s *RemoteSet) current(ctx context.Context, refresh bool) ([]jose.JSONWebKey, error) {
	for {
		s.mu.Lock()
		now := s.now()
		switch {
		case s.fetched && (!refresh || now.Before(s.nextFetch) || s.inflight != nil):
			keys := s.keys
			s.mu.Unlock()
			return keys, nil
		case s.inflight != nil:
			wait := s.inflight
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
			}
		case !s.fetched && now.Before(s.nextFetch):
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %s failed recently; retrying after %s", ErrKeysUnavailable, s.url, s.nextFetch.Format(time.RFC3339))
		}
		done := make(chan struct{})
		s.inflight = done
		s.mu.Unlock()

		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		keys, err := s.fetch(fctx)
		cancel()

		s.mu.Lock()
		s.inflight = nil
		close(done)
		if err != nil {
			s.nextFetch = s.now().Add(s.retry)
			kept, had := s.keys, s.fetched
			s.mu.Unlock()
			if had {
				return kept, nil // the keys in hand stay good; the failure will be retried
			}
			return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
		}
		s.keys, s.fetched, s.nextFetch = keys, true, s.now().Add(s.minRefresh)
		s.mu.Unlock()
		return keys, nil
	}
}

func (s *RemoteSet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch the provider's JWK Set: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the provider's JWK Set %s: %w", s.url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxSetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the provider's JWK Set %s: %w", s.url, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the provider's JWK Set %s: HTTP %d", s.url, res.StatusCode)
	}
	if len(body) > maxSetBytes {
		return nil, fmt.Errorf("the provider's JWK Set %s is larger than %d bytes", s.url, maxSetBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("the provider's JWK Set %s: %w", s.url, err)
	}
	return set.Keys, nil
}
