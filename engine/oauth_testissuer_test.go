package engine_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// testIssuer is a small OpenID Connect provider on a real loopback listener, for the cases
// Hydra cannot produce for the gateway's own client: ID tokens with claims the test
// chooses (another audience, another issuer) or signed with a key the JWKS does not hold.
// Its refresh tokens rotate and each may be used once: a second use is refused with
// invalid_grant, as providers with refresh-token rotation do, and counted.
type testIssuer struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	keyID        string
	key          *ecdsa.PrivateKey // published in the JWKS
	now          func() time.Time
	accessTTL    time.Duration
	// refreshDelay makes every refresh grant take this long, as a slow provider would. Set
	// it before the first request.
	refreshDelay time.Duration

	mu sync.Mutex
	// editClaims, when set, changes the ID token's claims before they are signed.
	editClaims func(claims map[string]any)
	// signingKey, when set, signs ID tokens instead of key (under the same key id).
	signingKey *ecdsa.PrivateKey
	codes      map[string]issuedCode
	refresh    map[string]bool // refresh token → already used
	issued     int             // tokens issued, to make each one distinct

	codeGrants    atomic.Int64
	refreshGrants atomic.Int64 // refresh grants answered with new tokens
	reusedRefresh atomic.Int64 // refresh grants refused because the token was used before
}

type issuedCode struct {
	nonce, redirectURI, challenge string
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startTestIssuer serves the issuer until the test ends. now is the issuer's clock (the
// ID token's iat and exp); accessTTL is the access token's lifetime (expires_in).
func startTestIssuer(t testing.TB, now func() time.Time, accessTTL time.Duration) *testIssuer {
	t.Helper()
	iss := &testIssuer{
		clientID: "gateway", clientSecret: "gateway-secret", keyID: "test-key-1",
		key: newECKey(t), now: now, accessTTL: accessTTL,
		codes: map[string]issuedCode{}, refresh: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.discovery)
	mux.HandleFunc("GET /jwks", iss.jwks)
	// The path is Hydra's, so the Hydra tests' authorize helper drives both providers.
	mux.HandleFunc("GET /oauth2/auth", iss.authorize)
	mux.HandleFunc("POST /oauth2/token", iss.token)
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (iss *testIssuer) issuer() string { return iss.srv.URL }

func (iss *testIssuer) setClaims(edit func(claims map[string]any)) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.editClaims = edit
}

func (iss *testIssuer) setSigningKey(k *ecdsa.PrivateKey) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.signingKey = k
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (iss *testIssuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer":                                iss.issuer(),
		"authorization_endpoint":                iss.issuer() + "/oauth2/auth",
		"token_endpoint":                        iss.issuer() + "/oauth2/token",
		"jwks_uri":                              iss.issuer() + "/jwks",
		"end_session_endpoint":                  iss.issuer() + "/oauth2/sessions/logout?ui=plain",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (iss *testIssuer) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &iss.key.PublicKey, KeyID: iss.keyID, Algorithm: string(jose.ES256), Use: "sig"},
	}})
}

// authorize signs the user in at once and sends the browser back with a code.
func (iss *testIssuer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != iss.clientID || q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "only S256", http.StatusBadRequest)
		return
	}
	code := rand.Text()
	iss.mu.Lock()
	iss.codes[code] = issuedCode{nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge")}
	iss.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	bq := back.Query()
	bq.Set("code", code)
	if s := q.Get("state"); s != "" {
		bq.Set("state", s)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (iss *testIssuer) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != iss.clientID || secret != iss.clientSecret {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") == "refresh_token" {
		time.Sleep(iss.refreshDelay)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	nonce := ""
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c, ok := iss.codes[r.PostForm.Get("code")]
		delete(iss.codes, r.PostForm.Get("code"))
		if !ok || c.redirectURI != r.PostForm.Get("redirect_uri") ||
			(c.challenge != "" && oauth2.S256ChallengeFromVerifier(r.PostForm.Get("code_verifier")) != c.challenge) {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		iss.codeGrants.Add(1)
		nonce = c.nonce
	case "refresh_token":
		used, known := iss.refresh[r.PostForm.Get("refresh_token")]
		if !known || used {
			if used {
				iss.reusedRefresh.Add(1)
			}
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		iss.refresh[r.PostForm.Get("refresh_token")] = true
		iss.refreshGrants.Add(1)
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	iss.issued++
	now := iss.now()
	claims := map[string]any{
		"iss": iss.issuer(), "sub": "user-7", "aud": iss.clientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": "grace@example.com", "name": "Grace Hopper",
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if iss.editClaims != nil {
		iss.editClaims(claims)
	}
	idToken, err := iss.sign(claims)
	if err != nil {
		writeJSON(w, 500, map[string]string{"error": "server_error", "error_description": err.Error()})
		return
	}
	refresh := rand.Text()
	iss.refresh[refresh] = false
	writeJSON(w, 200, map[string]any{
		"access_token": "access-" + rand.Text(), "token_type": "Bearer", "expires_in": int(iss.accessTTL / time.Second),
		"refresh_token": refresh, "id_token": idToken, "scope": "openid email profile",
	})
}

// sign makes a compact JWS of claims with ES256 under the published key id. Called with mu held.
func (iss *testIssuer) sign(claims map[string]any) (string, error) {
	key := iss.key
	if iss.signingKey != nil {
		key = iss.signingKey
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: iss.keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
