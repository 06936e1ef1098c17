package jwk

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/callgate/callgate/internal/testkit"
)

// provider publishes a JWK Set it can change, and counts the fetches.
type provider struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fail    bool
	fetches atomic.Int64
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: p.keys})
}

func (p *provider) publish(fail bool, keys ...jose.JSONWebKey) {
	p.mu.Lock()
	p.keys, p.fail = keys, fail
	p.mu.Unlock()
}

type signingKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newSigningKey(t *testing.T, kid string) signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{priv, kid}
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}
}

func (k signingKey) sign(t *testing.T, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, (&jose.SignerOptions{}).WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRemoteSetRefetchesAtMostOncePerInterval: keys are fetched on first use and on an
// unknown kid, but a stream of tokens with made-up kids makes no more than one fetch per
// MinRefresh; a rotated key verifies once a fetch is allowed; a failing provider leaves
// the keys in hand.
func TestRemoteSetRefetchesAtMostOncePerInterval(t *testing.T) {
	a, b, forged := newSigningKey(t, "a"), newSigningKey(t, "b"), newSigningKey(t, "made-up")
	p := &provider{}
	p.publish(false, a.public())
	srv := httptest.NewServer(p)
	defer srv.Close()
	clk := testkit.NewClock(time.Unix(1_900_000_000, 0))
	set := NewRemoteSet(srv.URL, srv.Client(), RemoteOptions{MinRefresh: 30 * time.Second, Retry: 5 * time.Second, Now: clk.Now})
	ctx := context.Background()

	steps := []struct {
		name        string
		tok         string
		wantOK      bool
		wantFetches int64
		then        func()
	}{
		{"first use fetches", a.sign(t, `{"n":1}`), true, 1, nil},
		{"a known key needs no fetch", a.sign(t, `{"n":2}`), true, 1, nil},
		{"a made-up kid right after a fetch: refused, no fetch", forged.sign(t, `{}`), false, 1, nil},
		{"again", forged.sign(t, `{}`), false, 1, func() { p.publish(false, a.public(), b.public()); clk.Add(10 * time.Second) }},
		{"a rotated key within the interval: not yet", b.sign(t, `{}`), false, 1, func() { clk.Add(21 * time.Second) }},
		{"the rotated key once a fetch is allowed", b.sign(t, `{"n":3}`), true, 2, nil},
		{"made-up kids after that fetch: no fetch", forged.sign(t, `{}`), false, 2, func() { p.publish(true); clk.Add(31 * time.Second) }},
		{"the provider fails: the keys in hand still verify", a.sign(t, `{"n":4}`), true, 2, nil},
		{"an unknown kid asks the failing provider once", forged.sign(t, `{}`), false, 3, nil},
		{"and not again before the retry", forged.sign(t, `{}`), false, 3, nil},
	}
	for _, st := range steps {
		payload, err := set.VerifySignature(ctx, st.tok)
		if ok := err == nil; ok != st.wantOK {
			t.Fatalf("%s: got payload %s, error %v; want ok %v", st.name, payload, err, st.wantOK)
		}
		if !st.wantOK && !errors.Is(err, ErrNoKey) {
			t.Errorf("%s: got %v, want ErrNoKey", st.name, err)
		}
		if n := p.fetches.Load(); n != st.wantFetches {
			t.Fatalf("%s: %d fetches, want %d", st.name, n, st.wantFetches)
		}
		if st.then != nil {
			st.then()
		}
	}
}

// TestRemoteSetRefuses: tokens no asymmetric key may verify are refused before any key is
// tried, and a provider that cannot be reached at first use is an error, retried later.
func TestRemoteSetRefuses(t *testing.T) {
	a := newSigningKey(t, "a")
	p := &provider{}
	p.publish(true)
	srv := httptest.NewServer(p)
	defer srv.Close()
	clk := testkit.NewClock(time.Unix(1_900_000_000, 0))
	set := NewRemoteSet(srv.URL, srv.Client(), RemoteOptions{Now: clk.Now})
	ctx := context.Background()

	good := a.sign(t, `{"sub":"x"}`)
	if _, err := set.VerifySignature(ctx, good); err == nil || errors.Is(err, ErrNoKey) {
		t.Errorf("provider down at first use: got %v, want the fetch error", err)
	}
	if _, err := set.VerifySignature(ctx, good); err == nil || !strings.Contains(err.Error(), "failed recently") || p.fetches.Load() != 1 {
		t.Errorf("right after: got %v after %d fetches, want a refusal without a second fetch", err, p.fetches.Load())
	}
	p.publish(false, a.public())
	clk.Add(6 * time.Second)
	if _, err := set.VerifySignature(ctx, good); err != nil {
		t.Errorf("after the retry wait: %v", err)
	}

	parts := strings.Split(good, ".")
	header := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) }
	for name, tok := range map[string]string{
		"alg none":        header(`{"alg":"none","kid":"a"}`) + "." + parts[1] + ".",
		"HS256":           header(`{"alg":"HS256","kid":"a"}`) + "." + parts[1] + "." + parts[2],
		"a bad signature": parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
		"not a JWS":       "not.a.jws",
	} {
		if _, err := set.VerifySignature(ctx, tok); err == nil {
			t.Errorf("%s: verified, want a refusal", name)
		}
	}
}

// TestRemoteSetCheckAndCancelledCallers: Check tells an unknown key from unreachable keys,
// and a caller that hangs up does not fail the fetch it started for everyone else.
func TestRemoteSetCheckAndCancelledCallers(t *testing.T) {
	a, forged := newSigningKey(t, "a"), newSigningKey(t, "made-up")
	p := &provider{}
	p.publish(false, a.public())
	srv := httptest.NewServer(p)
	defer srv.Close()
	clk := testkit.NewClock(time.Unix(1_900_000_000, 0))
	set := NewRemoteSet(srv.URL, srv.Client(), RemoteOptions{Now: clk.Now})

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	// The caller's context has ended; the fetch it starts is the set's and still succeeds.
	_, _ = set.VerifySignature(gone, a.sign(t, `{}`))
	if p.fetches.Load() != 1 {
		t.Fatalf("got %d fetches, want 1", p.fetches.Load())
	}
	ctx := context.Background()
	if _, err := set.VerifySignature(ctx, a.sign(t, `{"n":1}`)); err != nil {
		t.Errorf("after a cancelled caller's fetch: %v, want the keys in hand", err)
	}
	if err := set.Check(ctx, a.sign(t, `{}`)); err != nil {
		t.Errorf("Check of a known key: %v", err)
	}
	if err := set.Check(ctx, forged.sign(t, `{}`)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Check of a made-up kid: got %v, want ErrUnknownKey", err)
	}
	if err := set.Check(ctx, "not.a.jws"); err == nil || errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Check of garbage: got %v, want a malformed-token error", err)
	}

	down := NewRemoteSet(srv.URL+"/nothing-here", srv.Client(), RemoteOptions{Now: clk.Now})
	p.publish(true)
	if err := down.Check(ctx, a.sign(t, `{}`)); !errors.Is(err, ErrKeysUnavailable) {
		t.Errorf("Check with the provider down: got %v, want ErrKeysUnavailable", err)
	}
}
