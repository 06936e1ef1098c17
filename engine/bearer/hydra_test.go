package bearer

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callgate/callgate/internal/testkit"
)

// idp is a real Ory Hydra with clients that get access tokens by the client_credentials
// grant: JWT ones and opaque ones, for this gateway's API and for another.
type idp struct {
	issuer, admin string
	// introspections counts the requests that reached Hydra's introspection endpoint
	// through introspectURL.
	introspections atomic.Int64
	introspectURL  string
}

const (
	apiAudience   = "https://api.example.test"
	otherAudience = "https://other.example.test"
	clientSecret  = "client-secret-0123456789"
)

func startIdP(t *testing.T) *idp {
	t.Helper()
	bin := testkit.HydraBinary(t, "../..")
	publicPort, adminPort := testkit.FreePort(t, false), testkit.FreePort(t, false)
	h := &idp{issuer: fmt.Sprintf("http://127.0.0.1:%d", publicPort), admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
	// No browser flow here: the login and consent URLs are never visited.
	testkit.Hydra{Binary: bin, Issuer: h.issuer, LoginURL: "http://127.0.0.1:9/login", ConsentURL: "http://127.0.0.1:9/consent",
		PublicPort: publicPort, AdminPort: adminPort}.Start(t)
	adminURL, _ := url.Parse(h.admin)
	rp := httputil.NewSingleHostReverseProxy(adminURL)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/oauth2/introspect" {
			h.introspections.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)
	h.introspectURL = counting.URL + "/admin/oauth2/introspect"
	for _, c := range []struct {
		id, strategy, audience string
	}{
		{"jwt-client", "jwt", apiAudience},
		{"opaque-client", "opaque", apiAudience},
		{"other-jwt-client", "jwt", otherAudience},
		{"other-opaque-client", "opaque", otherAudience},
	} {
		h.post(t, h.admin+"/admin/clients", "application/json", "", map[string]any{
			"client_id": c.id, "client_secret": clientSecret, "grant_types": []string{"client_credentials"},
			"token_endpoint_auth_method": "client_secret_basic", "access_token_strategy": c.strategy,
			"audience": []string{c.audience}, "scope": "api",
		})
	}
	return h
}

func (h *idp) post(t *testing.T, u, contentType, basicUser string, body any) []byte {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case url.Values:
		r = strings.NewReader(b.Encode())
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(http.MethodPost, u, r)
	req.Header.Set("Content-Type", contentType)
	if basicUser != "" {
		req.SetBasicAuth(basicUser, clientSecret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %s", u, res.StatusCode, out)
	}
	return out
}

// token gets an access token for client by the client_credentials grant.
func (h *idp) token(t *testing.T, client, audience string) string {
	t.Helper()
	out := h.post(t, h.issuer+"/oauth2/token", "application/x-www-form-urlencoded", client,
		url.Values{"grant_type": {"client_credentials"}, "audience": {audience}, "scope": {"api"}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token for %s: %s", client, out)
	}
	return tok.AccessToken
}

func wantInvalid(t *testing.T, what string, v *Verified, err error, reason string) {
	t.Helper()
	if v != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), reason) {
		t.Errorf("%s: got %+v, %v; want ErrInvalid saying %q", what, v, err, reason)
	}
}

