package bearer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/callgate/callgate/internal/testkit"
)

// TestMadeUpKeyIDsDoNotRefetchTheKeys: a token's kid is the client's to choose. A stream of
// tokens naming keys the provider never published is refused without making the gateway
// fetch the provider's JWKS for each one.
func TestMadeUpKeyIDsDoNotRefetchTheKeys(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int64
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"authorization_endpoint":%q,"token_endpoint":%q}`, srv.URL, srv.URL+"/jwks", srv.URL+"/a", srv.URL+"/t")
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "real", Algorithm: "ES256", Use: "sig"}}})
	})
	clk := testkit.NewClock(time.Now())
	p, err := New(Options{ID: "idp", Issuer: srv.URL, Audience: []string{"api"}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": srv.URL, "aud": "api", "sub": "s", "exp": clk.Now().Add(time.Hour).Unix(), "kid-was": kid})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	if _, err := p.Verify(ctx, sign("real")); err != nil {
		t.Fatalf("a token of the published key: %v", err)
	}
	for i := range 50 {
		v, err := p.Verify(ctx, sign(fmt.Sprint("made-up-", i)))
		wantInvalid(t, "a made-up kid", v, err, "a key the provider does not publish")
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("50 tokens with made-up kids: the JWKS was fetched %d times, want once (at discovery)", n)
	}
	// Past the refetch interval, one more fetch is allowed (the provider may have rotated).
	clk.Add(31 * time.Second)
	for i := range 10 {
		_, _ = p.Verify(ctx, sign(fmt.Sprint("later-", i)))
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("after the interval: %d fetches, want 2", n)
	}
}