// forge re-signs tok's payload under another header: alg none, or HS256 with the
// provider's public key bytes as the secret (the RS/HS confusion).
func forge(t *testing.T, tok, alg string, secret []byte) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	var header map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	header["alg"] = alg
	hj, _ := json.Marshal(header)
	signing := base64.RawURLEncoding.EncodeToString(hj) + "." + parts[1]
	if alg == "none" {
		return signing + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestHydraAccessTokens(t *testing.T) {
	h := startIdP(t)
	ctx := context.Background()
	clk := testkit.NewClock(time.Now())
	newProvider := func(edit func(*Options)) *Provider {
		o := Options{ID: "hydra", Issuer: h.issuer, Audience: []string{apiAudience}, Introspect: true,
			IntrospectionURL: h.introspectURL, ClientID: "jwt-client", ClientSecret: clientSecret, Now: clk.Now}
		if edit != nil {
			edit(&o)
		}
		p, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(nil)

	t.Run("a JWT access token verifies against the JWKS", func(t *testing.T) {
		tok := h.token(t, "jwt-client", apiAudience)
		if !LooksLikeJWT(tok) {
			t.Fatalf("Hydra gave %q, want a JWT", tok)
		}
		v, err := p.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if v.Kind != "jwt" || v.Provider != "hydra" || v.Claims["sub"] != "jwt-client" || v.Claims["iss"] != h.issuer || v.Expires.Before(clk.Now()) {
			t.Errorf("got %+v, want a jwt of sub jwt-client from %s, not expired", v, h.issuer)
		}
	})

	t.Run("bad JWTs are refused", func(t *testing.T) {
		tok := h.token(t, "jwt-client", apiAudience)
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"jwt-client"`), []byte(`"admin-user"`), 1)) + "." + parts[2]
		var jwks struct {
			Keys []struct {
				N string `json:"n"`
			} `json:"keys"`
		}
		res, err := http.Get(h.issuer + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(res.Body).Decode(&jwks)
		res.Body.Close()
		if len(jwks.Keys) == 0 {
			t.Fatal("Hydra's JWKS has no key")
		}
		pub, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)

		cases := []struct {
			name, tok, reason string
		}{
			{"a changed payload", tampered, "not verified"},
			{"alg none", forge(t, tok, "none", nil), "not verified"},
			{"HS256 keyed with the public key", forge(t, tok, "HS256", pub), "not verified"},
			{"HS256 keyed with the JWKS text", forge(t, tok, "HS256", []byte(jwks.Keys[0].N)), "not verified"},
			{"for another audience", h.token(t, "other-jwt-client", otherAudience), "another audience"},
			{"three parts of garbage", "a.b.c", "not verified"},
		}
		for _, c := range cases {
			v, err := p.Verify(ctx, c.tok)
			wantInvalid(t, c.name, v, err, c.reason)
		}
		// Another provider's JWT keys: a provider configured with another issuer cannot
		// verify Hydra's tokens (go-oidc checks iss against the discovery document's).
		later := testkit.NewClock(clk.Now().Add(2 * time.Hour))
		expiredP := newProvider(func(o *Options) { o.Now = later.Now })
		v, err := expiredP.Verify(ctx, tok)
		wantInvalid(t, "a token past its exp", v, err, "expired")
	})

	t.Run("an opaque token is introspected, and the answer is cached", func(t *testing.T) {
		tok := h.token(t, "opaque-client", apiAudience)
		if LooksLikeJWT(tok) {
			t.Fatalf("Hydra gave a JWT %q, want an opaque token", tok)
		}
		before := h.introspections.Load()
		for i := range 5 {
			v, err := p.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("Verify #%d: %v", i, err)
			}
			if v.Kind != "introspection" || v.Claims["client_id"] != "opaque-client" || v.Claims["active"] != true {
				t.Fatalf("got %+v, want an active introspected token of opaque-client", v)
			}
		}
		if n := h.introspections.Load() - before; n != 1 {
			t.Errorf("5 requests with one token reached the introspection endpoint %d times, want 1", n)
		}
		// Revoked at the provider: the cached answer stands until the cache's TTL, then
		// the token is refused.
		h.post(t, h.issuer+"/oauth2/revoke", "application/x-www-form-urlencoded", "opaque-client", url.Values{"token": {tok}})
		if _, err := p.Verify(ctx, tok); err != nil {
			t.Errorf("within the cache TTL after revocation: got %v, want the cached answer", err)
		}
		clk.Add(31 * time.Second)
		v, err := p.Verify(ctx, tok)
		wantInvalid(t, "a revoked token once the cache has expired", v, err, "not active")
		// The refusal is cached too (for a fifth of the TTL).
		before = h.introspections.Load()
		_, _ = p.Verify(ctx, tok)
		if n := h.introspections.Load() - before; n != 0 {
			t.Errorf("a refused token asked again at once reached the provider %d times, want 0", n)
		}
	})

	t.Run("requests arriving together with a new token ask the provider once", func(t *testing.T) {
		tok := h.token(t, "opaque-client", apiAudience)
		before := h.introspections.Load()
		const n = 20
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				_, err := p.Verify(ctx, tok)
				errs <- err
			}()
		}
		close(start)
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("Verify: %v", err)
			}
		}
		if got := h.introspections.Load() - before; got != 1 {
			t.Errorf("%d concurrent requests with one new token: %d introspections, want 1", n, got)
		}
	})

	t.Run("bad opaque tokens are refused", func(t *testing.T) {
		v, err := p.Verify(ctx, h.token(t, "other-opaque-client", otherAudience))
		wantInvalid(t, "an opaque token for another audience", v, err, "another audience")
		v, err = p.Verify(ctx, "ory_at_made-up.token")
		wantInvalid(t, "a token the provider never issued", v, err, "not active")
		noIntrospection := newProvider(func(o *Options) { o.Introspect = false })
		v, err = noIntrospection.Verify(ctx, h.token(t, "opaque-client", apiAudience))
		wantInvalid(t, "an opaque token where only JWTs are accepted", v, err, "does not introspect")
		v, err = p.Verify(ctx, strings.Repeat("x", MaxTokenBytes+1))
		wantInvalid(t, "an oversized token", v, err, "too long")
	})

	t.Run("an unreachable provider is unavailable, not invalid", func(t *testing.T) {
		down := newProvider(func(o *Options) {
			o.IntrospectionURL = fmt.Sprintf("http://127.0.0.1:%d/introspect", testkit.FreePort(t, false))
		})
		if _, err := down.Verify(ctx, "ory_at_some.token"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalid) {
			t.Errorf("introspection endpoint down: got %v, want ErrUnavailable", err)
		}
		gone, err := New(Options{ID: "gone", Issuer: fmt.Sprintf("http://127.0.0.1:%d", testkit.FreePort(t, false)), Audience: []string{apiAudience}, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gone.Verify(ctx, "a.b.c"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("provider down at discovery: got %v, want ErrUnavailable", err)
		}
	})
}
